package dinostream.model.dino;

import dinostream.model.io.DinoState;
import dinostream.model.runtime.RuntimeOptions;
import dinostream.model.runtime.TrainSession;
import org.junit.jupiter.api.Test;

import java.nio.FloatBuffer;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Repeated steps on one fixed batch must fit it: an overfitting check that holds for a correct step
 * and fails for a broken gradient (here: the update reversed by a negative learning rate).
 */
class LearningSignalTest {
    record Run(double[] loss, double[] kl) {}

    static Run run(float lr, float momentum, double centerMomentum, int steps) {
        return run(lr, momentum, centerMomentum, steps, DinoConfig.Precision.FP32);
    }

    static Run run(float lr, float momentum, double centerMomentum, int steps, DinoConfig.Precision precision) {
        DinoConfig c = Presets.get("test").precision(precision);
        c.centerMomentum = centerMomentum;
        int batch = 8;
        Random rnd = new Random(7);
        FloatBuffer[] crops = new FloatBuffer[c.nCrops()];
        for (int v = 0; v < crops.length; v++) {
            long[] s = TrainStep.cropShape(c, batch, v);
            float[] x = new float[(int) (s[0] * s[1] * s[2] * s[3])];
            for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
            crops[v] = FloatBuffer.wrap(x);
        }
        Run r = new Run(new double[steps], new double[steps]);
        try (TrainSession s = TrainSession.open(TrainStep.build(c, batch), DinoState.init(c, 3), RuntimeOptions.cpu().withThreads(1), 0)) {
            for (int i = 0; i < steps; i++) {
                for (FloatBuffer b : crops) b.rewind();
                TrainSession.Stats st = s.run(crops, new TrainSession.Hyper(lr, 0.04f, 0.04f, momentum, false))[0];
                r.loss[i] = st.loss();
                r.kl[i] = st.kl();
            }
        }
        return r;
    }

    static double mean(double[] x, int from, int to) {
        double s = 0;
        for (int i = from; i < to; i++) s += x[i];
        return s / (to - from);
    }

    @Test
    void lossFallsWhenTheTargetsAreHeldFixed() {
        // Teacher and centre frozen (momentum 1): the targets are fixed and the loss must fall (towards the
        // targets' own entropy, its floor).
        double[] l = run(3e-3f, 1f, 1.0, 30).loss;
        assertTrue(mean(l, 25, 30) < 0.75 * mean(l, 0, 3), "loss " + mean(l, 0, 3) + " -> " + mean(l, 25, 30));
        double[] reversed = run(-3e-3f, 1f, 1.0, 30).loss;
        assertTrue(mean(reversed, 25, 30) > mean(reversed, 0, 3), "loss fell with a reversed update");
    }

    @Test
    void studentTeacherKlFallsWithTheRealDinoTargets() {
        // With EMA and centering the targets move (centering raises their entropy, so the loss
        // itself may rise); the student-teacher KL is what the student minimizes.
        Run ok = run(3e-3f, 0.996f, 0.9, 40);
        assertTrue(mean(ok.kl, 35, 40) < 0.3 * mean(ok.kl, 0, 5), "KL " + mean(ok.kl, 0, 5) + " -> " + mean(ok.kl, 35, 40));
        Run reversed = run(-3e-3f, 0.996f, 0.9, 40);
        assertTrue(mean(reversed.kl, 35, 40) > mean(reversed.kl, 0, 5), "KL fell with a reversed update");
    }

    /** The emulated bf16 step learns as the float32 one does (the same check, the same thresholds). */
    @Test
    void bf16StepLearnsToo() {
        Run ok = run(3e-3f, 0.996f, 0.9, 40, DinoConfig.Precision.BF16);
        assertTrue(mean(ok.kl, 35, 40) < 0.3 * mean(ok.kl, 0, 5), "bf16 KL " + mean(ok.kl, 0, 5) + " -> " + mean(ok.kl, 35, 40));
        double[] l = run(3e-3f, 1f, 1.0, 30, DinoConfig.Precision.BF16).loss;
        assertTrue(mean(l, 25, 30) < 0.75 * mean(l, 0, 3), "bf16 loss " + mean(l, 0, 3) + " -> " + mean(l, 25, 30));
    }
}
