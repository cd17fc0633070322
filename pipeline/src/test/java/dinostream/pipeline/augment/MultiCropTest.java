package dinostream.pipeline.augment;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Presets;
import dinostream.pipeline.records.CropSet;
import dinostream.pipeline.records.DecodedImage;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MultiCropTest {
    static DecodedImage image(String id, int h, int w, int c, long seed) {
        DecodedImage d = new DecodedImage();
        d.id = id;
        d.modelId = "m";
        d.source = "test";
        d.eventTime = 1234;
        d.label = 3;
        d.topic = "images";
        d.partition = 2;
        d.offset = 99;
        d.height = h;
        d.width = w;
        d.channels = c;
        d.pixels = new byte[h * w * c];
        new Random(seed).nextBytes(d.pixels);
        return d;
    }

    // ---------------------------------------------------------------- geometry

    @Test
    void oneChannelPresetGivesTwoGlobalAndFourLocalViews() {
        DinoConfig cfg = Presets.get("fmnist-tiny");
        CropSet cs = MultiCrop.forConfig(cfg).apply(image("a", 28, 28, 1, 1), 7);
        assertEquals(1, cs.channels);
        assertArrayEquals(new int[]{28, 28, 12, 12, 12, 12}, cs.sizes);
        assertEquals(2 * 28 * 28 + 4 * 12 * 12, cs.pixels.length);
        assertEquals(6, cs.views());
        assertEquals(2 * 28 * 28 + 12 * 12, cs.viewOffset(3));
        // Record fields travel with the crops.
        assertEquals("a", cs.id);
        assertEquals("m", cs.modelId);
        assertEquals(1234, cs.eventTime);
        assertEquals(3, cs.label);
        assertEquals("images", cs.topic);
        assertEquals(2, cs.partition);
        assertEquals(99, cs.offset);
    }

    @Test
    void threeChannelPresetGivesDinoViews() {
        DinoConfig cfg = Presets.get("vit-s16");
        CropSet cs = MultiCrop.forConfig(cfg).apply(image("rgb", 60, 80, 3, 2), 1);
        assertEquals(3, cs.channels);
        int[] sizes = new int[10];
        Arrays.fill(sizes, 96);
        sizes[0] = sizes[1] = 224;
        assertArrayEquals(sizes, cs.sizes);
        assertEquals(3 * (2 * 224 * 224 + 8 * 96 * 96), cs.pixels.length);
    }

    @Test
    void inputChannelsAreConvertedToTheModels() {
        MultiCrop gray = MultiCrop.forConfig(Presets.get("fmnist-small"));
        assertEquals(1, gray.apply(image("x", 30, 30, 3, 3), 1).channels);
        MultiCrop rgb = MultiCrop.forConfig(Presets.get("vit-s16"));
        CropSet cs = rgb.apply(image("y", 28, 28, 1, 4), 1);
        assertEquals(3, cs.channels);
        // A grey input stays grey in every view: the three planes of a view agree (hue/saturation/grayscale keep grey).
        for (int v = 0; v < cs.views(); v++) {
            int n = cs.sizes[v] * cs.sizes[v], off = cs.viewOffset(v);
            for (int i = 0; i < n; i++) {
                assertEquals(cs.pixels[off + i], cs.pixels[off + n + i]);
                assertEquals(cs.pixels[off + i], cs.pixels[off + 2 * n + i]);
            }
        }
    }

    @Test
    void malformedImagesAreRejected() {
        MultiCrop mc = MultiCrop.forConfig(Presets.get("fmnist-tiny"));
        DecodedImage d = image("bad", 28, 28, 1, 1);
        d.pixels = new byte[10];
        assertThrows(IllegalArgumentException.class, () -> mc.apply(d, 1));
        DecodedImage e = image("bad", 28, 28, 1, 1);
        e.channels = 2;
        assertThrows(IllegalArgumentException.class, () -> mc.apply(e, 1));
    }

    /** Means from 100k draws of torchvision 0.14's RandomResizedCrop.get_params (sd/sqrt(n) ~ 0.0005). */
    @Test
    void cropAreasFollowTorchvisionsDistribution() {
        double[][] ref = {
                // H, W, scale lo, hi, mean area, min, max, mean log ratio
                {28, 28, 0.4, 1.0, 0.6541, 0.3827, 1.0, 0.0},
                {28, 28, 0.05, 0.4, 0.2250, 0.0446, 0.4133, 0.0},
                {224, 224, 0.4, 1.0, 0.6416, 0.3979, 1.0, 0.0},
                {224, 224, 0.05, 0.4, 0.2253, 0.0493, 0.4024, 0.0},
                {20, 40, 0.4, 1.0, 0.5094, 0.3800, 0.6750, 0.1263},
        };
        SplittableRandom rng = new SplittableRandom(11);
        int n = 20000;
        for (double[] r : ref) {
            int h = (int) r[0], w = (int) r[1];
            double sum = 0, lr = 0, min = 1, max = 0;
            for (int k = 0; k < n; k++) {
                int[] b = MultiCrop.cropParams(h, w, r[2], r[3], 3.0 / 4, 4.0 / 3, rng);
                assertTrue(b[0] >= 0 && b[1] >= 0 && b[0] + b[2] <= h && b[1] + b[3] <= w, "inside");
                double a = (double) b[2] * b[3] / (h * w);
                sum += a;
                min = Math.min(min, a);
                max = Math.max(max, a);
                lr += Math.log((double) b[3] / b[2]);
            }
            String what = Arrays.toString(Arrays.copyOf(r, 4));
            assertEquals(r[4], sum / n, 0.005, "mean area " + what);
            assertTrue(min >= r[5] - 0.01 && max <= r[6] + 0.01, "area range " + min + ".." + max + " " + what);
            assertEquals(r[7], lr / n, 0.01, "mean log ratio " + what);
        }
    }

    @Test
    void cropPositionsCoverTheImageUniformly() {
        SplittableRandom rng = new SplittableRandom(5);
        int[] leftCounts = new int[28];
        int draws = 0;
        for (int k = 0; k < 20000; k++) {
            int[] b = MultiCrop.cropParams(28, 28, 0.05, 0.05, 1, 1, rng);  // always 6x6 (sqrt(39.2) = 6.26)
            assertEquals(6, b[2]);
            assertEquals(6, b[3]);
            leftCounts[b[1]]++;
            draws++;
        }
        for (int j = 0; j <= 22; j++) assertEquals(draws / 23.0, leftCounts[j], draws / 23.0 * 0.15, "left " + j);
        for (int j = 23; j < 28; j++) assertEquals(0, leftCounts[j]);
    }

    @Test
    void fallbackIsTheCentreCropWithClampedRatio() {
        SplittableRandom rng = new SplittableRandom(1);
        // Wide strip: no 0.9-1.0 area crop with ratio <= 4/3 fits in 5 rows.
        assertArrayEquals(new int[]{0, 46, 5, 7}, MultiCrop.cropParams(5, 100, 0.9, 1.0, 3.0 / 4, 4.0 / 3, rng));
        // Tall strip: the mirror case.
        assertArrayEquals(new int[]{46, 0, 7, 5}, MultiCrop.cropParams(100, 5, 0.9, 1.0, 3.0 / 4, 4.0 / 3, rng));
        // Square image, ratios 2..3 never fit: width kept, height = round(10 / 2).
        assertArrayEquals(new int[]{2, 0, 5, 10}, MultiCrop.cropParams(10, 10, 1.0, 1.0, 2, 3, rng));
        // In-range ratio: the whole image.
        assertArrayEquals(new int[]{0, 0, 1, 1}, MultiCrop.cropParams(1, 1, 0.05, 0.4, 3.0 / 4, 4.0 / 3, rng));
    }

    // ---------------------------------------------------------------- randomness

    @Test
    void sameSeedAndIdGiveIdenticalBytes() {
        DecodedImage img = image("rec-17", 28, 28, 1, 9);
        MultiCrop a = MultiCrop.forConfig(Presets.get("fmnist-tiny"));
        MultiCrop b = MultiCrop.forConfig(Presets.get("fmnist-tiny"));
        byte[] first = a.apply(img, 42).pixels;
        assertArrayEquals(first, a.apply(img, 42).pixels);
        assertArrayEquals(first, b.apply(img, MultiCrop.rngFor(42, "rec-17")).pixels);
        assertFalse(Arrays.equals(first, a.apply(img, 43).pixels), "another model seed");
        DecodedImage other = image("rec-18", 28, 28, 1, 9);   // same pixels, other id
        assertFalse(Arrays.equals(first, a.apply(other, 42).pixels), "another record id");
    }

    @Test
    void rngIsPinnedAcrossJvms() {
        // FNV-1a 64 test vectors.
        assertEquals(0xCBF29CE484222325L, MultiCrop.fnv1a64(""));
        assertEquals(0xAF63DC4C8601EC8CL, MultiCrop.fnv1a64("a"));
        assertEquals(0x85944171F73967E8L, MultiCrop.fnv1a64("foobar"));
        // The stream of a record is part of the replay contract: a change here changes every crop.
        assertEquals(MultiCrop.rngFor(0, "a").nextLong(), MultiCrop.rngFor(0, "a").nextLong());
        assertEquals(PINNED_0_A, MultiCrop.rngFor(0, "a").nextLong());
        assertEquals(PINNED_42_IMG, MultiCrop.rngFor(42, "img-\u00e9/1").nextLong());
        assertEquals(MultiCrop.rngFor(0, "").nextLong(), MultiCrop.rngFor(0, null).nextLong());
        Set<Long> firsts = new HashSet<>();
        for (int s = 0; s < 50; s++) for (int i = 0; i < 50; i++) firsts.add(MultiCrop.rngFor(s, "id" + i).nextLong());
        assertEquals(2500, firsts.size());
    }

    static final long PINNED_0_A = -1337362113127107668L;
    static final long PINNED_42_IMG = -1103735383582010991L;

    /** The crops themselves are pinned too: any change to the draw order or to an op shows here. */
    @Test
    void cropsArePinned() {
        java.util.zip.CRC32 gray = new java.util.zip.CRC32(), rgb = new java.util.zip.CRC32();
        gray.update(MultiCrop.forConfig(Presets.get("fmnist-tiny")).apply(image("golden", 28, 28, 1, 5), 42).pixels);
        rgb.update(MultiCrop.forConfig(Presets.get("vit-s16")).apply(image("golden", 40, 36, 3, 6), 42).pixels);
        assertEquals(PINNED_CRC_GRAY, gray.getValue());
        assertEquals(PINNED_CRC_RGB, rgb.getValue());
    }

    static final long PINNED_CRC_GRAY = 955726181L;
    static final long PINNED_CRC_RGB = 2733511736L;

    @Test
    void derivedDrawsStayInRange() {
        SplittableRandom rng = new SplittableRandom(3);
        int[] counts = new int[7];
        for (int k = 0; k < 70000; k++) {
            double u = MultiCrop.nextDouble(rng);
            assertTrue(u >= 0 && u < 1);
            counts[MultiCrop.nextInt(rng, 7)]++;
        }
        for (int c : counts) assertEquals(10000, c, 400);
    }

    @Test
    void viewDrawsFollowDinosProbabilitiesAndRanges() {
        check(MultiCrop.forConfig(Presets.get("vit-s16")), 3, 2.0);
        check(MultiCrop.forConfig(Presets.get("fmnist-tiny")), 1, 1.0);
    }

    private static void check(MultiCrop mc, int channels, double blurMax) {
        SplittableRandom rng = new SplittableRandom(8);
        int n = 4000;
        int[] flips = new int[3], jitters = new int[3], grays = new int[3], blurs = new int[3], sols = new int[3];
        for (int k = 0; k < n; k++) {
            for (int v = 0; v < 3; v++) {   // global 1, global 2, a local
                MultiCrop.ViewParams vp = mc.sample(v, 28, 28, rng);
                if (vp.flip) flips[v]++;
                if (vp.jitterOrder.length > 0) {
                    jitters[v]++;
                    int[] sorted = vp.jitterOrder.clone();
                    Arrays.sort(sorted);
                    assertArrayEquals(channels == 3 ? new int[]{0, 1, 2, 3} : new int[]{0, 1}, sorted, "a permutation of the enabled ops");
                    assertTrue(vp.factors[0] >= 0.6 && vp.factors[0] < 1.4, "brightness " + vp.factors[0]);
                    assertTrue(vp.factors[1] >= 0.6 && vp.factors[1] < 1.4, "contrast " + vp.factors[1]);
                    if (channels == 3) {
                        assertTrue(vp.factors[2] >= 0.8 && vp.factors[2] < 1.2, "saturation " + vp.factors[2]);
                        assertTrue(vp.factors[3] >= -0.1 && vp.factors[3] < 0.1, "hue " + vp.factors[3]);
                    }
                }
                if (vp.grayscale) grays[v]++;
                if (!Double.isNaN(vp.blurRadius)) {
                    blurs[v]++;
                    assertTrue(vp.blurRadius >= 0.1 && vp.blurRadius < blurMax, "radius " + vp.blurRadius);
                }
                if (vp.solarize) sols[v]++;
            }
        }
        double tol = 0.03;
        double[] blurP = {1.0, 0.1, 0.5}, solP = {0, 0.2, 0};
        for (int v = 0; v < 3; v++) {
            assertEquals(0.5, flips[v] / (double) n, tol, "flip p, view " + v);
            assertEquals(0.8, jitters[v] / (double) n, tol, "jitter p, view " + v);
            assertEquals(channels == 3 ? 0.2 : 0.0, grays[v] / (double) n, tol, "grayscale p, view " + v);
            assertEquals(blurP[v], blurs[v] / (double) n, tol, "blur p, view " + v);
            assertEquals(solP[v], sols[v] / (double) n, tol, "solarize p, view " + v);
        }
    }

    @Test
    void jitterOrderIsUniform() {
        MultiCrop mc = MultiCrop.forConfig(Presets.get("fmnist-tiny"));
        SplittableRandom rng = new SplittableRandom(4);
        int brightnessFirst = 0, applied = 0;
        for (int k = 0; k < 10000; k++) {
            MultiCrop.ViewParams vp = mc.sample(2, 28, 28, rng);
            if (vp.jitterOrder.length == 0) continue;
            applied++;
            if (vp.jitterOrder[0] == MultiCrop.BRIGHTNESS) brightnessFirst++;
        }
        assertEquals(0.5, brightnessFirst / (double) applied, 0.03);
    }

    @Test
    void paramsAreValidated() {
        MultiCrop.Params p = MultiCrop.Params.dino();
        p.globalScaleMin = 0.9;
        p.globalScaleMax = 0.5;
        assertThrows(IllegalArgumentException.class, () -> new MultiCrop(3, 224, 96, 8, p));
        MultiCrop.Params q = MultiCrop.Params.dino();
        q.flipP = 1.5;
        assertThrows(IllegalArgumentException.class, () -> new MultiCrop(3, 224, 96, 8, q));
        assertThrows(IllegalArgumentException.class, () -> new MultiCrop(2, 224, 96, 8, MultiCrop.Params.dino()));
        MultiCrop.Params one = MultiCrop.Params.oneChannel();
        assertEquals(0.0, one.saturation);
        assertEquals(0.0, one.hue);
        assertEquals(0.0, one.grayscaleP);
        assertEquals(1.0, one.blurRadiusMax);
        assertEquals(0.4, one.brightness);
        assertEquals(0.2, one.solarizeP);
    }

    @Test
    void customScalesAreUsed() {
        MultiCrop.Params p = MultiCrop.Params.oneChannel();
        p.globalScaleMin = p.globalScaleMax = 1.0;
        p.ratioMin = p.ratioMax = 1.0;
        MultiCrop mc = new MultiCrop(1, 28, 12, 2, p);
        SplittableRandom rng = new SplittableRandom(2);
        for (int k = 0; k < 100; k++) {
            MultiCrop.ViewParams vp = mc.sample(0, 28, 28, rng);
            assertEquals(28, vp.height);
            assertEquals(28, vp.width);
        }
    }

    // ---------------------------------------------------------------- normalization

    @Test
    void normalizeWritesTorchsChwFloats() {
        CropSet cs = new CropSet();
        cs.channels = 3;
        cs.sizes = new int[]{2, 1};
        cs.pixels = new byte[3 * 4 + 3];
        for (int i = 0; i < cs.pixels.length; i++) cs.pixels[i] = (byte) (i * 17);
        double[] mean = {0.485, 0.456, 0.406}, std = {0.229, 0.224, 0.225};
        float[] dst = new float[20];
        assertEquals(3, MultiCrop.normalize(cs, 1, mean, std, dst, 5));
        for (int c = 0; c < 3; c++) {
            int x = (12 + c) * 17;
            assertEquals(((x / 255f) - (float) mean[c]) / (float) std[c], dst[5 + c]);
        }
        assertEquals(0f, dst[4]);
        assertEquals(0f, dst[8]);
        assertEquals(12, MultiCrop.normalize(cs, 0, mean, std, dst, 0));
        assertEquals((0 - 0.485f) / 0.229f, dst[0], 1e-6);
        assertEquals((187 / 255f - 0.406f) / 0.225f, dst[11], 1e-6);   // pixel 11 = 11 * 17, last of plane 2
        assertThrows(IllegalArgumentException.class, () -> MultiCrop.normalize(cs, 0, new double[]{0.5}, new double[]{0.5}, dst, 0));
    }
}
