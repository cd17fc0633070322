package dinostream.pipeline.viz;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Presets;
import dinostream.model.io.DinoState;
import dinostream.model.runtime.RuntimeOptions;
import dinostream.pipeline.augment.PilOps;
import dinostream.pipeline.produce.SyntheticSource;
import dinostream.pipeline.records.DecodedImage;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The teacher attention of a random-init "test" teacher on synthetic images, through the exported ONNX model. */
class AttentionTest {
    static DinoConfig cfg;
    static Attention attention;

    @BeforeAll
    static void setUp() {
        DinoState state = DinoState.init(Presets.get("test"), 0);
        cfg = state.config();
        attention = new Attention(state, RuntimeOptions.cpu().withThreads(1));
    }

    @AfterAll
    static void tearDown() {
        attention.close();
    }

    static DecodedImage synthetic(int i, int size, int channels) {
        SyntheticSource s = new SyntheticSource(7, 10, size, channels);
        DecodedImage d = new DecodedImage();
        d.id = s.id(i);
        d.width = d.height = size;
        d.channels = channels;
        d.pixels = s.render(i);
        return d;
    }

    /** Every head's CLS row, CLS column included, is a softmax: non-negative and summing to 1. */
    static void assertRowsAreDistributions(Attention.Maps m) {
        assertEquals(cfg.heads, m.heads());
        for (int h = 0; h < m.heads(); h++) {
            float[] row = m.rows()[h];
            assertEquals(1 + m.gridH() * m.gridW(), row.length);
            double sum = 0;
            for (float v : row) {
                assertTrue(v >= 0, "negative attention " + v);
                sum += v;
            }
            assertEquals(1.0, sum, 1e-5, "head " + h + " row sums to " + sum);
            assertEquals(row.length - 1, m.patchMap(h).length, "the patch map drops the CLS column");
            assertEquals(row[0], m.clsWeight(h));
        }
    }

    @Test
    void rowsSumToOnePerHeadAtTheModelsSize() {
        for (int i = 0; i < 3; i++) {
            Attention.Maps m = attention.run(synthetic(i, cfg.imgSize, 1), null);
            assertEquals(cfg.imgSize, m.height());
            assertEquals(cfg.imgSize / cfg.patch, m.gridH());
            assertEquals(cfg.imgSize / cfg.patch, m.gridW());
            assertRowsAreDistributions(m);
        }
    }

    @Test
    void anImageAtTheModelsSizeIsShownExactlyAsItIs() {
        DecodedImage img = synthetic(4, cfg.imgSize, 1);
        Attention.Maps m = attention.run(img, null);
        // The shown pixels are the normalized input mapped back: for an image already at the size, the image itself.
        assertArrayEquals(PilOps.toPlanar(img.pixels, img.height, img.width, 1, 1), m.pixels());
    }

    @Test
    void rgbAndOtherSizesAreCentreCroppedToTheModel() {
        Attention.Maps m = attention.run(synthetic(2, 40, 3), null);
        assertEquals(cfg.imgSize, m.width());
        assertEquals(1, m.channels(), "converted to the model's one channel");
        assertRowsAreDistributions(m);
    }

    @Test
    void aChosenSizeKeepsTheAspectRatioAndInterpolatesPositions() {
        DecodedImage img = new DecodedImage();
        img.width = 30;
        img.height = 20;
        img.channels = 1;
        img.pixels = new byte[600];
        new SplittableRandom(1).nextBytes(img.pixels);
        Attention.Maps m = attention.run(img, 24);
        assertEquals(24, m.height(), "shorter side to --size");
        assertEquals(36, m.width(), "30/20 * 24 = 36, a multiple of the patch");
        assertEquals(6, m.gridH());
        assertEquals(9, m.gridW());
        assertRowsAreDistributions(m);

        img.width = 31;   // 24 * 31/20 = 37.2 -> 37, cropped to 36
        img.pixels = new byte[620];
        assertEquals(36, attention.run(img, 24).width());
    }

    @Test
    void sizesThatAreNotMultiplesOfThePatchAreRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Attention.checkSize(18, cfg));
        assertTrue(e.getMessage().contains("patch size 4"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Attention.checkSize(2, cfg));
        Attention.checkSize(null, cfg);
        Attention.checkSize(32, cfg);
    }
}
