package dinostream.model.runtime;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.StateKeys;
import dinostream.model.dino.TrainStep;
import dinostream.model.io.DinoState;
import dinostream.model.io.TensorData;

import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.Map;

/**
 * Runs a compiled train step repeatedly and holds the model's state between runs, in one of two
 * places (model/docs/runtime.md): host memory (the {@code host} runtime: {@link JavaApiTrainSession},
 * ONNX Runtime's Java API, on the CPU; on a GPU {@link BoundTrainSession} with the state bound to host
 * memory, copied to the device and back every run), or the execution device's memory (the
 * {@code device} runtime: {@link BoundTrainSession}, IoBinding; only crops go up and scalars come back
 * per run; the host copy is made for {@link #state()} / {@link #stateBytes()}: checkpoints,
 * snapshots, exports). {@link #open} picks one from {@link RuntimeOptions#effectiveRuntime()}.
 */
public interface TrainSession extends AutoCloseable {
    /** Per-step hyperparameters (from the schedules). */
    record Hyper(float lr, float weightDecay, float teacherTemp, float momentum, boolean freezeLastLayer) {}

    /** Monitoring values of one step. */
    record Stats(long step, float loss, float teacherEntropy, float kl) {}

    /**
     * A run whose loss or new state is not finite. It was not applied: the session's state is the
     * one before the run, and the next run starts from it.
     */
    final class NonFiniteStepException extends RuntimeException {
        private final long step;

        NonFiniteStepException(long step, float[] loss, float stateSum) {
            super("the train step after step " + step + " gave loss " + Arrays.toString(loss)
                    + (Float.isFinite(stateSum) ? "" : " and a non-finite new state") + "; not applied");
            this.step = step;
        }

        /** The state's step counter, unchanged by the refused run. */
        public long step() {
            return step;
        }
    }

    /** A session on the runtime the options name (or the device implies). */
    static TrainSession open(TrainStep.Model model, DinoState initial, RuntimeOptions options, long dropPathSeed) {
        checkLayout(model.config(), initial);
        boolean cuda = options.device() == RuntimeOptions.Device.CUDA;
        return switch (options.effectiveRuntime()) {
            // The Java API in bytedeco's build has no CUDA provider: on a GPU the host runtime is the
            // C++ API's with the state bound to host memory, which moves it as the Java API would.
            case HOST -> cuda ? new BoundTrainSession(model, initial, options, dropPathSeed, false)
                    : new JavaApiTrainSession(model, initial, options, dropPathSeed);
            case DEVICE -> new BoundTrainSession(model, initial, options, dropPathSeed, true);
            case AUTO -> throw new IllegalStateException("effectiveRuntime() resolves AUTO");
        };
    }

    /** The layout must match; fields that do not shape the state (crop sizes, temperatures) may differ. */
    private static void checkLayout(DinoConfig config, DinoState initial) {
        for (StateKeys.Spec s : StateKeys.specs(config)) {
            long[] have = initial.get(s.key()).shape();
            if (!Arrays.equals(have, s.shape())) {
                throw new IllegalArgumentException("state tensor " + s.key() + " has shape " + Arrays.toString(have)
                        + " but the train-step model expects " + Arrays.toString(s.shape()));
            }
        }
    }

    DinoConfig config();

    TrainStep.Model model();

    /**
     * One run: one step for a single-step model, K steps for a Loop model.
     *
     * @param crops one buffer per view: [B, C, H, W] floats, or [K, B, C, H, W] for a Loop model
     * @param hyper one entry per step of the run
     * @return the monitoring values of each step
     */
    default Stats[] run(FloatBuffer[] crops, Hyper... hyper) {
        return run(crops, null, hyper);
    }

    /**
     * As {@link #run(FloatBuffer[], Hyper...)} with the stochastic-depth masks given instead of drawn
     * (replaying another implementation's masks in a parity test); null: drawn from the seeded RNG.
     */
    Stats[] run(FloatBuffer[] crops, Map<String, FloatBuffer> dropPathMasks, Hyper... hyper);

    /**
     * The teacher's CLS features of the last step's global crops, [2B, D] (a copy), for collapse
     * monitors; null before the first step and for a Loop model.
     */
    float[][] teacherFeatures();

    /** The step counter of the current state. */
    long step();

    /** A copy of the current state, in heap memory. */
    DinoState state();

    /**
     * The current state as safetensors bytes (what {@link DinoState#toBytes()} of {@link #state()}
     * gives) with one copy fewer per tensor: for checkpointing the live state.
     */
    byte[] stateBytes();

    /** The current value of one state tensor (a copy). */
    TensorData get(String key);

    /** Stops ONNX Runtime's profiler (when the options enabled it) and returns the trace file it wrote. */
    String endProfiling();

    @Override
    void close();
}
