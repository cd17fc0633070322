package dinostream.model.export;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import dinostream.model.OnnxChecker;
import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.ParamSpec;
import dinostream.model.dino.Presets;
import dinostream.model.dino.StateKeys;
import dinostream.model.dino.VisionTransformer;
import dinostream.model.graph.DType;
import dinostream.model.graph.Graph;
import dinostream.model.graph.Tensor;
import dinostream.model.io.DinoState;
import dinostream.model.io.TensorData;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The exported inference models against the training backbone (static graph builder, constant
 * bicubic interpolation matrices), on a teacher whose every tensor is random so that no bug hides
 * behind zero biases, unit norms or a teacher equal to the student.
 */
class InferenceExportTest {
    static final double REL_TOL = 1e-5;
    static final long STEP = 1234;

    static OrtEnvironment env;
    static DinoConfig cfg;
    static DinoState state;
    static byte[] backboneBytes, attentionBytes;
    static OrtSession backbone, attention;

    @BeforeAll
    static void setUp() throws OrtException {
        env = OrtEnvironment.getEnvironment();
        cfg = Presets.get("test");
        state = perturbedTeacher(cfg);
        backboneBytes = InferenceExport.backboneModel(state);
        attentionBytes = InferenceExport.attentionModel(state);
        backbone = session(backboneBytes);
        attention = session(attentionBytes);
    }

    @AfterAll
    static void tearDown() throws OrtException {
        backbone.close();
        attention.close();
    }

    /** Every teacher tensor random (LayerNorm weights around 1), pos_embed large enough for interpolation to matter. */
    static DinoState perturbedTeacher(DinoConfig c) {
        DinoState s = DinoState.init(c, 1);
        Random r = new Random(20240611);
        for (ParamSpec p : ParamSpec.of(c)) {
            float[] v = new float[Math.toIntExact(p.numel())];
            boolean lnWeight = p.name().contains("norm") && p.name().endsWith(".weight");
            double std = p.name().equals("backbone.pos_embed") ? 0.5 : 0.2;
            for (int i = 0; i < v.length; i++) v[i] = (float) ((lnWeight ? 1 : 0) + std * r.nextGaussian());
            s.put(StateKeys.teacher(p.name()), TensorData.ofFloats(p.shape(), v));
        }
        s.put(StateKeys.STEP, TensorData.scalarLong(STEP));
        return s;
    }

    static OrtSession session(byte[] model) throws OrtException {
        OrtSession.SessionOptions o = new OrtSession.SessionOptions();
        o.setIntraOpNumThreads(2);
        return env.createSession(model, o);
    }

    static float[] images(int n, int h, int w, long seed) {
        Random r = new Random(seed);
        float[] x = new float[n * cfg.inChans * h * w];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        return x;
    }

    /** Runs one single-input session and returns its only output (values, shape). */
    record Out(float[] values, long[] shape) {}

    static Out run(OrtSession s, String input, float[] x, long... shape) throws OrtException {
        try (OnnxTensor t = OnnxTensor.createTensor(env, FloatBuffer.wrap(x), shape);
             OrtSession.Result r = s.run(Map.of(input, t))) {
            OnnxTensor o = (OnnxTensor) r.get(0);
            FloatBuffer b = o.getFloatBuffer();
            float[] v = new float[b.remaining()];
            b.get(v);
            return new Out(v, ((TensorInfo) o.getInfo()).getShape());
        }
    }

    /** The training backbone's CLS feature and last CLS attention for the same teacher weights and images. */
    static Map<String, Out> trainingBackbone(float[] x, int n, int h, int w) throws OrtException {
        Graph g = new Graph("reference");
        Map<String, Tensor> params = new LinkedHashMap<>();
        for (ParamSpec p : ParamSpec.of(cfg)) {
            if (p.name().startsWith("backbone.")) params.put(p.name(), g.input(StateKeys.teacher(p.name()), DType.FLOAT, p.shape()));
        }
        Tensor images = g.input("images", DType.FLOAT, n, cfg.inChans, h, w);
        VisionTransformer vit = new VisionTransformer(g, cfg, params);
        g.output(vit.forward(images, null), "embeddings");
        g.output(vit.lastCLSAttention(images), "attention");

        Map<String, OnnxTensor> in = new HashMap<>();
        try (OrtSession s = session(g.toBytes())) {
            for (String k : params.keySet()) {
                TensorData t = state.get(StateKeys.teacher(k));
                in.put(StateKeys.teacher(k), OnnxTensor.createTensor(env, FloatBuffer.wrap(t.toFloatArray()), t.shape()));
            }
            in.put("images", OnnxTensor.createTensor(env, FloatBuffer.wrap(x), new long[]{n, cfg.inChans, h, w}));
            try (OrtSession.Result r = s.run(in)) {
                Map<String, Out> out = new HashMap<>();
                for (String name : List.of("embeddings", "attention")) {
                    OnnxTensor o = (OnnxTensor) r.get(name).orElseThrow();
                    FloatBuffer b = o.getFloatBuffer();
                    float[] v = new float[b.remaining()];
                    b.get(v);
                    out.put(name, new Out(v, ((TensorInfo) o.getInfo()).getShape()));
                }
                return out;
            }
        } finally {
            in.values().forEach(OnnxTensor::close);
        }
    }

    /** max |a - b| / max |b|: relative to the output's scale, so entries near zero do not dominate. */
    static double relErr(float[] a, float[] b) {
        assertEquals(b.length, a.length);
        double num = 0, den = 0;
        for (int i = 0; i < a.length; i++) {
            num = Math.max(num, Math.abs((double) a[i] - b[i]));
            den = Math.max(den, Math.abs((double) b[i]));
        }
        return num / den;
    }

    @Test
    void matchesTheTrainingBackboneAtStoredLocalNonSquareAndLargerSizes() throws OrtException {
        // 16x16: the stored 4x4 grid (no interpolation); 8x8: local crops; 16x8: one axis equal to the
        // stored grid, which DINO still interpolates on both axes; 20x12: upsampling on one axis;
        // 12x20: the same transposed, so a swapped H and W in the symbolic shapes cannot pass.
        int n = 3;
        int[][] sizes = {{16, 16}, {8, 8}, {16, 8}, {20, 12}, {12, 20}};
        for (int[] hw : sizes) {
            int h = hw[0], w = hw[1];
            float[] x = images(n, h, w, 31L * h + w);
            Map<String, Out> ref = trainingBackbone(x, n, h, w);
            Out emb = run(backbone, InferenceExport.INPUT, x, n, cfg.inChans, h, w);
            Out att = run(attention, InferenceExport.INPUT, x, n, cfg.inChans, h, w);
            assertArrayEquals(new long[]{n, cfg.dim}, emb.shape());
            assertArrayEquals(ref.get("attention").shape(), att.shape());
            double eErr = relErr(emb.values(), ref.get("embeddings").values());
            double aErr = relErr(att.values(), ref.get("attention").values());
            System.out.printf("export parity %dx%d: embeddings rel err %.3g, attention rel err %.3g%n", h, w, eErr, aErr);
            assertTrue(eErr <= REL_TOL, h + "x" + w + " embeddings rel err " + eErr);
            assertTrue(aErr <= REL_TOL, h + "x" + w + " attention rel err " + aErr);
        }
    }

    @Test
    void sizesThatAreNotPatchMultiplesAreFlooredAsConv2dFloorsThem() throws OrtException {
        // 18x23 reads as its top-left 16x20 (grid 4x5): trailing rows and columns are ignored.
        int n = 2, h = 18, w = 23, ch = 16, cw = 20;
        float[] x = images(n, h, w, 1823), cropped = new float[n * cfg.inChans * ch * cw];
        for (int img = 0; img < n * cfg.inChans; img++) {
            for (int r = 0; r < ch; r++) System.arraycopy(x, (img * h + r) * w, cropped, (img * ch + r) * cw, cw);
        }
        Map<String, Out> ref = trainingBackbone(cropped, n, ch, cw);
        Out emb = run(backbone, InferenceExport.INPUT, x, n, cfg.inChans, h, w);
        Out att = run(attention, InferenceExport.INPUT, x, n, cfg.inChans, h, w);
        assertArrayEquals(new long[]{n, cfg.heads, InferenceExport.tokenCount(cfg, ch, cw)}, att.shape());
        assertTrue(relErr(emb.values(), ref.get("embeddings").values()) <= REL_TOL);
        assertTrue(relErr(att.values(), ref.get("attention").values()) <= REL_TOL);
    }

    @Test
    void attentionRowsAreDistributionsAndTheBatchIsDynamic() throws OrtException {
        int h = 8, w = 12;
        long tokens = InferenceExport.tokenCount(cfg, h, w);
        assertEquals(1 + 2 * 3, tokens);
        float[] five = images(5, h, w, 5);
        float[] first = Arrays.copyOf(five, cfg.inChans * h * w);
        // One session each, N = 5 then N = 1: the batch dimension is symbolic.
        Out a5 = run(attention, InferenceExport.INPUT, five, 5, cfg.inChans, h, w);
        Out a1 = run(attention, InferenceExport.INPUT, first, 1, cfg.inChans, h, w);
        Out e5 = run(backbone, InferenceExport.INPUT, five, 5, cfg.inChans, h, w);
        Out e1 = run(backbone, InferenceExport.INPUT, first, 1, cfg.inChans, h, w);
        assertArrayEquals(new long[]{5, cfg.heads, tokens}, a5.shape());
        assertArrayEquals(new long[]{1, cfg.heads, tokens}, a1.shape());
        assertArrayEquals(new long[]{5, cfg.dim}, e5.shape());
        assertArrayEquals(new long[]{1, cfg.dim}, e1.shape());

        double worstSum = 0;
        for (int row = 0; row < 5 * cfg.heads; row++) {
            double sum = 0, max = 0;
            for (int t = 0; t < tokens; t++) {
                float v = a5.values()[(int) (row * tokens + t)];
                assertTrue(v >= 0, "negative attention");
                sum += v;
                max = Math.max(max, v);
            }
            worstSum = Math.max(worstSum, Math.abs(sum - 1));
            assertTrue(max < 0.999, "the random teacher should not give one-hot rows");
        }
        System.out.printf("attention rows: max |sum - 1| = %.3g%n", worstSum);
        assertTrue(worstSum < 1e-5, "row sums deviate from 1 by " + worstSum);

        // An image's outputs do not depend on the rest of its batch.
        assertTrue(relErr(Arrays.copyOf(a5.values(), a1.values().length), a1.values()) < 1e-6);
        assertTrue(relErr(Arrays.copyOf(e5.values(), e1.values().length), e1.values()) < 1e-6);
    }

    @Test
    void modelsPassTheOnnxCheckerWithFullCheck() {
        OnnxChecker.check(backboneBytes);
        OnnxChecker.check(attentionBytes);
    }

    @Test
    void theCheckerRejectsADeclaredShapeThatContradictsInference() {
        Graph g = new Graph("broken");
        Tensor x = g.input("x", DType.FLOAT, 2, 3);
        // Relu keeps [2, 3]; the node's (and thus the graph output's) declared shape says [2, 4].
        Tensor y = g.node1("Relu", new Tensor[]{x}, DType.FLOAT, new long[]{2, 4});
        g.output(y, "y");
        AssertionError e = assertThrows(AssertionError.class, () -> OnnxChecker.check(g.toBytes()));
        assertTrue(e.getMessage().contains("ONNX checker"), e.getMessage());
        System.out.println("checker on the broken model: " + e.getMessage().lines().findFirst().orElse(""));

        Graph ok = new Graph("fine");
        Tensor a = ok.input("x", DType.FLOAT, 2, 3);
        ok.output(ok.node1("Relu", new Tensor[]{a}, DType.FLOAT, new long[]{2, 3}), "y");
        OnnxChecker.check(ok.toBytes());
    }

    @Test
    void writeCreatesBothFilesAtomicallyWithMetadata(@TempDir Path tmp) throws IOException, OrtException {
        Path dir = tmp.resolve("nested/export");
        List<Path> paths = InferenceExport.write(state, dir);
        assertEquals(List.of(dir.resolve(InferenceExport.BACKBONE_FILE), dir.resolve(InferenceExport.ATTENTION_FILE)), paths);
        // Written again over the old files; no temporary file stays behind.
        paths = InferenceExport.write(state, dir);
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of(InferenceExport.ATTENTION_FILE, InferenceExport.BACKBONE_FILE),
                    files.map(p -> p.getFileName().toString()).sorted().toList());
        }
        assertArrayEquals(backboneBytes, Files.readAllBytes(paths.get(0)));
        assertArrayEquals(attentionBytes, Files.readAllBytes(paths.get(1)));

        List<String> outputs = new ArrayList<>();
        for (Path p : paths) {
            try (OrtSession s = env.createSession(p.toString(), new OrtSession.SessionOptions())) {
                assertEquals(List.of(InferenceExport.INPUT), new ArrayList<>(s.getInputNames()));
                TensorInfo in = (TensorInfo) s.getInputInfo().get(InferenceExport.INPUT).getInfo();
                assertArrayEquals(new long[]{-1, cfg.inChans, -1, -1}, in.getShape());
                outputs.addAll(s.getOutputNames());
                Map<String, String> m = s.getMetadata().getCustomMetadata();
                assertEquals(cfg.toJson(), m.get(InferenceExport.META_CONFIG));
                assertEquals(DinoConfig.fromJson(m.get(InferenceExport.META_CONFIG)).dim, cfg.dim);
                assertEquals("0.286", m.get(InferenceExport.META_MEAN));
                assertEquals("0.353", m.get(InferenceExport.META_STD));
                assertEquals("test", m.get(InferenceExport.META_PRESET));
                assertEquals("4", m.get(InferenceExport.META_PATCH));
                assertEquals(Long.toString(STEP), m.get(InferenceExport.META_STEP));
                assertEquals("dinostream", s.getMetadata().getProducerName());
            }
        }
        assertEquals(List.of(InferenceExport.EMBEDDINGS, InferenceExport.ATTENTION), outputs);
    }

    @Test
    void multiChannelMetadataListsEveryChannel() throws Exception {
        DinoConfig c = Presets.get("test");
        c.inChans = 3;
        c.mean = new double[]{0.485, 0.456, 0.406};
        c.std = new double[]{0.229, 0.224, 0.225};
        byte[] model = InferenceExport.backboneModel(DinoState.init(c, 2));
        Map<String, String> m = new HashMap<>();
        ModelProto.parseFrom(model).getMetadataPropsList().forEach(e -> m.put(e.getKey(), e.getValue()));
        assertEquals("0.485,0.456,0.406", m.get(InferenceExport.META_MEAN));
        assertEquals("0.229,0.224,0.225", m.get(InferenceExport.META_STD));
        OnnxChecker.check(model);
    }

    @Test
    void tokenCountRejectsSizesThatAreNotPatchMultiples() {
        assertEquals(1 + 16, InferenceExport.tokenCount(cfg, 16, 16));
        assertEquals(1 + 8, InferenceExport.tokenCount(cfg, 16, 8));
        assertThrows(IllegalArgumentException.class, () -> InferenceExport.tokenCount(cfg, 15, 16));
        assertThrows(IllegalArgumentException.class, () -> InferenceExport.tokenCount(cfg, 16, 10));
        assertThrows(IllegalArgumentException.class, () -> InferenceExport.tokenCount(cfg, 0, 16));
        assertEquals(2, InferenceExport.tokenCount(cfg, 4, 4));
    }
}
