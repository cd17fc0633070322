package dinostream.model.runtime;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.onnxruntime.Env;
import org.bytedeco.onnxruntime.MemoryInfo;
import org.bytedeco.onnxruntime.CUDAProviderOptions;
import org.bytedeco.onnxruntime.StringStringMap;
import org.bytedeco.onnxruntime.Session;
import org.bytedeco.onnxruntime.SessionOptions;

import static org.bytedeco.onnxruntime.global.onnxruntime.ORT_ENABLE_ALL;
import static org.bytedeco.onnxruntime.global.onnxruntime.ORT_ENABLE_BASIC;
import static org.bytedeco.onnxruntime.global.onnxruntime.ORT_ENABLE_EXTENDED;
import static org.bytedeco.onnxruntime.global.onnxruntime.ORT_LOGGING_LEVEL_WARNING;
import static org.bytedeco.onnxruntime.global.onnxruntime.OrtArenaAllocator;
import static org.bytedeco.onnxruntime.global.onnxruntime.OrtMemTypeDefault;

/**
 * Sessions of ONNX Runtime's C++ API (bytedeco's preset), with the settings {@link Sessions} gives
 * the Java API's: the same native library serves both, so one process holds one ONNX Runtime.
 */
final class NativeSessions {
    private NativeSessions() {}

    /** ONNX Runtime keeps one environment per process; the Java API's and this one are the same. */
    private static Env env;

    private static synchronized Env env() {
        Sessions.env();   // loads the natives once, with the settings Sessions makes first
        if (env == null) env = new Env(ORT_LOGGING_LEVEL_WARNING, "dinostream");
        return env;
    }

    /** A session and the options it was made with (ONNX Runtime reads them until the session closes). */
    record Handle(Session session, SessionOptions options) implements AutoCloseable {
        @Override
        public void close() {
            session.close();
            options.close();
        }
    }

    static Handle create(byte[] model, RuntimeOptions o) {
        SessionOptions so = new SessionOptions();
        try {
            Sessions.configure(new Sessions.Target() {
                @Override
                public void threads(int intraOp) {
                    so.SetIntraOpNumThreads(intraOp);
                    so.SetInterOpNumThreads(1);
                }

                @Override
                public void entry(String key, String value) {
                    so.AddConfigEntry(key, value);
                }

                @Override
                public void optLevel(String level) {
                    so.SetGraphOptimizationLevel(switch (level) {
                        case "basic" -> ORT_ENABLE_BASIC;
                        case "extended" -> ORT_ENABLE_EXTENDED;
                        default -> ORT_ENABLE_ALL;
                    });
                }

                @Override
                public void memoryPattern(boolean on) {
                    if (on) so.EnableMemPattern();
                    else so.DisableMemPattern();
                }

                @Override
                public void cpuArena(boolean on) {
                    if (on) so.EnableCpuMemArena();
                    else so.DisableCpuMemArena();
                }

                @Override
                public void profiling(String prefix) {
                    so.EnableProfiling(new BytePointer(prefix));
                }

                @Override
                public void cuda(int deviceId, java.util.Map<String, String> providerOptions) {
                    if (!Sessions.hasCuda()) {
                        throw Sessions.noCudaBuild();
                    }
                    try (CUDAProviderOptions cuda = new CUDAProviderOptions(); StringStringMap m = new StringStringMap()) {
                        m.put(new BytePointer("device_id"), new BytePointer(Integer.toString(deviceId)));
                        providerOptions.forEach((k, v) -> m.put(new BytePointer(k), new BytePointer(v)));
                        cuda.Update(m);
                        so.AppendExecutionProvider_CUDA_V2(cuda.asOrtCUDAProviderOptionsV2());
                    }
                }
            }, o);
            BytePointer bytes = new BytePointer(model);
            try {
                return new Handle(new Session(env(), bytes, model.length, so), so);
            } finally {
                bytes.close();
            }
        } catch (RuntimeException | ai.onnxruntime.OrtException e) {
            so.close();
            if (e instanceof IllegalStateException ise) throw ise;
            throw new IllegalStateException("ONNX Runtime could not create the session: " + e.getMessage(), e);
        }
    }

    static MemoryInfo hostMemory() {
        return MemoryInfo.CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    }

    /** Where the state lives: the GPU's memory for CUDA, host memory on the CPU. */
    static MemoryInfo deviceMemory(RuntimeOptions o) {
        return o.device() == RuntimeOptions.Device.CUDA
                ? new MemoryInfo("Cuda", OrtArenaAllocator, o.deviceId(), OrtMemTypeDefault)
                : hostMemory();
    }
}
