package dinostream.pipeline.augment;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Properties of the pixel operations that hold whatever Pillow's exact rounding is. */
class PilOpsTest {
    static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    static byte[] resize(byte[] src, int c, int h, int w, int outH, int outW) {
        byte[] out = new byte[c * outH * outW];
        PilOps.resizedCropBicubic(src, c, h, w, 0, 0, h, w, out, 0, outH, outW);
        return out;
    }

    @Test
    void constantImageStaysConstantAtAnySize() {
        for (int v : new int[]{0, 1, 77, 128, 254, 255}) {
            for (int[] sz : new int[][]{{28, 28, 12, 12}, {28, 28, 40, 40}, {7, 31, 9, 9}, {224, 224, 96, 96}, {5, 5, 224, 224}}) {
                byte[] img = new byte[3 * sz[0] * sz[1]];
                Arrays.fill(img, (byte) v);
                byte[] out = resize(img, 3, sz[0], sz[1], sz[2], sz[3]);
                for (byte b : out) assertEquals(v, b & 0xFF, "constant " + v + " resized " + Arrays.toString(sz));
            }
        }
    }

    @Test
    void identitySizeReturnsTheInput() {
        byte[] img = random(3 * 17 * 23, 1);
        assertArrayEquals(img, resize(img, 3, 17, 23, 17, 23));
    }

    @Test
    void cropWithoutResizeCopiesTheBox() {
        int h = 10, w = 12;
        byte[] img = new byte[h * w];
        for (int i = 0; i < img.length; i++) img[i] = (byte) i;
        byte[] out = new byte[4 * 4];
        PilOps.resizedCropBicubic(img, 1, h, w, 3, 5, 4, 4, out, 0, 4, 4);
        for (int y = 0; y < 4; y++) for (int x = 0; x < 4; x++) assertEquals((3 + y) * w + 5 + x, out[y * 4 + x] & 0xFF);
    }

    @Test
    void downscaledCheckerboardAverages() {
        int n = 32;
        byte[] img = new byte[n * n];
        for (int y = 0; y < n; y++) for (int x = 0; x < n; x++) img[y * n + x] = (byte) (((x + y) & 1) == 0 ? 0 : 255);
        byte[] out = resize(img, 1, n, n, n / 2, n / 2);
        long sum = 0;
        for (int y = 0; y < n / 2; y++) {
            for (int x = 0; x < n / 2; x++) {
                int v = out[y * n / 2 + x] & 0xFF;
                sum += v;
                // Away from the borders the antialiasing kernel covers as much white as black.
                if (x >= 2 && x < n / 2 - 2 && y >= 2 && y < n / 2 - 2) assertTrue(Math.abs(v - 127.5) <= 1, "interior " + v);
            }
        }
        assertEquals(127.5, (double) sum / (n * n / 4), 3.0);
    }

    @Test
    void upscaleStaysWithinTheInputRangeForSmoothInput() {
        byte[] img = new byte[8 * 8];
        for (int y = 0; y < 8; y++) for (int x = 0; x < 8; x++) img[y * 8 + x] = (byte) (100 + 5 * x + 3 * y);
        byte[] out = resize(img, 1, 8, 8, 28, 28);
        for (byte b : out) assertTrue((b & 0xFF) >= 98 && (b & 0xFF) <= 158, "value " + (b & 0xFF));
        // A linear ramp is reproduced in the interior: monotone along x.
        for (int y = 0; y < 28; y++) for (int x = 1; x < 28; x++) assertTrue((out[y * 28 + x] & 0xFF) >= (out[y * 28 + x - 1] & 0xFF));
    }

    @Test
    void cropOutsideTheImageIsRejected() {
        assertThrows(IllegalArgumentException.class,
                () -> PilOps.resizedCropBicubic(new byte[100], 1, 10, 10, 5, 5, 6, 5, new byte[16], 0, 4, 4));
    }

    @Test
    void solarizeInvertsFrom128() {
        byte[] px = {0, 1, 127, (byte) 128, (byte) 200, (byte) 255};
        PilOps.solarize(px, 0, px.length);
        assertArrayEquals(new byte[]{0, 1, 127, 127, 55, 0}, px);
    }

    @Test
    void hflipReversesRowsOfEveryPlane() {
        byte[] px = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};   // 2 planes x 2 rows x 3
        PilOps.hflip(px, 0, 2, 2, 3);
        assertArrayEquals(new byte[]{3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10}, px);
        byte[] r = random(3 * 5 * 7, 2), copy = r.clone();
        PilOps.hflip(r, 0, 3, 5, 7);
        PilOps.hflip(r, 0, 3, 5, 7);
        assertArrayEquals(copy, r);
    }

    @Test
    void grayscaleIsPillowLumaOnAllThreePlanes() {
        // Red, green, blue, white: Pillow's convert("L") gives 76, 150, 29, 255.
        byte[] px = {(byte) 255, 0, 0, (byte) 255, 0, (byte) 255, 0, (byte) 255, 0, 0, (byte) 255, (byte) 255};
        PilOps.grayscale(px, 0, 3, 1, 4);
        int[] expect = {76, 150, 29, 255};
        for (int p = 0; p < 3; p++) for (int i = 0; i < 4; i++) assertEquals(expect[i], px[p * 4 + i] & 0xFF);
        byte[] g = {10, 20};
        PilOps.grayscale(g, 0, 1, 1, 2);
        assertArrayEquals(new byte[]{10, 20}, g);
    }

    @Test
    void brightnessAndContrastBlendAndClip() {
        byte[] px = {(byte) 200, 100, 0, 51};
        PilOps.adjustBrightness(px, 0, 1, 1, 4, 0.5);
        assertArrayEquals(new byte[]{100, 50, 0, 25}, px);  // truncated: 25.5 -> 25
        byte[] hi = {(byte) 200, 100};
        PilOps.adjustBrightness(hi, 0, 1, 1, 2, 1.4);
        assertArrayEquals(new byte[]{(byte) 255, (byte) 140}, hi);
        byte[] c = {0, (byte) 255, 100, 45};                  // mean 100
        assertEquals(100, PilOps.grayMean(c, 0, 1, 1, 4));
        PilOps.adjustContrast(c, 0, 1, 1, 4, 0.0);
        assertArrayEquals(new byte[]{100, 100, 100, 100}, c);
        byte[] d = {0, (byte) 255, 100, 45};
        PilOps.adjustContrast(d, 0, 1, 1, 4, 1.4);
        assertArrayEquals(new byte[]{0, (byte) 255, 100, 23}, d);   // 100 + 1.4 * (45 - 100) = 23
    }

    @Test
    void hueAndSaturationLeaveGreyAlone() {
        byte[] px = new byte[3 * 6];
        for (int i = 0; i < 6; i++) px[i] = px[6 + i] = px[12 + i] = (byte) (i * 40);
        byte[] copy = px.clone();
        PilOps.adjustHue(px, 0, 3, 2, 3, 0.1);
        PilOps.adjustSaturation(px, 0, 3, 2, 3, 1.2);
        assertArrayEquals(copy, px);
    }

    @Test
    void hsvRoundTripIsCloseToIdentity() {
        int[] hsv = new int[3];
        Random r = new Random(3);
        for (int k = 0; k < 2000; k++) {
            int red = r.nextInt(256), g = r.nextInt(256), b = r.nextInt(256);
            PilOps.rgbToHsv(red, g, b, hsv);
            int rgb = PilOps.hsvToRgb(hsv[0], hsv[1], hsv[2]);
            // 8-bit hue and saturation quantize: a few levels at most.
            assertTrue(Math.abs((rgb >> 16) - red) <= 8 && Math.abs(((rgb >> 8) & 255) - g) <= 8 && Math.abs((rgb & 255) - b) <= 8,
                    red + "," + g + "," + b + " -> " + Integer.toHexString(rgb));
        }
    }

    @Test
    void blurKeepsConstantsAndSmoothsAnImpulse() {
        byte[] flat = new byte[2 * 12 * 12];
        Arrays.fill(flat, (byte) 93);
        PilOps.gaussianBlur(flat, 0, 2, 12, 12, 1.7);
        for (byte b : flat) assertEquals(93, b & 0xFF);

        int n = 21;
        byte[] imp = new byte[n * n];
        imp[10 * n + 10] = (byte) 255;
        byte[] wide = imp.clone();
        PilOps.gaussianBlur(imp, 0, 1, n, n, 1.0);
        PilOps.gaussianBlur(wide, 0, 1, n, n, 2.0);
        int peak = imp[10 * n + 10] & 0xFF, peakWide = wide[10 * n + 10] & 0xFF;
        // Continuous Gaussian peaks: 255/(2 pi sigma^2) = 40.6 (sigma 1) and 10.1 (sigma 2).
        assertTrue(peak > 30 && peak < 50, "peak " + peak);
        assertTrue(peakWide > 6 && peakWide < 14, "wide peak " + peakWide);
        // Mirror-symmetric; x and y may differ by one level since rows are blurred and rounded first.
        for (int d = 1; d < 5; d++) {
            assertEquals(imp[10 * n + 10 + d], imp[10 * n + 10 - d]);
            assertEquals(imp[(10 + d) * n + 10], imp[(10 - d) * n + 10]);
            assertTrue(Math.abs((imp[(10 + d) * n + 10] & 0xFF) - (imp[10 * n + 10 + d] & 0xFF)) <= 1);
        }
    }

    @Test
    void boxRadiusMatchesTheVariance() {
        // Three passes of an extended box of radius l have variance 3 * ((2l+1)^2 - 1) / 12 for integral l.
        for (double sigma : new double[]{0.5, 1.0, 2.0}) {
            double l = PilOps.boxRadius((float) sigma, 3);
            assertTrue(l > 0 && l < sigma * 1.5, "radius " + l + " for sigma " + sigma);
        }
    }

    @Test
    void toPlanarConvertsChannels() {
        byte[] rgb = {(byte) 255, 0, 0, 0, (byte) 255, 0};        // 1 x 2 HWC: red, green
        assertArrayEquals(new byte[]{(byte) 255, 0, 0, (byte) 255, 0, 0}, PilOps.toPlanar(rgb, 1, 2, 3, 3));
        assertArrayEquals(new byte[]{76, (byte) 150}, PilOps.toPlanar(rgb, 1, 2, 3, 1));
        assertArrayEquals(new byte[]{7, 9, 7, 9, 7, 9}, PilOps.toPlanar(new byte[]{7, 9}, 1, 2, 1, 3));
        assertThrows(IllegalArgumentException.class, () -> PilOps.toPlanar(new byte[5], 1, 2, 3, 3));
        assertThrows(IllegalArgumentException.class, () -> PilOps.toPlanar(new byte[8], 1, 2, 4, 3));
    }
}
