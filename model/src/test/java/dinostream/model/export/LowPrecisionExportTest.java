package dinostream.model.export;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorProto.DataType;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dinostream.model.OnnxChecker;
import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.DinoConfig.Precision;
import dinostream.model.dino.ParamSpec;
import dinostream.model.dino.Presets;
import dinostream.model.dino.StateKeys;
import dinostream.model.io.DinoState;
import dinostream.model.io.TensorData;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import static dinostream.model.export.InferenceExportTest.images;
import static dinostream.model.export.InferenceExportTest.relErr;
import static dinostream.model.export.InferenceExportTest.run;
import static dinostream.model.export.InferenceExportTest.session;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The bf16 and fp16 inference exports: structure and checker for both; numbers for fp16 only, since
 * ONNX Runtime's CPU provider runs fp16 Gemm/MatMul/Conv but has no bf16 Gemm ("Could not find an
 * implementation for Gemm(13)"): the bf16 models are for GPU providers and not run here.
 */
class LowPrecisionExportTest {
    static final DinoConfig cfg = Presets.get("test");
    static DinoState state;
    static OrtSession fp32Backbone, fp32Attention;

    @BeforeAll
    static void setUp() throws OrtException {
        InferenceExportTest.setUp();   // the shared environment and random teacher
        state = InferenceExportTest.state;
        fp32Backbone = InferenceExportTest.backbone;
        fp32Attention = InferenceExportTest.attention;
    }

    @AfterAll
    static void tearDown() throws OrtException {
        InferenceExportTest.tearDown();
    }

    @Test
    void fp32IsTheDefaultAndHasNoPrecisionMetadata() throws Exception {
        assertArrayEquals(InferenceExport.backboneModel(state), InferenceExport.backboneModel(state, Precision.FP32));
        assertArrayEquals(InferenceExport.attentionModel(state), InferenceExport.attentionModel(state, Precision.FP32));
        assertNull(metadata(InferenceExport.backboneModel(state)).get(InferenceExport.META_PRECISION));
    }

    @ParameterizedTest
    @EnumSource(value = Precision.class, names = {"BF16", "FP16"})
    void everyProductReadsOnlyItsTypeAndTheModelsPassTheChecker(Precision precision) throws Exception {
        DataType low = precision == Precision.BF16 ? DataType.BFLOAT16 : DataType.FLOAT16;
        for (byte[] model : List.of(InferenceExport.backboneModel(state, precision), InferenceExport.attentionModel(state, precision))) {
            OnnxChecker.check(model);
            ModelProto m = ModelProto.parseFrom(model);
            assertEquals(precision.id(), metadata(model).get(InferenceExport.META_PRECISION));
            GraphProto g = m.getGraph();
            for (ValueInfoProto v : g.getInputList()) assertEquals(DataType.FLOAT_VALUE, v.getType().getTensorType().getElemType());
            for (ValueInfoProto v : g.getOutputList()) assertEquals(DataType.FLOAT_VALUE, v.getType().getTensorType().getElemType());

            // The values of the low type: its initializers, Casts to it and the products made of them.
            Set<String> lowValues = new HashSet<>();
            Map<String, Integer> initializerTypes = new HashMap<>();
            for (TensorProto t : g.getInitializerList()) {
                initializerTypes.put(t.getName(), t.getDataType());
                if (t.getDataType() == low.getNumber()) lowValues.add(t.getName());
            }
            int products = 0, convs = 0;
            for (NodeProto n : g.getNodeList()) {
                boolean conv = n.getOpType().equals("Conv");
                boolean product = n.getOpType().equals("Gemm") || n.getOpType().equals("MatMul") || conv && low == DataType.FLOAT16;
                if (product) {
                    products++;
                    for (String in : n.getInputList()) assertTrue(lowValues.contains(in), n.getName() + " " + n.getOpType() + " reads " + in);
                    lowValues.addAll(n.getOutputList());
                } else if (n.getOpType().equals("Cast") && n.getAttribute(0).getI() == low.getNumber()) {
                    lowValues.addAll(n.getOutputList());
                } else if (conv) {   // bf16: opset 18's Conv has no bfloat16, so the patch embedding stays float32
                    convs++;
                    for (String in : n.getInputList()) assertFalse(lowValues.contains(in), "bf16 Conv reads " + in);
                }
            }
            assertTrue(products >= 2 * cfg.depth, "products: " + products);
            assertEquals(low == DataType.BFLOAT16 ? 1 : 0, convs);
            // Low values go into products and Casts back to float32 only: LayerNorm, softmax, GELU, the
            // residual adds and the normalization all read float32.
            for (NodeProto n : g.getNodeList()) {
                boolean product = n.getOpType().equals("Gemm") || n.getOpType().equals("MatMul") || n.getOpType().equals("Conv");
                boolean castBack = n.getOpType().equals("Cast") && n.getAttribute(0).getI() == DataType.FLOAT_VALUE;
                for (String in : n.getInputList()) {
                    if (lowValues.contains(in)) assertTrue(product || castBack, n.getName() + " " + n.getOpType() + " reads the low value " + in);
                }
            }
            // The products' weights and biases are stored in the low type (bf16's float32 Conv aside), everything else in float32.
            for (var e : initializerTypes.entrySet()) {
                String name = e.getKey();
                if (!name.startsWith("backbone.")) continue;
                boolean feedsProduct = name.matches(".*\\.(qkv|proj|fc1|fc2)\\.(weight|bias)");
                boolean bf16Conv = name.startsWith("backbone.patch_embed.") && low == DataType.BFLOAT16;
                int expected = feedsProduct && !bf16Conv ? low.getNumber() : DataType.FLOAT_VALUE;
                assertEquals(expected, e.getValue(), name);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = Precision.class, names = {"BF16", "FP16"})
    void filesAreAboutHalfTheFp32Size(Precision precision) {
        // fmnist-tiny (2.7M backbone parameters): the weights dominate the file, as in any real model.
        DinoState s = DinoState.init(Presets.get("fmnist-tiny"), 3);
        long fp32 = InferenceExport.backboneModel(s).length, low = InferenceExport.backboneModel(s, precision).length;
        long fp32Att = InferenceExport.attentionModel(s).length, lowAtt = InferenceExport.attentionModel(s, precision).length;
        System.out.printf("%s fmnist-tiny: backbone %,d -> %,d bytes (%.3f), attention %,d -> %,d bytes (%.3f)%n", precision,
                fp32, low, (double) low / fp32, fp32Att, lowAtt, (double) lowAtt / fp32Att);
        assertTrue(low < 0.52 * fp32, low + " of " + fp32);
        assertTrue(lowAtt < 0.52 * fp32Att, lowAtt + " of " + fp32Att);
    }

    @Test
    void bf16DoesNotRunOnTheCpuProvider() {
        // Documents why the bf16 models are only checked structurally (the CLI help says the same).
        OrtException e = assertThrows(OrtException.class, () -> session(InferenceExport.backboneModel(state, Precision.BF16)).close());
        assertTrue(e.getMessage().contains("Could not find an implementation"), e.getMessage());
    }

    /**
     * Tolerance of the fp16 export against the fp32 one, relative to the output's scale
     * ({@link InferenceExportTest#relErr}). fp16 keeps 11 significant bits, so each rounding errs by at
     * most u = 2^-11 relative. Each product rounds its operands and its result; the result's rounding
     * adds u to the relative error, the operands' roundings, independent over the k terms of a dot
     * product, average to about u sqrt(2 / k), which is small beside it. To first order these relative
     * errors add along the L products in sequence (LayerNorm rescales errors and values alike), so
     * the bound is L u with L = the patch Conv plus 6 products (qkv, q k^T, attention v, proj, fc1,
     * fc2) per block, 13 for the test preset: 6.3e-3.
     */
    static final double FP16_TOL = (1 + 6 * cfg.depth) * 0x1p-11;

    @Test
    void fp16EmbeddingsAndAttentionMatchTheFp32ExportWithinTheDerivedBound() throws OrtException {
        int n = 3;
        int[][] sizes = {{16, 16}, {8, 8}, {20, 12}};   // the stored grid, local crops, interpolated
        try (OrtSession backbone = session(InferenceExport.backboneModel(state, Precision.FP16));
             OrtSession attention = session(InferenceExport.attentionModel(state, Precision.FP16));
             OrtSession wrong = session(InferenceExport.backboneModel(slightlyPerturbed(state)))) {
            for (int[] hw : sizes) {
                int h = hw[0], w = hw[1];
                float[] x = images(n, h, w, 17L * h + w);
                long[] shape = {n, cfg.inChans, h, w};
                float[] ref = run(fp32Backbone, InferenceExport.INPUT, x, shape).values();
                double eErr = relErr(run(backbone, InferenceExport.INPUT, x, shape).values(), ref);
                double aErr = relErr(run(attention, InferenceExport.INPUT, x, shape).values(),
                        run(fp32Attention, InferenceExport.INPUT, x, shape).values());
                double wrongErr = relErr(run(wrong, InferenceExport.INPUT, x, shape).values(), ref);
                System.out.printf("fp16 export %dx%d: embeddings rel err %.3g, attention %.3g (bound %.3g); perturbed fp32 %.3g%n",
                        h, w, eErr, aErr, FP16_TOL, wrongErr);
                assertTrue(eErr > 0, "fp16 rounding should show");   // the products did not silently stay float32
                assertTrue(eErr <= FP16_TOL, h + "x" + w + " embeddings rel err " + eErr);
                assertTrue(aErr <= FP16_TOL, h + "x" + w + " attention rel err " + aErr);
                assertTrue(wrongErr > FP16_TOL, "the bound should reject the perturbed teacher: " + wrongErr);
            }
        }
    }

    /** The teacher with its linear layers' weights off by 1% (random, relative): a wrong model the bound must reject. */
    static DinoState slightlyPerturbed(DinoState s) {
        DinoState p = s.copy();
        Random r = new Random(7);
        for (ParamSpec spec : ParamSpec.of(cfg)) {
            if (!spec.name().matches("backbone\\.blocks\\..*\\.(qkv|proj|fc1|fc2)\\.weight")) continue;
            String key = StateKeys.teacher(spec.name());
            float[] v = s.get(key).toFloatArray();
            for (int i = 0; i < v.length; i++) v[i] *= (float) (1 + 0.01 * r.nextGaussian());
            p.put(key, TensorData.ofFloats(spec.shape(), v));
        }
        return p;
    }

    static Map<String, String> metadata(byte[] model) throws Exception {
        Map<String, String> m = new HashMap<>();
        ModelProto.parseFrom(model).getMetadataPropsList().forEach(e -> m.put(e.getKey(), e.getValue()));
        return m;
    }
}
