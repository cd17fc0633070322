package dinostream.model.runtime;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Presets;
import dinostream.model.export.InferenceExport;
import dinostream.model.io.DinoState;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.FloatBuffer;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The teacher in ONNX Runtime: the values a plain session gives, one direct input buffer reused and freed. */
class TeacherInferenceTest {
    static final RuntimeOptions ONE_THREAD = RuntimeOptions.cpu().withThreads(1);
    static DinoConfig cfg;
    static DinoState state;

    @BeforeAll
    static void setUp() {
        state = DinoState.init(Presets.get("test"), 3);
        cfg = state.config();
    }

    static float[] images(int n, int side, long seed) {
        float[] x = new float[n * cfg.inChans * side * side];
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        return x;
    }

    /** What the operators and commands did before: a heap buffer, a session of their own, the output cast. */
    static Object plainRun(byte[] onnx, float[] x, int n, int side, String output) throws OrtException {
        try (OrtSession s = Sessions.create(onnx, ONE_THREAD);
             OnnxTensor t = OnnxTensor.createTensor(Sessions.env(), FloatBuffer.wrap(x), new long[]{n, cfg.inChans, side, side});
             OrtSession.Result r = s.run(Map.of(InferenceExport.INPUT, t))) {
            return r.get(output).orElseThrow().getValue();
        }
    }

    @Test
    void embeddingsAreThoseOfAPlainSession() throws OrtException {
        int n = 5, side = cfg.imgSize;
        float[] x = images(n, side, 1);
        float[][] expected = (float[][]) plainRun(InferenceExport.backboneModel(state), x, n, side, InferenceExport.EMBEDDINGS);
        try (TeacherInference t = TeacherInference.backbone(state, ONE_THREAD)) {
            assertEquals(cfg.inChans, t.channels());
            float[][] e = t.embed(x, n, side, side);
            assertEquals(n, e.length);
            for (int i = 0; i < n; i++) {
                assertEquals(cfg.dim, e[i].length);
                assertArrayEquals(expected[i], e[i], "image " + i);
            }
            // Fewer images than the array holds: only the first n are read.
            float[][] two = t.embed(x, 2, side, side);
            assertArrayEquals(expected[1], two[1]);
        }
    }

    @Test
    void attentionRowsAreThoseOfAPlainSession() throws OrtException {
        int side = 24;   // not the model's size: the position embeddings are interpolated
        float[] x = images(2, side, 2);
        float[][][] expected = (float[][][]) plainRun(InferenceExport.attentionModel(state), x, 2, side, InferenceExport.ATTENTION);
        try (TeacherInference t = TeacherInference.attention(state, ONE_THREAD)) {
            float[][][] a = t.attention(x, 2, side, side);
            assertEquals(cfg.heads, a[0].length);
            assertEquals(1 + (side / cfg.patch) * (side / cfg.patch), a[0][0].length);
            for (int i = 0; i < 2; i++) for (int h = 0; h < cfg.heads; h++) assertArrayEquals(expected[i][h], a[i][h]);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> t.embed(x, 1, side, side));
            assertTrue(e.getMessage().contains("no output 'embeddings'"), e.getMessage());
        }
    }

    @Test
    void tooFewPixelsAreRefused() {
        try (TeacherInference t = TeacherInference.backbone(state, ONE_THREAD)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> t.embed(new float[10], 1, cfg.imgSize, cfg.imgSize));
            assertTrue(e.getMessage().contains("need 256 floats, got 10"), e.getMessage());
        }
    }

    @Test
    void oneDirectInputBufferIsReusedAndFreedOnClose() {
        int n = 64, side = cfg.imgSize;
        long bytes = 4L * n * cfg.inChans * side * side;
        float[] x = images(n, side, 3);
        TeacherInference t = TeacherInference.backbone(state, ONE_THREAD);
        long before = DirectMemory.used();
        t.embed(x, n, side, side);
        long first = DirectMemory.used();
        assertTrue(first - before >= bytes, "the batch went through a direct buffer: " + (first - before) + " bytes");
        t.embed(x, n, side, side);
        t.embed(x, n / 2, side, side);
        assertTrue(DirectMemory.used() - first < bytes, "no new buffer for a batch that fits: " + (DirectMemory.used() - first));
        t.close();
        assertTrue(first - DirectMemory.used() >= bytes, "freed on close, not left to the GC: " + (first - DirectMemory.used()));
    }

    @Test
    void aSharedBufferOutlivesTheSessionsThatBorrowIt() {
        int n = 64, side = cfg.imgSize;
        long bytes = 4L * n * cfg.inChans * side * side;
        float[] x = images(n, side, 4);
        byte[] onnx = InferenceExport.backboneModel(state);
        try (InputBuffer shared = new InputBuffer()) {
            long before = DirectMemory.used();
            float[][] a;
            try (TeacherInference t = new TeacherInference(onnx, ONE_THREAD, shared)) {
                a = t.embed(x, n, side, side);
            }
            long afterFirst = DirectMemory.used();
            assertTrue(afterFirst - before >= bytes, "closing a borrower leaves the buffer allocated");
            try (TeacherInference t = new TeacherInference(onnx, ONE_THREAD, shared)) {
                assertArrayEquals(a[n - 1], t.embed(x, n, side, side)[n - 1]);
            }
            assertTrue(DirectMemory.used() - afterFirst < bytes, "the second session reused it");
            shared.close();
            assertTrue(afterFirst - DirectMemory.used() >= bytes, "its owner frees it");
        }
    }
}
