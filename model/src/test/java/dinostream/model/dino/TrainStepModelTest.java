package dinostream.model.dino;

import dinostream.model.OnnxChecker;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The generated train-step models are valid ONNX (strict shape inference) for every preset. */
class TrainStepModelTest {
    @Test
    void singleStepAndLoopModelsPassTheChecker() {
        DinoConfig c = Presets.get("test");
        OnnxChecker.check(TrainStep.build(c, 4).onnx());
        OnnxChecker.check(TrainStep.buildLoop(c, 4, 3).onnx());
    }

    @Test
    void officialPresetsCompileWithDropPathMasks() {
        // vit-b16 at batch 64 does not fit this machine; the graph itself is independent of memory.
        for (String preset : new String[]{"vit-s16", "vit-b16"}) {
            DinoConfig c = Presets.get(preset);
            TrainStep.Model m = TrainStep.build(c, 2);
            OnnxChecker.check(m.onnx());
            // drop path 0.1: every block but the first (rate 0) gets a mask per branch and pass
            Map<String, long[]> masks = m.dropPathMasks();
            assertEquals(2 * 2 * (c.depth - 1), masks.size());
            assertEquals(4, masks.get(TrainStep.dropPathMask(0, 1, "attn"))[0]);
            assertEquals(2L * c.nLocal, masks.get(TrainStep.dropPathMask(1, 11, "mlp"))[0]);
        }
    }

    @Test
    void dropPathRatesFollowLinspace() {
        DinoConfig c = Presets.get("vit-s16");
        double[] r = TrainStep.dropPathRates(c);
        assertEquals(0.0, r[0]);
        assertEquals(0.1, r[11], 1e-12);
        assertEquals(0.1 * 5 / 11, r[5], 1e-12);
    }

    @Test
    void fmnistPresetsHaveNoDropPath() {
        assertTrue(TrainStep.build(Presets.get("fmnist-small"), 2).dropPathMasks().isEmpty());
    }

    @Test
    void invalidConfigurationsAreRejectedWithTheReason() {
        DinoConfig c = Presets.get("test");
        c.dim = 30;
        c.heads = 4;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, c::validate);
        assertTrue(e.getMessage().contains("divisible by heads"), e.getMessage());
    }

    /** fp32 written out builds the very bytes of the default; bf16 feeds every product from a bf16 round trip. */
    @Test
    void bf16RoundsEveryProductOperandAndFp32StaysByteIdentical() throws Exception {
        DinoConfig c = Presets.get("test");
        byte[] plain = TrainStep.build(c, 2).onnx();
        assertTrue(java.util.Arrays.equals(plain, TrainStep.build(c.copy().precision(DinoConfig.Precision.FP32), 2).onnx()));
        byte[] bf16 = TrainStep.build(c.copy().precision(DinoConfig.Precision.BF16), 2).onnx();
        OnnxChecker.check(bf16);
        var graph = ai.onnx.proto.OnnxMl.ModelProto.parseFrom(bf16).getGraph();
        Map<String, ai.onnx.proto.OnnxMl.NodeProto> producer = new java.util.HashMap<>();
        for (var n : graph.getNodeList()) for (String o : n.getOutputList()) producer.put(o, n);
        int products = 0;
        for (var n : graph.getNodeList()) {
            if (!n.getOpType().equals("Gemm") && !n.getOpType().equals("MatMul")) continue;
            products++;
            for (String in : n.getInputList()) {
                var p = producer.get(in);
                assertTrue(p != null && p.getOpType().equals("Cast")
                        && producer.get(p.getInput(0)).getOpType().equals("Cast")
                        && producer.get(p.getInput(0)).getAttribute(0).getI() == ai.onnx.proto.OnnxMl.TensorProto.DataType.BFLOAT16_VALUE,
                        n.getName() + " reads " + in + " without a bf16 round trip");
            }
        }
        int plainProducts = 0;
        for (var n : ai.onnx.proto.OnnxMl.ModelProto.parseFrom(plain).getGraph().getNodeList()) {
            if (n.getOpType().equals("Gemm") || n.getOpType().equals("MatMul")) plainProducts++;
        }
        assertEquals(plainProducts, products);

    }

    /** The native bf16 and fp16 graphs (for CUDA; never run here): every product on tensors of that type, valid for the checker. */
    @ParameterizedTest
    @EnumSource(value = DinoConfig.Precision.class, names = {"BF16", "FP16"})
    void nativeLowPrecisionGraphHasLowPrecisionProductsAndPassesTheChecker(DinoConfig.Precision precision) throws Exception {
        DinoConfig c = Presets.get("test").precision(precision);
        int type = precision == DinoConfig.Precision.BF16 ? ai.onnx.proto.OnnxMl.TensorProto.DataType.BFLOAT16_VALUE
                : ai.onnx.proto.OnnxMl.TensorProto.DataType.FLOAT16_VALUE;
        byte[] onnx = TrainStep.buildNative(c, 2).onnx();
        OnnxChecker.check(onnx);
        var graph = ai.onnx.proto.OnnxMl.ModelProto.parseFrom(onnx).getGraph();
        Map<String, ai.onnx.proto.OnnxMl.NodeProto> producer = new java.util.HashMap<>();
        for (var n : graph.getNodeList()) for (String o : n.getOutputList()) producer.put(o, n);
        int products = 0;
        for (var n : graph.getNodeList()) {
            if (!n.getOpType().equals("Gemm") && !n.getOpType().equals("MatMul")) continue;
            products++;
            for (String in : n.getInputList()) {
                // A bf16 operand is a Cast to bf16, or a bf16 product or gradient (Transpose, Gemm, ...) itself made of them.
                var p = producer.get(in);
                assertTrue(p != null, n.getName() + " reads graph input " + in);
                if (p.getOpType().equals("Cast")) {
                    assertEquals(type, p.getAttribute(0).getI(), n.getName() + " reads " + in);
                }
            }
        }
        assertTrue(products > 0);
        assertThrows(IllegalArgumentException.class, () -> TrainStep.buildNative(Presets.get("test"), 2));
    }
}
