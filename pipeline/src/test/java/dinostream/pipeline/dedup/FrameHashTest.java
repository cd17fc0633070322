package dinostream.pipeline.dedup;

import dinostream.pipeline.decode.DecodedPixels;
import dinostream.pipeline.produce.CameraFeed;
import dinostream.pipeline.produce.FashionMnist;
import dinostream.pipeline.produce.SourceImage;
import dinostream.pipeline.produce.SyntheticSource;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The difference hash: 0 bits apart for the same image, few for a near-duplicate, many for another image. */
class FrameHashTest {
    @Test
    void identicalImagesAreZeroApart() {
        byte[] px = random(28, 28, 1, 1);
        long h = FrameHash.of(28, 28, 1, px);
        assertEquals(h, FrameHash.of(28, 28, 1, px.clone()));
        assertEquals(0, FrameHash.distance(h, h));
        assertEquals(h, FrameHash.of(new DecodedPixels(28, 28, 1, px)));
    }

    @Test
    void bitsFollowTheHorizontalGradient() {
        // Brighter to the right: every left cell is darker than its right neighbour, all 64 bits set.
        byte[] ramp = new byte[40 * 30], mirror = new byte[40 * 30];
        for (int y = 0; y < 30; y++) {
            for (int x = 0; x < 40; x++) {
                ramp[y * 40 + x] = (byte) (x * 6);
                mirror[y * 40 + x] = (byte) ((39 - x) * 6);
            }
        }
        assertEquals(-1L, FrameHash.of(40, 30, 1, ramp));
        assertEquals(0L, FrameHash.of(40, 30, 1, mirror));
        assertEquals(64, FrameHash.distance(FrameHash.of(40, 30, 1, ramp), FrameHash.of(40, 30, 1, mirror)));
        assertEquals(0L, FrameHash.of(40, 30, 1, new byte[40 * 30]), "a flat image has no gradient");
    }

    @Test
    void aBrightnessChangeKeepsTheHash() {
        for (int seed = 0; seed < 20; seed++) {
            byte[] px = new SyntheticSource(seed, 1, 64, 1).render(0);
            byte[] darker = new byte[px.length];
            for (int i = 0; i < px.length; i++) darker[i] = (byte) Math.round((px[i] & 0xff) * 0.9);
            int d = FrameHash.distance(FrameHash.of(64, 64, 1, px), FrameHash.of(64, 64, 1, darker));
            assertTrue(d <= 3, "10 % darker: " + d + " bits");
        }
    }

    @Test
    void cameraFramesOfAnImageAreCloserThanOtherImages() throws IOException {
        SyntheticSource s = new SyntheticSource(1, 400, 96, 1);
        double[] d = successiveDistances(CameraFeed.of(s, 2, -1, 4, 400), 0);
        // A fixed camera's frames (light, noise) hash nearly alike (0.1 bits here, against 18 between images).
        assertTrue(d[0] < 1 && d[1] > 10, "frames of an image " + d[0] + " bits apart, of two images " + d[1]);
    }

    /**
     * The default threshold on the camera feed of Fashion-MNIST (the measurement in README, "Camera-like
     * streams"): it drops nearly every repeated frame and few new images.
     */
    @Test
    void theDefaultDistanceSeparatesFashionMnistFrames() throws IOException {
        assumeTrue(FashionMnist.available(FashionMnist.DEFAULT_DIR, FashionMnist.Split.TRAIN), "Fashion-MNIST is not installed");
        FashionMnist f = FashionMnist.load(FashionMnist.DEFAULT_DIR, FashionMnist.Split.TRAIN);
        double[] d = successiveDistances(CameraFeed.of(f, 0, 40_000, 4, 256), DedupOptions.DEFAULT_MAX_DISTANCE);
        // Measured: 99 % of repeated frames within 4 bits, about 3 % of successive images of a run.
        assertTrue(d[2] > 0.95, "repeated frames within the default distance: " + d[2]);
        assertTrue(d[3] < 0.08, "new images within the default distance: " + d[3]);
    }

    /**
     * Over a feed: mean distance between successive frames of one image, and between an image's last
     * frame and the next image's first; then the shares of each within {@code within} bits.
     */
    static double[] successiveDistances(CameraFeed c, int within) throws IOException {
        long sameSum = 0, otherSum = 0;
        int same = 0, other = 0, sameIn = 0, otherIn = 0;
        long prev = 0;
        for (int i = 0; i < c.size(); i++) {
            SourceImage f = c.read(i);
            long h = FrameHash.of(f.width(), f.height(), f.channels(), f.bytes());
            if (i > 0) {
                int d = FrameHash.distance(prev, h);
                if (c.frame(i) > 0) {
                    sameSum += d;
                    same++;
                    if (d <= within) sameIn++;
                } else {
                    otherSum += d;
                    other++;
                    if (d <= within) otherIn++;
                }
            }
            prev = h;
        }
        return new double[]{(double) sameSum / same, (double) otherSum / other, (double) sameIn / same, (double) otherIn / other};
    }

    @Test
    void unrelatedImagesAreAboutHalfTheBitsApart() {
        long sum = 0;
        for (int i = 0; i < 200; i++) sum += FrameHash.distance(FrameHash.of(32, 32, 1, random(32, 32, 1, 2 * i)), FrameHash.of(32, 32, 1, random(32, 32, 1, 2 * i + 1)));
        double mean = sum / 200.0;
        assertTrue(mean > 28 && mean < 36, "random images: " + mean + " bits apart on average");
    }

    @Test
    void rgbIsHashedByItsLuma() {
        byte[] gray = new SyntheticSource(5, 1, 28, 1).render(0);
        byte[] rgb = new byte[gray.length * 3];
        for (int i = 0; i < gray.length; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = gray[i];
        assertEquals(FrameHash.of(28, 28, 1, gray), FrameHash.of(28, 28, 3, rgb), "gray as RGB: the same hash");
        // Green weighs more than red in luma: a red-to-green ramp gets brighter to the right.
        byte[] redToGreen = new byte[18 * 8 * 3];
        for (int y = 0; y < 8; y++) {
            for (int x = 0; x < 18; x++) {
                redToGreen[(y * 18 + x) * 3] = (byte) (255 - x * 15);
                redToGreen[(y * 18 + x) * 3 + 1] = (byte) (x * 15);
            }
        }
        assertEquals(-1L, FrameHash.of(18, 8, 3, redToGreen));
        long colour = FrameHash.of(28, 28, 3, new SyntheticSource(5, 1, 28, 3).render(0));
        assertEquals(colour, FrameHash.of(28, 28, 3, new SyntheticSource(5, 1, 28, 3).render(0)));
    }

    @Test
    void tinyImagesAreSampled() {
        assertEquals(0L, FrameHash.of(1, 1, 1, new byte[]{(byte) 200}));
        // Two pixels, dark then bright: columns 0-4 of the 9 sample the first, 5-8 the second.
        long twoPixels = FrameHash.of(2, 1, 1, new byte[]{10, (byte) 200});
        long expected = 0;
        for (int row = 0; row < 8; row++) expected |= 1L << (row * 8 + 4);
        assertEquals(expected, twoPixels);
        assertEquals(8, FrameHash.distance(twoPixels, FrameHash.of(2, 1, 1, new byte[]{(byte) 200, 10})));
        for (int w = 1; w <= 12; w++) {
            for (int h = 1; h <= 12; h++) {
                FrameHash.of(w, h, 1, random(w, h, 1, w * 13 + h));
                FrameHash.of(w, h, 3, random(w, h, 3, w * 13 + h));
            }
        }
        assertEquals(-1L, FrameHash.of(9, 8, 1, ramp(9, 8)), "9 x 8: one pixel a cell");
    }

    @Test
    void badSizesAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> FrameHash.of(0, 1, 1, new byte[0]));
        assertThrows(IllegalArgumentException.class, () -> FrameHash.of(2, 2, 2, new byte[8]));
        assertThrows(IllegalArgumentException.class, () -> FrameHash.of(2, 2, 1, new byte[5]));
    }

    @Test
    void distanceCountsDifferingBits() {
        assertEquals(0, FrameHash.distance(0x1234L, 0x1234L));
        assertEquals(64, FrameHash.distance(0L, -1L));
        assertEquals(2, FrameHash.distance(0b1010L, 0b0000L));
        assertEquals(FrameHash.distance(5L, 9L), FrameHash.distance(9L, 5L));
    }

    private static byte[] ramp(int w, int h) {
        byte[] px = new byte[w * h];
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) px[y * w + x] = (byte) (x * 255 / Math.max(1, w - 1));
        return px;
    }

    private static byte[] random(int w, int h, int channels, long seed) {
        byte[] px = new byte[w * h * channels];
        SplittableRandom rng = new SplittableRandom(seed);
        for (int i = 0; i < px.length; i++) px[i] = (byte) rng.nextInt(256);
        return px;
    }
}
