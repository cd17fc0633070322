package dinostream.model.eval;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Presets;
import dinostream.model.io.DinoState;
import dinostream.model.runtime.RuntimeOptions;
import dinostream.model.runtime.TeacherInference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** extract_features: batches of the teacher's embeddings, then the classifier over them. */
class FeaturesTest {
    static DinoConfig cfg;
    static TeacherInference teacher;
    static float[][] images;

    @BeforeAll
    static void setUp() {
        DinoState state = DinoState.init(Presets.get("test"), 5);
        cfg = state.config();
        teacher = TeacherInference.backbone(state, RuntimeOptions.cpu().withThreads(1));
        int per = cfg.inChans * cfg.imgSize * cfg.imgSize;
        images = new float[7][per];
        SplittableRandom r = new SplittableRandom(6);
        for (float[] im : images) for (int i = 0; i < per; i++) im[i] = (float) r.nextGaussian();
    }

    @AfterAll
    static void tearDown() {
        teacher.close();
    }

    static void write(int i, float[] dst, int offset) {
        System.arraycopy(images[i], 0, dst, offset, images[i].length);
    }

    @Test
    void batchesGiveTheEmbeddingsOfOneCall() throws Exception {
        float[] all = new float[images.length * images[0].length];
        for (int i = 0; i < images.length; i++) write(i, all, i * images[0].length);
        float[][] once = teacher.embed(all, images.length, cfg.imgSize, cfg.imgSize);
        List<Integer> calls = new ArrayList<>();
        float[][] batched = Features.extract(teacher, images.length, cfg.imgSize, 3, FeaturesTest::write, calls::add);
        assertEquals(List.of(3, 3, 1), calls);
        for (int i = 0; i < images.length; i++) assertArrayEquals(once[i], batched[i], 1e-5f, "image " + i);
    }

    @Test
    void aNonFiniteEmbeddingNamesItsImage() {
        Features.NotFiniteException e = assertThrows(Features.NotFiniteException.class, () -> Features.extract(teacher,
                images.length, cfg.imgSize, 3, (i, dst, offset) -> {
                    write(i, dst, offset);
                    if (i == 4) dst[offset] = Float.NaN;
                }, null));
        assertEquals(4, e.image());
        assertTrue(Float.isNaN(e.value()));
    }

    @Test
    void pixelsAreScaledTo01() {
        assertArrayEquals(new float[]{0f, 1f, 128 / 255f}, Features.pixels(new byte[]{0, (byte) 255, (byte) 128}));
    }

    /** The split as eval_knn.py has it: features from the teacher, then knn_classifier on them. */
    @Test
    void featuresFeedTheClassifier() throws Exception {
        float[][] f = Features.extract(teacher, images.length, cfg.imgSize, 4, FeaturesTest::write, null);
        float[][] train = {f[0], f[1], f[2], f[3]}, test = {f[0], f[3]};
        Knn.Result r = Knn.evaluate(train, new int[]{0, 0, 1, 1}, test, new int[]{0, 1}, 1, 0.07, 2, RuntimeOptions.cpu().withThreads(1));
        assertEquals(100.0, r.top1(), "an image is its own nearest neighbour");
    }
}
