package dinostream.model.runtime;

/**
 * How ONNX Runtime runs a model.
 *
 * @param threads  intra-op threads (0: one per available core)
 * @param spinning whether idle worker threads spin; off by default because on shared cores a
 *                 spinning pool steals the time the other threads need (measured 2.8x slower)
 * @param device   CPU, or CUDA with {@code deviceId}
 */
public record RuntimeOptions(int threads, boolean spinning, Device device, int deviceId) {
    public enum Device { CPU, CUDA }

    public static RuntimeOptions cpu() {
        return new RuntimeOptions(0, false, Device.CPU, 0);
    }

    public RuntimeOptions withThreads(int t) {
        return new RuntimeOptions(t, spinning, device, deviceId);
    }

    public RuntimeOptions withSpinning(boolean s) {
        return new RuntimeOptions(threads, s, device, deviceId);
    }

    public RuntimeOptions onCuda(int id) {
        return new RuntimeOptions(threads, spinning, Device.CUDA, id);
    }

    public int effectiveThreads() {
        return threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
    }
}
