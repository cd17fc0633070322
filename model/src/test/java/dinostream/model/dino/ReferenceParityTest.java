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
    static final double TOL = ReferenceFixture.FP32_TOLERANCE;

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
        return ReferenceFixture.run(dir, in, loopSteps, freezeOverride, RuntimeOptions.cpu().withThreads(1));
    }

    static Map<String, FloatBuffer> masks(SafeTensorsFile crops) {
        return ReferenceFixture.masks(crops);
    }

    static FloatBuffer[] viewBuffers(SafeTensorsFile crops, DinoConfig c, int repeat) {
        return ReferenceFixture.viewBuffers(crops, c, repeat);
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
        try (TrainSession s = TrainSession.open(TrainStep.build(c, 4), in, RuntimeOptions.cpu().withThreads(1), 0)) {
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
