package dinostream.model.runtime;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtProvider;
import ai.onnxruntime.OrtSession;

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
            if (o.device() == RuntimeOptions.Device.CUDA) addCuda(so, o.deviceId());
            return env().createSession(model, so);
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime could not create the session: " + e.getMessage(), e);
        }
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
