package dinostream.model.runtime;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Presets;
import dinostream.model.dino.StateKeys;
import dinostream.model.dino.TrainStep;
import dinostream.model.io.DinoState;
import dinostream.model.io.TensorData;
import org.junit.jupiter.api.Test;

import java.nio.FloatBuffer;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The device-resident runtime (IoBinding) in its CPU form against the Java API's runtime: the same
 * graph from the same state with the same crops and drop-path masks gives the same steps.
 */
class BoundTrainSessionTest {
    static final double TOLERANCE = 1e-6;
    static final TrainSession.Hyper HYPER = new TrainSession.Hyper(2e-3f, 0.04f, 0.04f, 0.996f, false);

    private static TrainSession open(TrainStep.Model m, DinoState s, RuntimeOptions.Runtime r) {
        return TrainSession.open(m, s, RuntimeOptions.cpu().withThreads(1).withRuntime(r), 7);
    }

    /**
     * Every state tensor, every monitoring value and the teacher's features, step after step, within
     * 1e-6; with the state bound to the device's memory and to host memory (the host runtime on a GPU),
     * the same memory on the CPU.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(booleans = {true, false})
    void stepsEqualTheJavaApiRuntime(boolean stateOnDevice) {
        DinoConfig c = Presets.get("fmnist-tiny");
        TrainStep.Model model = TrainStep.build(c, 4);
        DinoState init = DinoState.init(c, 11);
        Random r = new Random(5);
        try (TrainSession host = open(model, init, RuntimeOptions.Runtime.HOST);
             TrainSession device = new BoundTrainSession(model, init, RuntimeOptions.cpu().withThreads(1), 7, stateOnDevice)) {
            assertTrue(host instanceof JavaApiTrainSession);
            assertTrue(open(model, init, RuntimeOptions.Runtime.DEVICE) instanceof BoundTrainSession b && closed(b));
            for (int step = 1; step <= 4; step++) {
                FloatBuffer[] crops = TrainSessionTest.randomCrops(c, 4, r);
                // The last step freezes the last layer: the flag reaches the graph alike.
                TrainSession.Hyper h = step == 4 ? new TrainSession.Hyper(2e-3f, 0.04f, 0.05f, 0.99f, true) : HYPER;
                TrainSession.Stats a = host.run(crops, h)[0];
                TrainSession.Stats b = device.run(crops, h)[0];
                assertEquals(step, b.step());
                assertEquals(host.step(), device.step());
                assertEquals(a.loss(), b.loss(), TOLERANCE, "loss at step " + step);
                assertEquals(a.teacherEntropy(), b.teacherEntropy(), TOLERANCE);
                assertEquals(a.kl(), b.kl(), TOLERANCE);
                float[][] fa = host.teacherFeatures(), fb = device.teacherFeatures();
                assertEquals(fa.length, fb.length);
                for (int i = 0; i < fa.length; i++) assertArrayEquals(fa[i], fb[i], (float) TOLERANCE);
            }
            DinoState a = host.state(), b = device.state();
            for (String k : StateKeys.all(c)) assertClose(k, a.get(k), b.get(k));
            assertEquals(4, b.step());
            assertArrayEquals(b.toBytes(), device.stateBytes(), "stateBytes is the serialized state");
            assertArrayEquals(b.get(StateKeys.CENTER).toFloatArray(), device.get(StateKeys.CENTER).toFloatArray());
            assertNotEquals(init.get(StateKeys.CENTER).toFloatArray()[0], b.get(StateKeys.CENTER).toFloatArray()[0], "the state moved");
        }
    }

    /** A Loop model (K steps per run) binds its per-step inputs as vectors. */
    @Test
    void aLoopRunEqualsTheHostRuntime() {
        DinoConfig c = Presets.get("test");
        int k = 3;
        TrainStep.Model model = TrainStep.buildLoop(c, 2, k);
        DinoState init = DinoState.init(c, 2);
        Random r = new Random(9);
        FloatBuffer[] crops = new FloatBuffer[c.nCrops()];
        for (int v = 0; v < crops.length; v++) {
            long[] sh = TrainStep.cropShape(c, 2, v);
            float[] x = new float[(int) (k * sh[0] * sh[1] * sh[2] * sh[3])];
            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
            crops[v] = FloatBuffer.wrap(x);
        }
        TrainSession.Hyper[] hs = {HYPER, HYPER, new TrainSession.Hyper(1e-3f, 0.04f, 0.04f, 0.99f, true)};
        try (TrainSession host = open(model, init, RuntimeOptions.Runtime.HOST);
             TrainSession device = open(model, init, RuntimeOptions.Runtime.DEVICE)) {
            TrainSession.Stats[] a = host.run(crops, hs);
            TrainSession.Stats[] b = device.run(crops, hs);
            for (int i = 0; i < k; i++) {
                assertEquals(a[i].step(), b[i].step());
                assertEquals(a[i].loss(), b[i].loss(), TOLERANCE);
            }
            assertEquals(k, device.step());
            assertEquals(null, device.teacherFeatures(), "a Loop model has no features output");
            DinoState sa = host.state(), sb = device.state();
            for (String key : StateKeys.all(c)) assertClose(key, sa.get(key), sb.get(key));
        }
    }

    /** No trace to hand back (see endProfiling): said, and the session goes on stepping. */
    @Test
    void profilingIsRefusedAndTheSessionStillSteps() {
        DinoConfig c = Presets.get("test");
        try (TrainSession s = open(TrainStep.build(c, 2), DinoState.init(c, 1), RuntimeOptions.Runtime.DEVICE)) {
            UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class, s::endProfiling);
            assertTrue(e.getMessage().contains("--runtime host"), e.getMessage());
            assertEquals(1, s.run(TrainSessionTest.randomCrops(c, 2, new Random(4)), HYPER)[0].step());
        }
    }

    /** Asking a CPU build for CUDA says how to get one, for both runtimes. */
    @Test
    void cudaOnTheCpuBuildSaysWhichBuildHasIt() {
        DinoConfig c = Presets.get("test");
        for (RuntimeOptions.Runtime r : new RuntimeOptions.Runtime[]{RuntimeOptions.Runtime.HOST, RuntimeOptions.Runtime.DEVICE}) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> TrainSession.open(TrainStep.build(c, 2),
                    DinoState.init(c, 0), RuntimeOptions.cpu().onCuda(0).withRuntime(r), 0));
            assertTrue(e.getMessage().contains("-Pgpu"), e.getMessage());
        }
        assertEquals(RuntimeOptions.Runtime.DEVICE, RuntimeOptions.cpu().onCuda(0).effectiveRuntime(), "on a GPU the state stays there");
        assertEquals(RuntimeOptions.Runtime.HOST, RuntimeOptions.cpu().effectiveRuntime());
    }

    private static boolean closed(TrainSession s) {
        s.close();
        return true;
    }

    private static void assertClose(String key, TensorData a, TensorData b) {
        assertArrayEquals(a.shape(), b.shape(), key);
        if (a.dtype() == dinostream.model.io.DType.I64) {
            assertEquals(a.data(), b.data(), key);
            return;
        }
        float[] x = a.toFloatArray(), y = b.toFloatArray();
        double worst = 0;
        for (int i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
        assertTrue(worst <= TOLERANCE, key + ": max |host - device| = " + worst);
    }
}
