package dinostream.model.runtime;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;

import java.util.Map;

/**
 * Creates ONNX Runtime sessions with the project's settings, and explains provider failures. The
 * settings reach both of ONNX Runtime's APIs (the Java API here, the C++ API in
 * {@link NativeSessions}) through one {@link #configure}, so both runtimes run a model alike.
 */
public final class Sessions {
    private Sessions() {}

    static {
        // JavaCPP (under both APIs) refuses to allocate once the process's resident memory passes a
        // multiple of the heap, counting ONNX Runtime's own arenas: on a TaskManager whose native
        // budget is larger than its heap that would fail a healthy step. Flink's memory model bounds
        // native memory instead (TrainMemory). Set before JavaCPP's Pointer class reads it.
        if (System.getProperty("org.bytedeco.javacpp.maxPhysicalBytes") == null) {
            System.setProperty("org.bytedeco.javacpp.maxPhysicalBytes", "0");
        }
    }

    public static OrtEnvironment env() {
        return OrtEnvironment.getEnvironment();
    }

    public static OrtSession create(byte[] model, RuntimeOptions o) {
        try {
            OrtSession.SessionOptions so = new OrtSession.SessionOptions();
            configure(new Target() {
                @Override
                public void threads(int intra) throws OrtException {
                    so.setIntraOpNumThreads(intra);
                    so.setInterOpNumThreads(1);
                }

                @Override
                public void entry(String key, String value) throws OrtException {
                    so.addConfigEntry(key, value);
                }

                @Override
                public void optLevel(String level) throws OrtException {
                    so.setOptimizationLevel(switch (level) {
                        case "basic" -> OrtSession.SessionOptions.OptLevel.BASIC_OPT;
                        case "extended" -> OrtSession.SessionOptions.OptLevel.EXTENDED_OPT;
                        default -> OrtSession.SessionOptions.OptLevel.ALL_OPT;
                    });
                }

                @Override
                public void memoryPattern(boolean on) throws OrtException {
                    so.setMemoryPatternOptimization(on);
                }

                @Override
                public void cpuArena(boolean on) throws OrtException {
                    so.setCPUArenaAllocator(on);
                }

                @Override
                public void profiling(String prefix) throws OrtException {
                    so.enableProfiling(prefix);
                }

                @Override
                public void cuda(int deviceId, Map<String, String> providerOptions) {
                    // Compiled without it in bytedeco's build ("This binary was not compiled with CUDA
                    // support"): the C++ API's sessions (NativeSessions) run on the GPU.
                    throw new IllegalStateException("ONNX Runtime's Java API has no CUDA provider in this build; on a GPU "
                            + "the train step runs through the C++ API (TrainSession.open)");
                }
            }, o);
            return env().createSession(model, so);
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime could not create the session: " + e.getMessage(), e);
        }
    }

    /** Settings with this prefix are the CUDA provider's options, not session config entries ({@code cuda.use_tf32=1}). */
    public static final String CUDA_PREFIX = "cuda.";

    /** Where the settings go: a session-options object of one of ONNX Runtime's APIs. */
    interface Target {
        void threads(int intraOp) throws Exception;

        void entry(String key, String value) throws Exception;

        /** basic, extended or all. */
        void optLevel(String level) throws Exception;

        void memoryPattern(boolean on) throws Exception;

        void cpuArena(boolean on) throws Exception;

        void profiling(String prefix) throws Exception;

        /** The CUDA provider on the device, with its provider options (use_tf32, gpu_mem_limit, ...). */
        void cuda(int deviceId, Map<String, String> providerOptions) throws Exception;
    }

    /** Applies the options; the CUDA provider's failure to load is explained (a missing CUDA library, typically). */
    static void configure(Target t, RuntimeOptions o) throws OrtException {
        try {
            t.optLevel("all");
            t.threads(o.effectiveThreads());
            t.entry("session.intra_op.allow_spinning", o.spinning() ? "1" : "0");
            t.entry("session.inter_op.allow_spinning", "0");
            for (Map.Entry<String, String> e : o.ort().entrySet()) {
                if (!e.getKey().startsWith(CUDA_PREFIX)) apply(t, e.getKey(), e.getValue());
            }
            if (o.profilePrefix() != null) t.profiling(o.profilePrefix());
        } catch (OrtException | RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException("ONNX Runtime refused a session setting: " + e.getMessage(), e);
        }
        if (o.device() != RuntimeOptions.Device.CUDA) return;
        // float32 means float32 (PyTorch's default for matrix products too): TF32 only when asked for.
        Map<String, String> cuda = new java.util.TreeMap<>(Map.of("use_tf32", "0"));
        o.ort().forEach((k, v) -> {
            if (k.startsWith(CUDA_PREFIX)) cuda.put(k.substring(CUDA_PREFIX.length()), v);
        });
        try {
            t.cuda(o.deviceId(), cuda);
        } catch (IllegalStateException e) {
            throw e;
        } catch (Exception e) {
            // Typically a missing CUDA 13 runtime library (libcudart.so.13, libcublas.so.13, libcudnn.so.9): ORT names it.
            throw new IllegalStateException("the CUDA execution provider failed to load on device " + o.deviceId()
                    + " (it needs the CUDA 13 runtime, cuBLAS, cuDNN 9 and a driver on the library path; ops/gpu/README.md): "
                    + e.getMessage(), e);
        }
    }

    private static void apply(Target t, String key, String value) throws Exception {
        switch (key) {
            case RuntimeOptions.OPT_LEVEL -> {
                if (!value.equals("basic") && !value.equals("extended") && !value.equals("all")) {
                    throw new IllegalArgumentException(key + " must be basic, extended or all, got " + value);
                }
                t.optLevel(value);
            }
            case RuntimeOptions.MEMORY_PATTERN -> t.memoryPattern(flag(key, value));
            case RuntimeOptions.CPU_ARENA -> t.cpuArena(flag(key, value));
            default -> t.entry(key, value);
        }
    }

    private static boolean flag(String key, String value) {
        if (!value.equals("0") && !value.equals("1")) throw new IllegalArgumentException(key + " must be 0 or 1, got " + value);
        return value.equals("1");
    }

    /**
     * Whether the loaded natives have the CUDA execution provider. Asked of the C API: bytedeco's
     * loader path leaves the Java API's provider list unset.
     */
    static boolean hasCuda() {
        env();
        try (org.bytedeco.onnxruntime.StringVector v = org.bytedeco.onnxruntime.global.onnxruntime.GetAvailableProviders()) {
            for (long i = 0; i < v.size(); i++) if (v.get(i).getString().equals("CUDAExecutionProvider")) return true;
            return false;
        }
    }

    static IllegalStateException noCudaBuild() {
        return new IllegalStateException("the CUDA execution provider is not in this build: the jar was built with ONNX "
                + "Runtime's CPU natives; rebuild with the Maven profile 'gpu' (mvn -Pgpu package), which packs the "
                + "linux-x86_64-gpu natives (CUDA 13)");
    }
}
