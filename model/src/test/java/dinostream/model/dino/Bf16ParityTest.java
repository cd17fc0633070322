package dinostream.model.dino;

import dinostream.model.io.DinoState;
import dinostream.model.io.SafeTensors;
import dinostream.model.io.TensorData;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The emulated bf16 step against the PyTorch reference's bf16 step: fixture fx-bf16, written by
 * src/test/python/make_mixed_precision_fixture.py (two float32 steps, then one step whose products, forward and
 * backward, read bf16 operands and return bf16 results with float32 accumulation; softmax,
 * normalization, loss, AdamW, EMA and centre in float32).
 *
 * <p>What is compared: the loss, and the student's update (next - before, every trainable tensor as
 * one vector, relative norm); the state itself would hide the difference, the update being lr-scaled.
 *
 * <p>Tolerance. Let u = 2^-9 (bf16 keeps 8 significant bits: round to nearest errs by at most u,
 * relative). Both sides round the same values at the same places, so they differ only where float32
 * accumulation order (2^-24 scale) puts a value on the other side of a bf16 rounding boundary, each
 * such value off by one bf16 step. Loss: rounding every logit by u moves the loss by up to
 * u max|logit| / (student_temp L), about 10u = 2e-2 here (|logit| <= 1: unit features times
 * unit-norm rows); {@link #LOSS_TOL} = u lets a tenth of that disagree. Update: AdamW's update with
 * non-zero moments moves by at most about the gradient's relative change, and each gradient leaves
 * at least one rounded product, its result rounded (u) from operands rounded (u each); an
 * implementation rounding one operand of every product differently would be off by about u on every
 * gradient; {@link #UPDATE_TOL} = 2u. A float32 step differs by every rounding on the gradient's
 * path: measured 1.6e-2 on the loss and 6.8e-3 (3.5u) on the update, against 4.4e-4 and 1.5e-3 for
 * the emulated bf16 step, so the negative control tells the precisions apart on both.
 */
class Bf16ParityTest {
    static final double U = ReferenceFixture.BF16_U;
    static final double LOSS_TOL = U, UPDATE_TOL = 2 * U;

    static double updateError(Map<String, TensorData> in, Map<String, TensorData> got, Map<String, TensorData> want) {
        return ReferenceFixture.updateError(in, got, want);
    }

    static double lossError(Map<String, TensorData> got, Map<String, TensorData> want) {
        return ReferenceFixture.lossError(got, want);
    }

    @Test
    void emulatedBf16StepMatchesTheReferenceAndFp32DoesNot() throws Exception {
        Path dir = ReferenceParityTest.fixture("fx-bf16");
        DinoState in = DinoState.load(dir.resolve("in.safetensors"));
        Map<String, TensorData> want = SafeTensors.read(dir.resolve("out.safetensors")).tensors();
        DinoState bf16In = DinoState.of(in.config().precision(DinoConfig.Precision.BF16), in.tensors());
        Map<String, TensorData> bf16 = ReferenceParityTest.runFixture(dir, bf16In, 1, null);
        Map<String, TensorData> fp32 = ReferenceParityTest.runFixture(dir, in, 1, null);
        double uBf16 = updateError(in.tensors(), bf16, want), lBf16 = lossError(bf16, want);
        double uFp32 = updateError(in.tensors(), fp32, want), lFp32 = lossError(fp32, want);
        System.out.printf("vs the reference's bf16 step: emulated bf16 update %.3e, loss %.3e; fp32 update %.3e, "
                + "loss %.3e; emulated bf16 vs fp32 update %.3e%n", uBf16, lBf16, uFp32, lFp32, updateError(in.tensors(), bf16, fp32));
        assertTrue(uBf16 <= UPDATE_TOL && lBf16 <= LOSS_TOL, "emulated bf16 vs the reference's bf16 step");
        assertTrue(uFp32 > UPDATE_TOL || lFp32 > LOSS_TOL, "fp32 vs the reference's bf16 step: the test cannot tell them apart");
    }
}
