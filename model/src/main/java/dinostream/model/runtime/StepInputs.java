package dinostream.model.runtime;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.TrainStep;

import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * One run's inputs besides the state, checked and in Java buffers: what both runtimes turn into
 * their own tensors, so that they feed the graph the same values.
 *
 * @param floats crops, hyperparameters and stochastic-depth masks by input name, with their shapes
 * @param freeze the freeze-last-layer flags (a scalar for a single-step model)
 */
record StepInputs(Map<String, Floats> floats, boolean[] freeze, long[] freezeShape) {
    /** A float input: the buffer's remaining values, of the shape. */
    record Floats(FloatBuffer data, long[] shape) {}

    static StepInputs of(TrainStep.Model model, FloatBuffer[] crops, Map<String, FloatBuffer> dropPathMasks,
                         SplittableRandom dropPathRng, TrainSession.Hyper... hyper) {
        DinoConfig config = model.config();
        int k = model.stepsPerRun();
        if (hyper.length != k) throw new IllegalArgumentException("this model runs " + k + " steps per call, got " + hyper.length + " hyperparameter sets");
        if (crops.length != config.nCrops()) throw new IllegalArgumentException("expected " + config.nCrops() + " crop tensors, got " + crops.length);
        Map<String, Floats> in = new LinkedHashMap<>();
        for (int v = 0; v < crops.length; v++) {
            long[] shape = withSteps(k, TrainStep.cropShape(config, model.batch(), v));
            long need = numel(shape);
            if (crops[v].remaining() != need) {
                throw new IllegalArgumentException("crops/" + v + " has " + crops[v].remaining() + " values, expected " + need
                        + " for shape " + Arrays.toString(shape));
            }
            in.put(TrainStep.crop(v), new Floats(crops[v], shape));
        }
        float[] lr = new float[k], wd = new float[k], tt = new float[k], mom = new float[k];
        boolean[] freeze = new boolean[k];
        for (int i = 0; i < k; i++) {
            lr[i] = hyper[i].lr();
            wd[i] = hyper[i].weightDecay();
            tt[i] = hyper[i].teacherTemp();
            mom[i] = hyper[i].momentum();
            freeze[i] = hyper[i].freezeLastLayer();
        }
        long[] perStep = k == 1 ? new long[0] : new long[]{k};
        in.put(TrainStep.LR, new Floats(FloatBuffer.wrap(lr), perStep));
        in.put(TrainStep.WEIGHT_DECAY, new Floats(FloatBuffer.wrap(wd), perStep));
        in.put(TrainStep.TEACHER_TEMP, new Floats(FloatBuffer.wrap(tt), perStep));
        in.put(TrainStep.MOMENTUM, new Floats(FloatBuffer.wrap(mom), perStep));
        for (Map.Entry<String, long[]> m : model.dropPathMasks().entrySet()) {
            long[] shape = withSteps(k, m.getValue());
            FloatBuffer mask = dropPathMasks == null ? dropPathMask(config, m.getKey(), shape, dropPathRng)
                    : Objects.requireNonNull(dropPathMasks.get(m.getKey()), "no mask given for " + m.getKey());
            in.put(m.getKey(), new Floats(mask, shape));
        }
        return new StepInputs(in, freeze, perStep);
    }

    /** Stochastic depth per sample: floor(keep + U[0,1)) / keep, i.e. 0 or 1/keep (model/docs/algorithm.md §2). */
    private static FloatBuffer dropPathMask(DinoConfig config, String name, long[] shape, SplittableRandom rng) {
        int block = Integer.parseInt(name.split("/")[2]);
        double keep = 1 - TrainStep.dropPathRates(config)[block];
        float[] m = new float[(int) numel(shape)];
        for (int i = 0; i < m.length; i++) m[i] = (float) (Math.floor(keep + rng.nextDouble()) / keep);
        return FloatBuffer.wrap(m);
    }

    /** The monitoring values of a finished run, one per step; the run's last step is {@code lastStep}. */
    static TrainSession.Stats[] stats(long lastStep, float[] loss, float[] entropy, float[] kl) {
        int k = loss.length;
        List<TrainSession.Stats> out = new ArrayList<>(k);
        for (int i = 0; i < k; i++) out.add(new TrainSession.Stats(lastStep - k + 1 + i, loss[i], entropy[i], kl[i]));
        return out.toArray(TrainSession.Stats[]::new);
    }

    /** Whether a run may be applied: every loss and the new state's checksum finite. */
    static boolean finite(float[] loss, float stateSum) {
        boolean ok = Float.isFinite(stateSum);
        for (float l : loss) ok &= Float.isFinite(l);
        return ok;
    }

    private static long[] withSteps(int k, long[] shape) {
        if (k == 1) return shape;
        long[] s = new long[shape.length + 1];
        s[0] = k;
        System.arraycopy(shape, 0, s, 1, shape.length);
        return s;
    }

    static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }
}
