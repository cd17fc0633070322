package dinostream.model.dino;

import com.fasterxml.jackson.databind.ObjectMapper;
import dinostream.model.io.DinoState;
import dinostream.model.io.SafeTensors;
import dinostream.model.io.TensorData;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static dinostream.model.dino.Bf16ParityTest.lossError;
import static dinostream.model.dino.Bf16ParityTest.updateError;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The emulated fp16 step with dynamic loss scaling against the PyTorch reference's (fixtures fx-fp16
 * and fx-fp16-overflow, written by src/test/python/make_mixed_precision_fixture.py: two float32 steps,
 * then one step whose products read and return float16-rounded values, the backward pass from
 * loss * scale, GradScaler's skip and scale update).
 *
 * <p>Tolerance, as {@link Bf16ParityTest}'s with float16's unit roundoff: u = 2^-11 (11 significant
 * bits), three bits finer than bf16's, so the bounds are u for the loss and 2u for the update. The
 * scale is a power of two: scaling and unscaling are exact and change no rounding, except that values
 * that would be fp16-subnormal or zero at scale 1 keep their digits, as in the reference.
 */
class Fp16ParityTest {
    static final double U = ReferenceFixture.FP16_U;
    static final double LOSS_TOL = U, UPDATE_TOL = 2 * U;

    private static DinoState fp16(DinoState in, float scale, long tracker) {
        return ReferenceFixture.fp16(in, scale, tracker);
    }

    private static float value(TensorData scalar) {
        return (float) scalar.toDoubleArray()[0];
    }

    private static float hparamScale(Path dir) throws Exception {
        return (float) new ObjectMapper().readTree(Files.readString(dir.resolve("hparams.json"))).get("loss_scale").asDouble();
    }

    /** A step whose gradients stay finite at the scale: the update as the reference's, the tracker counts it. */
    @Test
    void emulatedFp16StepMatchesTheReferenceAndFp32DoesNot() throws Exception {
        Path dir = ReferenceParityTest.fixture("fx-fp16");
        DinoState in = DinoState.load(dir.resolve("in.safetensors"));
        Map<String, TensorData> want = SafeTensors.read(dir.resolve("out.safetensors")).tensors();
        assertEquals(0, want.get("found_inf").longValue(), "the fixture's step must not overflow");
        float scale = hparamScale(dir);
        Map<String, TensorData> fp16 = ReferenceParityTest.runFixture(dir, fp16(in, scale, 0), 1, null);
        Map<String, TensorData> fp32 = ReferenceParityTest.runFixture(dir, in, 1, null);
        double uFp16 = updateError(in.tensors(), fp16, want), lFp16 = lossError(fp16, want);
        double uFp32 = updateError(in.tensors(), fp32, want), lFp32 = lossError(fp32, want);
        System.out.printf("vs the reference's fp16 step (scale %.0f): emulated fp16 update %.3e, loss %.3e; fp32 update %.3e, "
                + "loss %.3e%n", scale, uFp16, lFp16, uFp32, lFp32);
        assertTrue(uFp16 <= UPDATE_TOL && lFp16 <= LOSS_TOL, "emulated fp16 vs the reference's fp16 step");
        assertTrue(uFp32 > UPDATE_TOL || lFp32 > LOSS_TOL, "fp32 vs the reference's fp16 step: the test cannot tell them apart");
        assertEquals(scale, value(fp16.get(StateKeys.LOSS_SCALE)));
        assertEquals(1, fp16.get(StateKeys.GROWTH_TRACKER).longValue());
        assertEquals(value(want.get(StateKeys.LOSS_SCALE)), value(fp16.get(StateKeys.LOSS_SCALE)));
    }

    /**
     * GradScaler's initial scale overflows this model's gradients in fp16 (as the reference's do):
     * the step changes no student parameter, moment or optimizer count, the teacher still moves
     * towards the (unchanged) student, the centre still updates, the scale halves, the tracker resets.
     */
    @Test
    void anOverflowingStepIsSkippedAndHalvesTheScale() throws Exception {
        Path dir = ReferenceParityTest.fixture("fx-fp16-overflow");
        DinoState in = DinoState.load(dir.resolve("in.safetensors"));
        Map<String, TensorData> want = SafeTensors.read(dir.resolve("out.safetensors")).tensors();
        assertEquals(1, want.get("found_inf").longValue(), "the fixture's step must overflow");
        float scale = hparamScale(dir);
        assertEquals(LossScaler.INIT_SCALE, scale);
        Map<String, TensorData> got = ReferenceParityTest.runFixture(dir, fp16(in, scale, 7), 1, null);
        for (String k : in.tensors().keySet()) {
            if (k.startsWith("student/") || k.startsWith("optim/")) {
                assertEquals(in.get(k), got.get(k), k + " changed on a skipped step");
            } else if (k.startsWith("teacher/") || k.equals(StateKeys.CENTER)) {
                double[] w = want.get(k).toDoubleArray(), gv = got.get(k).toDoubleArray();
                for (int i = 0; i < w.length; i++) assertEquals(w[i], gv[i], 1e-6 * (1 + Math.abs(w[i])), k + "[" + i + "]");
            }
        }
        assertEquals(in.step() + 1, got.get(StateKeys.STEP).longValue());
        assertEquals(scale / 2, value(got.get(StateKeys.LOSS_SCALE)));
        assertEquals(value(want.get(StateKeys.LOSS_SCALE)), value(got.get(StateKeys.LOSS_SCALE)));
        assertEquals(0, got.get(StateKeys.GROWTH_TRACKER).longValue());
        assertTrue(Float.isFinite(value(got.get("loss"))), "the loss of a skipped step is still reported");
    }

    /** After GROWTH_INTERVAL good steps in a row the scale doubles and the count restarts; the update is the same. */
    @Test
    void theScaleDoublesAfterTheGrowthInterval() throws Exception {
        Path dir = ReferenceParityTest.fixture("fx-fp16");
        DinoState in = DinoState.load(dir.resolve("in.safetensors"));
        float scale = hparamScale(dir);
        Map<String, TensorData> counting = ReferenceParityTest.runFixture(dir, fp16(in, scale, 0), 1, null);
        Map<String, TensorData> growing = ReferenceParityTest.runFixture(dir, fp16(in, scale, LossScaler.GROWTH_INTERVAL - 1), 1, null);
        assertEquals(2 * scale, value(growing.get(StateKeys.LOSS_SCALE)));
        assertEquals(0, growing.get(StateKeys.GROWTH_TRACKER).longValue());
        for (String k : in.tensors().keySet()) {
            if (!k.startsWith("amp/")) assertEquals(counting.get(k), growing.get(k), k);
        }
    }
}
