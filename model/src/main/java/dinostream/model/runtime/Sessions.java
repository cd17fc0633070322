package dinostream.model.runtime;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtProvider;
import ai.onnxruntime.OrtSession;

import java.util.Map;

/** Creates ONNX Runtime sessions with the project's settings, and explains provider failures. */
public final class Sessions {
    private Sessions() {}

    public static OrtEnvironment env() {
        return OrtEnvironment.getEnvironment();
    }

    public static OrtSession create(byte[] model, RuntimeOptions o) {
        try {
            OrtSession.SessionOptions so = new OrtSession.SessionOptions();
            so.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            so.setIntraOpNumThreads(o.effectiveThreads());
            so.setInterOpNumThreads(1);
            so.addConfigEntry("session.intra_op.allow_spinning", o.spinning() ? "1" : "0");
            so.addConfigEntry("session.inter_op.allow_spinning", "0");
            for (Map.Entry<String, String> e : o.ort().entrySet()) apply(so, e.getKey(), e.getValue());
            if (o.profilePrefix() != null) so.enableProfiling(o.profilePrefix());
            if (o.device() == RuntimeOptions.Device.CUDA) addCuda(so, o.deviceId());
            return env().createSession(model, so);
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime could not create the session: " + e.getMessage(), e);
        }
    }

    private static void apply(OrtSession.SessionOptions so, String key, String value) throws OrtException {
        switch (key) {
            case RuntimeOptions.OPT_LEVEL -> so.setOptimizationLevel(switch (value) {
                case "basic" -> OrtSession.SessionOptions.OptLevel.BASIC_OPT;
                case "extended" -> OrtSession.SessionOptions.OptLevel.EXTENDED_OPT;
                case "all" -> OrtSession.SessionOptions.OptLevel.ALL_OPT;
                default -> throw new IllegalArgumentException(key + " must be basic, extended or all, got " + value);
            });
            case RuntimeOptions.MEMORY_PATTERN -> so.setMemoryPatternOptimization(flag(key, value));
            case RuntimeOptions.CPU_ARENA -> so.setCPUArenaAllocator(flag(key, value));
            default -> so.addConfigEntry(key, value);
        }
    }

    private static boolean flag(String key, String value) {
        if (!value.equals("0") && !value.equals("1")) throw new IllegalArgumentException(key + " must be 0 or 1, got " + value);
        return value.equals("1");
    }

    private static void addCuda(OrtSession.SessionOptions so, int deviceId) throws OrtException {
        if (!OrtEnvironment.getAvailableProviders().contains(OrtProvider.CUDA)) {
            throw new IllegalStateException("the CUDA execution provider is not in this build: the jar was built with the "
                    + "CPU ONNX Runtime; rebuild with the Maven profile 'gpu' (mvn -Pgpu package), which uses onnxruntime_gpu");
        }
        try {
            so.addCUDA(deviceId);
        } catch (OrtException e) {
            // Typically a missing CUDA 12 runtime library (libcudart.so.12, libcublas.so.12, ...): ORT names it.
            throw new IllegalStateException("the CUDA execution provider failed to load on device " + deviceId
                    + " (it needs the CUDA 12 runtime, cuBLAS and a driver on the library path): " + e.getMessage(), e);
        }
    }
}
