package dinostream.model.dino;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dinostream.model.io.DinoState;
import dinostream.model.io.SafeTensors;
import dinostream.model.io.SafeTensorsFile;
import dinostream.model.io.TensorData;
import dinostream.model.runtime.RuntimeOptions;
import dinostream.model.runtime.TrainSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The whole train step against the PyTorch reference: fixtures written by
 * the PyTorch reference's make_fixture.py (outside this repository; model/docs/step-compiler.md,
 * "Correctness"): expected state computed in float64 from the same float32 start,
 * committed under src/test/resources/fixtures so that no Python is needed here.
 */
public class ReferenceParityTest {
    static final double TOL = 1e-4;

    static Path fixture(String name) throws Exception {
        return Paths.get(ReferenceParityTest.class.getResource("/fixtures/" + name + "/hparams.json").toURI()).getParent();
    }

    /** Runs a fixture's steps with dinostream and returns the resulting state plus the last loss. */
    static Map<String, TensorData> runFixture(Path dir, int loopSteps) throws Exception {
        return runFixture(dir, loopSteps, null);
    }

    static Map<String, TensorData> runFixture(Path dir, int loopSteps, Boolean freezeOverride) throws Exception {
        return runFixture(dir, DinoState.load(dir.resolve("in.safetensors")), loopSteps, freezeOverride);
    }

    /** As {@link #runFixture(Path, int)} from another start state (e.g. one imported from an official checkpoint). */
    public static Map<String, TensorData> runFixture(Path dir, DinoState in, int loopSteps, Boolean freezeOverride) throws Exception {
        JsonNode hp = new ObjectMapper().readTree(Files.readString(dir.resolve("hparams.json")));
        SafeTensorsFile crops = SafeTensors.read(dir.resolve("crops.safetensors"));
        DinoConfig c = in.config();
        int batch = (int) crops.tensors().get("crops/0").shape()[0];
        if (c.nCrops() > 2) c.localSize = (int) crops.tensors().get("crops/2").shape()[2];
        int steps = hp.get("steps").asInt();
        TrainSession.Hyper h = new TrainSession.Hyper((float) hp.get("lr").asDouble(), (float) hp.get("weight_decay").asDouble(),
                (float) hp.get("teacher_temp").asDouble(), (float) hp.get("momentum").asDouble(),
                freezeOverride != null ? freezeOverride : hp.get("freeze_last_layer").asBoolean());
        float loss;
        if (loopSteps <= 1) {
            try (TrainSession s = new TrainSession(TrainStep.build(c, batch), in, RuntimeOptions.cpu().withThreads(1), 0)) {
                TrainSession.Stats[] st = null;
                for (int i = 0; i < steps; i++) st = s.run(viewBuffers(crops, c, 1), masks(crops), h);
                loss = st[0].loss();
                return withLoss(s.state(), loss);
            }
        }
        try (TrainSession s = new TrainSession(TrainStep.buildLoop(c, batch, steps), in, RuntimeOptions.cpu().withThreads(1), 0)) {
            TrainSession.Hyper[] hs = new TrainSession.Hyper[steps];
            java.util.Arrays.fill(hs, h);
            TrainSession.Stats[] st = s.run(viewBuffers(crops, c, steps), hs);
            return withLoss(s.state(), st[steps - 1].loss());
        }
    }

    /** Stochastic-depth masks recorded with a fixture (make_droppath_fixture.py), or null. */
    static Map<String, FloatBuffer> masks(SafeTensorsFile crops) {
        Map<String, FloatBuffer> m = new LinkedHashMap<>();
        crops.tensors().forEach((k, t) -> {
            if (k.startsWith("drop_path/")) m.put(k, FloatBuffer.wrap(t.toFloatArray()));
        });
        return m.isEmpty() ? null : m;
    }

    static FloatBuffer[] viewBuffers(SafeTensorsFile crops, DinoConfig c, int repeat) {
        FloatBuffer[] b = new FloatBuffer[c.nCrops()];
        for (int v = 0; v < b.length; v++) {
            float[] one = crops.tensors().get("crops/" + v).toFloatArray();
            float[] all = new float[one.length * repeat];
            for (int r = 0; r < repeat; r++) System.arraycopy(one, 0, all, r * one.length, one.length);
            b[v] = FloatBuffer.wrap(all);
        }
        return b;
    }

    private static Map<String, TensorData> withLoss(DinoState s, float loss) {
        Map<String, TensorData> m = new LinkedHashMap<>(s.tensors());
        m.put("loss", TensorData.scalarFloat(loss));
        return m;
    }

    @ParameterizedTest
    @ValueSource(strings = {"fx-basic", "fx-multi", "fx-frozen", "fx-frozen-multi", "fx-weight-g", "fx-drop-path"})
    void stepMatchesPyTorchReference(String name) throws Exception {
        Path dir = fixture(name);
        Map<String, TensorData> want = SafeTensors.read(dir.resolve("out.safetensors")).tensors();
        StateComparison.Report r = StateComparison.compare(runFixture(dir, 1), want);
        assertTrue(r.ok(TOL), name + ": " + r);
    }

    @Test
    void loopOfKStepsEqualsKSingleSteps() throws Exception {
        Path dir = fixture("fx-multi");   // 3 steps
        Map<String, TensorData> single = runFixture(dir, 1), loop = runFixture(dir, 3);
        StateComparison.Report r = StateComparison.compare(loop, single);
        assertTrue(r.worst() <= 1e-6 && r.ok(1e-6), "Loop vs single steps: " + r);
        Map<String, TensorData> want = SafeTensors.read(dir.resolve("out.safetensors")).tensors();
        assertTrue(StateComparison.compare(loop, want).ok(TOL));
    }

    @Test
    void dropPathMasksMatter() throws Exception {
        // The drop-path fixture run with every mask at 1 (no sample dropped) must not match.
        Path dir = fixture("fx-drop-path");
        DinoState in = DinoState.load(dir.resolve("in.safetensors"));
        SafeTensorsFile crops = SafeTensors.read(dir.resolve("crops.safetensors"));
        DinoConfig c = in.config();
        Map<String, FloatBuffer> ones = new LinkedHashMap<>();
        masks(crops).forEach((k, b) -> {
            float[] one = new float[b.remaining()];
            java.util.Arrays.fill(one, 1f);
            ones.put(k, FloatBuffer.wrap(one));
        });
        try (TrainSession s = new TrainSession(TrainStep.build(c, 4), in, RuntimeOptions.cpu().withThreads(1), 0)) {
            s.run(viewBuffers(crops, c, 1), ones, new TrainSession.Hyper(1e-3f, 0.04f, 0.04f, 0.996f, false));
            Map<String, TensorData> want = SafeTensors.read(dir.resolve("out.safetensors")).tensors();
            assertFalse(StateComparison.compare(s.state().tensors(), want).ok(TOL));
        }
    }

    @Test
    void comparisonDetectsAWrongStep() throws Exception {
        // The frozen fixture run without the freeze must not pass: the check is sensitive to it.
        Path dir = fixture("fx-frozen");
        Map<String, TensorData> want = SafeTensors.read(dir.resolve("out.safetensors")).tensors();
        Map<String, TensorData> unfrozen = runFixture(dir, 1, false);
        StateComparison.Report r = StateComparison.compare(unfrozen, want);
        assertFalse(r.ok(TOL), "an unfrozen step matched the frozen reference: " + r);
    }
}
