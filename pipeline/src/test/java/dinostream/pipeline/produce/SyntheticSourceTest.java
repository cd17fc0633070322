package dinostream.pipeline.produce;

import dinostream.schemas.ImageEncoding;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The synthetic generator and the stream orders; needs no dataset, always runs. */
class SyntheticSourceTest {
    @Test
    void grayImagesWithLabelsAndStableIds() {
        SyntheticSource s = new SyntheticSource(7, 100, 28, 1);
        assertEquals(100, s.size());
        assertEquals("synthetic/7", s.name());
        int[] perClass = new int[10];
        for (int i = 0; i < s.size(); i++) {
            SourceImage im = s.read(i);
            assertEquals("synthetic-7-" + i, im.id());
            assertEquals(ImageEncoding.RAW_U8, im.encoding());
            assertEquals(28, im.width());
            assertEquals(28, im.height());
            assertEquals(1, im.channels());
            assertEquals(784, im.bytes().length);
            assertEquals(i % 10, im.label());
            assertEquals(SyntheticSource.CLASSES.get(i % 10), im.attributes().get("class"));
            perClass[im.label()]++;
            // A visible shape: some bright pixels (the shape) and some dark ones (the background).
            int bright = 0, dark = 0;
            for (byte b : im.bytes()) {
                if ((b & 0xff) >= 130) bright++;
                if ((b & 0xff) <= 70) dark++;
            }
            assertTrue(bright >= 20 && dark >= 100, "image " + i + ": " + bright + " bright, " + dark + " dark pixels");
        }
        for (int c = 0; c < 10; c++) assertEquals(10, perClass[c]);
    }

    @Test
    void deterministicFromTheSeed() {
        SyntheticSource a = new SyntheticSource(3, 50, 28, 1), b = new SyntheticSource(3, 50, 28, 1), c = new SyntheticSource(4, 50, 28, 1);
        Set<String> distinct = new HashSet<>();
        for (int i = 0; i < 50; i++) {
            assertArrayEquals(a.render(i), b.render(i), "same seed, same image " + i);
            assertFalse(Arrays.equals(a.render(i), c.render(i)), "another seed, another image " + i);
            distinct.add(Arrays.toString(a.render(i)));
        }
        assertEquals(50, distinct.size(), "random positions and intensities: no two images alike");
        // Image n does not depend on which images were made before it.
        assertArrayEquals(new SyntheticSource(3, 50, 28, 1).render(42), a.render(42));
    }

    @Test
    void rgbAndOtherSizes() {
        SyntheticSource s = new SyntheticSource(1, 20, 64, 3);
        SourceImage im = s.read(5);
        assertEquals(64, im.width());
        assertEquals(64, im.height());
        assertEquals(3, im.channels());
        assertEquals(64 * 64 * 3, im.bytes().length);
        // Coloured: the channels differ somewhere.
        boolean differ = false;
        for (int p = 0; p < 64 * 64 && !differ; p++) differ = im.bytes()[3 * p] != im.bytes()[3 * p + 1];
        assertTrue(differ);
        assertThrows(IllegalArgumentException.class, () -> new SyntheticSource(1, 10, 28, 2));
        assertThrows(IllegalArgumentException.class, () -> new SyntheticSource(1, 10, 4, 1));
    }

    @Test
    void iidIsASeededShuffle() {
        SyntheticSource s = new SyntheticSource(0, 1000, 28, 1);
        int[] a = Order.IID.indices(s, 5, -1), b = Order.IID.indices(s, 5, -1), c = Order.IID.indices(s, 6, -1);
        assertArrayEquals(a, b);
        assertFalse(Arrays.equals(a, c));
        int[] sorted = a.clone();
        Arrays.sort(sorted);
        for (int i = 0; i < sorted.length; i++) assertEquals(i, sorted[i], "a permutation");
        assertNotEquals(0, Arrays.compare(a, sorted), "shuffled");

        int[] limited = Order.IID.indices(s, 5, 30);
        assertArrayEquals(Arrays.copyOf(a, 30), limited, "the limit takes a prefix of the shuffle");
    }

    @Test
    void classSortedIsNonStationaryAndKeepsEveryClassUnderALimit() {
        SyntheticSource s = new SyntheticSource(0, 1000, 28, 1);
        int[] all = Order.CLASS_SORTED.indices(s, 5, -1);
        assertEquals(1000, all.length);
        for (int i = 1; i < all.length; i++) assertTrue(s.label(all[i - 1]) <= s.label(all[i]), "sorted at " + i);
        assertEquals(0, s.label(all[0]));
        assertEquals(9, s.label(all[999]));

        int[] limited = Order.CLASS_SORTED.indices(s, 5, 50);
        assertEquals(50, limited.length);
        Set<Integer> classes = new HashSet<>();
        for (int i = 0; i < limited.length; i++) {
            classes.add(s.label(limited[i]));
            if (i > 0) assertTrue(s.label(limited[i - 1]) <= s.label(limited[i]));
        }
        assertTrue(classes.size() >= 8, "a limited class-sorted stream still spans the classes: " + classes);
        assertEquals("class-sorted", Order.CLASS_SORTED.cliName());
        assertEquals(Order.CLASS_SORTED, Order.parse("class-sorted"));
        assertThrows(IllegalArgumentException.class, () -> Order.parse("sorted"));
    }
}
