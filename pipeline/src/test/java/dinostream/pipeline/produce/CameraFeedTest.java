package dinostream.pipeline.produce;

import dinostream.schemas.ImageEncoding;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The camera-like feed: long class runs that come back, each image as a few near-duplicate frames. */
class CameraFeedTest {
    @TempDir
    Path dir;

    @Test
    void classesComeInLongRunsThatComeBack() {
        SyntheticSource s = new SyntheticSource(1, 6000, 28, 1);
        int f = 4, l = 64;
        CameraFeed c = CameraFeed.of(s, 3, -1, f, l);
        assertEquals(6000 * f, c.size());
        assertArrayEquals(c.order(), java.util.stream.IntStream.range(0, c.size()).toArray(), "the feed is sent as it is");
        int changes = 0;
        Map<Integer, Integer> segments = new HashMap<>();
        for (int i = 0; i < c.size(); i++) {
            if (i == 0 || !c.label(i).equals(c.label(i - 1))) {
                if (i > 0) changes++;
                segments.merge(c.label(i), 1, Integer::sum);
            }
        }
        // 100 runs (10 classes x 600 images / 64) in a shuffled order; adjacent runs of one class merge.
        double expected = (double) c.size() / (f * l);
        assertTrue(changes <= 100 && changes >= expected / 2, changes + " class changes, expected about " + expected);
        int[] iid = Order.IID.indices(s, 3, -1);
        int iidChanges = 0;
        for (int i = 1; i < iid.length; i++) if (s.label(iid[i]) != (int) s.label(iid[i - 1])) iidChanges++;
        assertTrue(iidChanges > 20 * changes, "iid: " + iidChanges + " changes against " + changes);
        for (int cls = 0; cls < 10; cls++) assertTrue(segments.get(cls) >= 3, "class " + cls + " comes back: " + segments);
    }

    @Test
    void eachImageIsFConsecutiveFramesWithDistinctIds() throws IOException {
        SyntheticSource s = new SyntheticSource(2, 200, 28, 1);
        int f = 3;
        CameraFeed c = CameraFeed.of(s, 5, -1, f, 16);
        assertEquals(600, c.size());
        Set<String> ids = new HashSet<>(), bases = new HashSet<>();
        for (int i = 0; i < c.size(); i += f) {
            int b = c.baseIndex(i);
            assertTrue(bases.add(s.id(b)), "image " + s.id(b) + " goes out once, as one block of frames");
            for (int k = 0; k < f; k++) {
                SourceImage fr = c.read(i + k);
                assertEquals(b, c.baseIndex(i + k));
                assertEquals(k, c.frame(i + k));
                assertEquals(s.id(b) + "-f" + k, fr.id());
                assertEquals(String.valueOf(k), fr.attributes().get("frame"));
                assertEquals("synthetic", fr.attributes().get("generator"), "the base's attributes are kept");
                assertEquals(s.label(b), fr.label());
                assertEquals(c.label(i + k), fr.label());
                assertEquals(ImageEncoding.RAW_U8, fr.encoding());
                assertEquals(28, fr.width());
                assertEquals(1, fr.channels());
                assertTrue(ids.add(fr.id()));
            }
        }
        assertEquals(200, bases.size(), "every image of the source");
        assertEquals("synthetic/2", c.name());
    }

    @Test
    void framesAreNearDuplicatesOfTheirImage() throws IOException {
        SyntheticSource s = new SyntheticSource(4, 50, 28, 3);
        CameraFeed c = CameraFeed.of(s, 9, -1, 4, 8);
        double worst = 0, otherImages = 0;
        for (int i = 0; i < c.size(); i++) {
            SourceImage base = s.read(c.baseIndex(i)), fr = c.read(i);
            assertFalse(Arrays.equals(base.bytes(), fr.bytes()), "frame " + i + " is jittered");
            double d = meanDifference(base.bytes(), fr.bytes());
            worst = Math.max(worst, d);
            otherImages += meanDifference(s.read((c.baseIndex(i) + 1) % 50).bytes(), fr.bytes()) / c.size();
        }
        // Gain of at most 10 % and noise of 2 levels: a few levels per pixel.
        assertTrue(worst < 15, "mean absolute difference to the image: at most " + worst);
        assertTrue(otherImages > 2 * worst, "another image differs more: " + otherImages);
    }

    @Test
    void deterministicForASeedAndDifferentForAnother() throws IOException {
        SyntheticSource s = new SyntheticSource(1, 300, 28, 1);
        CameraFeed a = CameraFeed.of(s, 7, -1, 4, 32), b = CameraFeed.of(s, 7, -1, 4, 32), other = CameraFeed.of(s, 8, -1, 4, 32);
        boolean orderDiffers = false;
        for (int i = 0; i < a.size(); i++) {
            assertEquals(a.baseIndex(i), b.baseIndex(i));
            assertArrayEquals(a.read(i).bytes(), b.read(i).bytes(), "frame " + i);
            orderDiffers |= a.baseIndex(i) != other.baseIndex(i);
        }
        assertTrue(orderDiffers, "another seed, another feed");
        // The same frame of the same image is jittered differently under another seed.
        int differ = 0;
        for (int i = 0; i < other.size(); i++) {
            int j = indexOf(a, other.baseIndex(i), other.frame(i));
            if (!Arrays.equals(a.read(j).bytes(), other.read(i).bytes())) differ++;
        }
        assertTrue(differ > other.size() * 0.9, differ + " of " + other.size() + " frames differ");
    }

    @Test
    void aLimitCountsFramesAndKeepsEveryClass() throws IOException {
        SyntheticSource s = new SyntheticSource(0, 60_000, 28, 1);
        CameraFeed c = CameraFeed.of(s, 0, 400, 4, 256);
        assertEquals(400, c.size());
        Set<Integer> classes = new TreeSet<>();
        for (int i = 0; i < c.size(); i++) classes.add(c.label(i));
        assertEquals(10, classes.size(), "100 images picked by the shuffle: every class " + classes);
        // Not a multiple of the frames: the last image is cut short.
        CameraFeed cut = CameraFeed.of(s, 0, 402, 4, 256);
        assertEquals(402, cut.size());
        assertEquals(1, cut.frame(401));
        assertEquals(0, CameraFeed.of(s, 0, 0, 4, 256).size());
        assertEquals(60_000 * 2, CameraFeed.of(s, 0, Long.MAX_VALUE, 2, 256).size(), "a limit beyond the source: all of it");
    }

    @Test
    void aLimitedFashionMnistFeedHasEveryClass() throws IOException {
        assumeTrue(FashionMnist.available(FashionMnist.DEFAULT_DIR, FashionMnist.Split.TRAIN),
                "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)");
        FashionMnist f = FashionMnist.load(FashionMnist.DEFAULT_DIR, FashionMnist.Split.TRAIN);
        CameraFeed c = CameraFeed.of(f, 0, 6400, 4, 256);
        Set<Integer> classes = new TreeSet<>();
        int changes = 0;
        for (int i = 0; i < c.size(); i++) {
            classes.add(c.label(i));
            if (i > 0 && !c.label(i).equals(c.label(i - 1))) changes++;
        }
        assertEquals(10, classes.size());
        assertTrue(changes <= 9, "1,600 images, 160 a class: one run each, " + changes + " changes");
    }

    @Test
    void unlabelledImagesHaveRunsOfTheirOwn() {
        // Labels 0, 1 and none, interleaved.
        ImageSource mixed = new ImageSource() {
            @Override
            public String name() {
                return "mixed";
            }

            @Override
            public int size() {
                return 90;
            }

            @Override
            public Integer label(int i) {
                return i % 3 == 2 ? null : i % 3;
            }

            @Override
            public SourceImage read(int i) {
                return new SourceImage("m" + i, ImageEncoding.RAW_U8, 2, 2, 1, new byte[4], label(i), null, null);
            }
        };
        // 30 images a class (none counting as one), runs of 10 images = 20 frames.
        CameraFeed c = CameraFeed.of(mixed, 1, -1, 2, 10);
        int start = 0;
        for (int i = 1; i <= c.size(); i++) {
            if (i == c.size() || !Objects.equals(c.label(i), c.label(i - 1))) {
                assertEquals(0, (i - start) % 20, "frames " + start + " to " + i + " of class " + c.label(start) + ": whole runs");
                start = i;
            }
        }
        assertEquals(180, c.size());
    }

    @Test
    void jpegAndPngImagesAreRefused() throws IOException {
        Files.createDirectories(dir.resolve("cats"));
        Files.write(dir.resolve("cats/a.jpg"), new byte[]{(byte) 0xFF, (byte) 0xD8, (byte) 0xFF, 0});
        FolderSource folder = FolderSource.open(dir);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CameraFeed.of(folder, 0, -1, 4, 256));
        assertTrue(e.getMessage().contains("camera order needs raw-pixel sources (fmnist, synthetic)"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Order.CAMERA.feed(folder, 0, -1, 4, 256));
        assertTrue(e.getMessage().contains("raw-pixel"), e.getMessage());

        // Any other source of encoded images is refused when its frames are read.
        ImageSource png = new ImageSource() {
            @Override
            public String name() {
                return "pngs";
            }

            @Override
            public int size() {
                return 2;
            }

            @Override
            public Integer label(int i) {
                return 0;
            }

            @Override
            public SourceImage read(int i) {
                return i == 0 ? null : new SourceImage("p", ImageEncoding.PNG, null, null, null, new byte[8], 0, null, null);
            }
        };
        CameraFeed c = CameraFeed.of(png, 0, -1, 2, 4);
        int skipped = c.baseIndex(0) == 0 ? 0 : 2;
        assertNull(c.read(skipped), "an image the source skips: its frames are skipped");
        e = assertThrows(IllegalArgumentException.class, () -> c.read(2 - skipped));
        assertTrue(e.getMessage().contains("camera order needs raw-pixel sources (fmnist, synthetic)"), e.getMessage());
    }

    @Test
    void badSettingsAreRefused() {
        SyntheticSource s = new SyntheticSource(0, 10, 28, 1);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> CameraFeed.of(s, 0, -1, 0, 4)).getMessage().contains("frames per image"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> CameraFeed.of(s, 0, -1, 4, 0)).getMessage().contains("run length"));
        assertThrows(IndexOutOfBoundsException.class, () -> CameraFeed.of(s, 0, -1, 4, 4).read(40));
        assertEquals(10, CameraFeed.of(s, 0, -1, 1, 1).size());
    }

    /** Mean absolute pixel difference. */
    static double meanDifference(byte[] a, byte[] b) {
        long sum = 0;
        for (int i = 0; i < a.length; i++) sum += Math.abs((a[i] & 0xff) - (b[i] & 0xff));
        return sum / (double) a.length;
    }

    private static int indexOf(CameraFeed c, int base, int frame) {
        for (int i = 0; i < c.size(); i++) if (c.baseIndex(i) == base && c.frame(i) == frame) return i;
        throw new AssertionError("no frame " + frame + " of image " + base);
    }
}
