package dinostream.model.runtime;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Presets;
import dinostream.model.dino.TrainStep;
import dinostream.model.io.DinoState;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.FloatBuffer;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainSessionTest {
    static FloatBuffer[] randomCrops(DinoConfig c, int batch, Random r) {
        FloatBuffer[] crops = new FloatBuffer[c.nCrops()];
        for (int v = 0; v < crops.length; v++) {
            long[] sh = TrainStep.cropShape(c, batch, v);
            float[] x = new float[(int) (sh[0] * sh[1] * sh[2] * sh[3])];
            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
            crops[v] = FloatBuffer.wrap(x);
        }
        return crops;
    }

    /** A state with one NaN weight: the step is refused and the state is what it was; a clean state steps. */
    @ParameterizedTest
    @EnumSource(value = RuntimeOptions.Runtime.class, names = {"HOST", "DEVICE"})
    void aStepWithANonFiniteResultIsNotApplied(RuntimeOptions.Runtime runtime) {
        DinoConfig c = Presets.get("test");
        DinoState clean = DinoState.init(c, 4);
        java.util.Map<String, dinostream.model.io.TensorData> t = new java.util.LinkedHashMap<>(clean.tensors());
        String key = t.keySet().stream().filter(k -> k.startsWith("student/") && k.endsWith("weight")).findFirst().orElseThrow();
        float[] w = t.get(key).toFloatArray();
        w[0] = Float.NaN;
        t.put(key, dinostream.model.io.TensorData.ofFloats(t.get(key).shape(), w));
        DinoState poisoned = DinoState.of(c, t);
        Random r = new Random(2);
        TrainSession.Hyper h = new TrainSession.Hyper(1e-3f, 0.04f, 0.04f, 0.996f, false);
        try (TrainSession s = TrainSession.open(TrainStep.build(c, 2), poisoned, RuntimeOptions.cpu().withThreads(1).withRuntime(runtime), 0)) {
            byte[] before = s.stateBytes();
            TrainSession.NonFiniteStepException e = assertThrows(TrainSession.NonFiniteStepException.class, () -> s.run(randomCrops(c, 2, r), h));
            assertEquals(0, e.step());
            assertArrayEquals(before, s.stateBytes(), "the refused step left the state as it was");
            assertThrows(TrainSession.NonFiniteStepException.class, () -> s.run(randomCrops(c, 2, r), h));
        }
        try (TrainSession s = TrainSession.open(TrainStep.build(c, 2), clean, RuntimeOptions.cpu().withThreads(1).withRuntime(runtime), 0)) {
            assertEquals(1, s.run(randomCrops(c, 2, r), h)[0].step());
        }
    }

    /**
     * On a TaskManager the direct-buffer pool is a declared budget: the state's load copies go once
     * the first step has replaced them, the crops reuse one buffer per view, and close frees the rest,
     * so a restarted task does not find its predecessor's buffers still counted.
     */
    @ParameterizedTest
    @EnumSource(value = RuntimeOptions.Runtime.class, names = {"HOST", "DEVICE"})
    void directMemoryIsTheCropsOnceTheFirstStepRan(RuntimeOptions.Runtime runtime) {
        DinoConfig c = Presets.get("fmnist-small");
        TrainMemory need = TrainMemory.of(c, 2);
        long before = DirectMemory.used();
        Random r = new Random(3);
        TrainSession s = TrainSession.open(TrainStep.build(c, 2), DinoState.init(c, 4), RuntimeOptions.cpu().withThreads(1).withRuntime(runtime), 0);
        long loaded = DirectMemory.used() - before;
        assertTrue(loaded >= 0.99 * need.stateBytes(), "the state is loaded through direct buffers: " + loaded);
        for (int i = 0; i < 3; i++) s.run(randomCrops(c, 2, r), new TrainSession.Hyper(1e-3f, 0.04f, 0.04f, 0.996f, false));
        long running = DirectMemory.used() - before;
        assertTrue(running <= need.cropBytes() + (64 << 10), "after the first step only the crops stay: " + running + " bytes, crops " + need.cropBytes());
        s.close();
        assertTrue(DirectMemory.used() - before <= 64 << 10, "closed: " + (DirectMemory.used() - before));
    }

    @ParameterizedTest
    @EnumSource(value = RuntimeOptions.Runtime.class, names = {"HOST", "DEVICE"})
    void stateBytesEqualTheSerializedStateAfterSteps(RuntimeOptions.Runtime runtime) {
        DinoConfig c = Presets.get("test");
        try (TrainSession s = TrainSession.open(TrainStep.build(c, 2), DinoState.init(c, 4), RuntimeOptions.cpu().withThreads(1).withRuntime(runtime), 0)) {
            Random r = new Random(1);
            for (int step = 0; step < 2; step++) {
                FloatBuffer[] crops = new FloatBuffer[c.nCrops()];
                for (int v = 0; v < crops.length; v++) {
                    long[] sh = TrainStep.cropShape(c, 2, v);
                    float[] x = new float[(int) (sh[0] * sh[1] * sh[2] * sh[3])];
                    for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                    crops[v] = FloatBuffer.wrap(x);
                }
                s.run(crops, new TrainSession.Hyper(1e-3f, 0.04f, 0.04f, 0.996f, false));
            }
            byte[] bytes = s.stateBytes();
            assertArrayEquals(s.state().toBytes(), bytes);
            assertEquals(2, DinoState.fromBytes(bytes, "test").step());
        }
    }

    @ParameterizedTest
    @EnumSource(value = RuntimeOptions.Runtime.class, names = {"HOST", "DEVICE"})
    void aStateOfAnotherShapeIsRejected(RuntimeOptions.Runtime runtime) {
        DinoConfig c = Presets.get("test");
        DinoConfig other = Presets.get("test");
        other.dim = 48;
        other.heads = 3;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TrainSession.open(TrainStep.build(c, 2), DinoState.init(other, 0), RuntimeOptions.cpu().withRuntime(runtime), 0));
        org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("student/backbone.cls_token"), e.getMessage());
    }
}
