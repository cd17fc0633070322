package dinostream.model.runtime;

import java.util.Map;
import java.util.TreeMap;

/**
 * How ONNX Runtime runs a model.
 *
 * @param threads  intra-op threads (0: one per available core)
 * @param spinning whether idle worker threads spin; off by default because on shared cores a
 *                 spinning pool steals the time the other threads need (measured 2.8x slower)
 * @param device   CPU, or CUDA with {@code deviceId}
 * @param profilePrefix where ONNX Runtime's profiler writes its trace (a path prefix; null: off)
 * @param runtime  where the train step's state lives between steps: {@link Runtime#HOST} (ONNX Runtime's
 *                 Java API), {@link Runtime#DEVICE} (IoBinding: on the GPU for CUDA), or {@link Runtime#AUTO}:
 *                 the device decides (DEVICE on CUDA, HOST on the CPU)
 * @param ort      further session settings for measurements: ONNX Runtime session config entries
 *                 (e.g. {@code session.intra_op.allow_spinning}), and {@link #OPT_LEVEL},
 *                 {@link #MEMORY_PATTERN}, {@link #CPU_ARENA}, which are session options rather than entries
 */
public record RuntimeOptions(int threads, boolean spinning, Device device, int deviceId, String profilePrefix,
                             Runtime runtime, Map<String, String> ort) {
    public enum Device { CPU, CUDA }

    public enum Runtime { AUTO, HOST, DEVICE }

    /** Graph optimization level: basic, extended or all (the default). */
    public static final String OPT_LEVEL = "graph_optimization_level";
    /** Memory pattern planning, 1 (default) or 0. */
    public static final String MEMORY_PATTERN = "memory_pattern";
    /** The CPU memory arena, 1 (default) or 0. */
    public static final String CPU_ARENA = "cpu_arena";

    public RuntimeOptions {
        ort = Map.copyOf(ort);
    }

    public static RuntimeOptions cpu() {
        return new RuntimeOptions(0, false, Device.CPU, 0, null, Runtime.AUTO, Map.of());
    }

    public RuntimeOptions withThreads(int t) {
        return new RuntimeOptions(t, spinning, device, deviceId, profilePrefix, runtime, ort);
    }

    public RuntimeOptions withSpinning(boolean s) {
        return new RuntimeOptions(threads, s, device, deviceId, profilePrefix, runtime, ort);
    }

    public RuntimeOptions onCuda(int id) {
        return new RuntimeOptions(threads, spinning, Device.CUDA, id, profilePrefix, runtime, ort);
    }

    public RuntimeOptions withProfiling(String prefix) {
        return new RuntimeOptions(threads, spinning, device, deviceId, prefix, runtime, ort);
    }

    public RuntimeOptions withOrt(Map<String, String> settings) {
        Map<String, String> m = new TreeMap<>(ort);
        m.putAll(settings);
        return new RuntimeOptions(threads, spinning, device, deviceId, profilePrefix, runtime, m);
    }

    public RuntimeOptions withRuntime(Runtime r) {
        return new RuntimeOptions(threads, spinning, device, deviceId, profilePrefix, r, ort);
    }

    /** AUTO resolved: the state stays on a GPU; on the CPU the Java API's runtime, the one longest in use. */
    public Runtime effectiveRuntime() {
        if (runtime != Runtime.AUTO) return runtime;
        return device == Device.CUDA ? Runtime.DEVICE : Runtime.HOST;
    }

    public int effectiveThreads() {
        return threads > 0 ? threads : java.lang.Runtime.getRuntime().availableProcessors();
    }
}
