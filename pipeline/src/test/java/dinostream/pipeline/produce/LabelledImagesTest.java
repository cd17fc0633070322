package dinostream.pipeline.produce;

import dinostream.pipeline.decode.DecodedPixels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static dinostream.pipeline.produce.FolderSourceTest.image;
import static dinostream.pipeline.produce.FolderSourceTest.write;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LabelledImagesTest {
    @TempDir
    Path dir;

    /** Test classes are numbered as train's, by name, whatever classes the test split lacks. */
    @Test
    void testLabelsFollowTheTrainClasses() throws Exception {
        write(dir.resolve("train/ants/0.png"), image("png", 1));
        write(dir.resolve("train/bees/0.png"), image("png", 2));
        write(dir.resolve("train/bees/1.jpg"), image("jpg", 3));
        write(dir.resolve("test/bees/0.png"), image("png", 4));
        LabelledImages ds = LabelledImages.folder(dir, null, null, 0);
        assertEquals(2, ds.classes());
        assertEquals(3, ds.pixelChannels());
        assertEquals(3, ds.train().size());
        assertArrayEquals(new int[]{1}, ds.test().labels(), "bees is class 1 of train, class 0 of test's own folders");
        DecodedPixels px = ds.test().decode(0, 1);
        assertEquals(12, px.width());
        assertEquals(1, px.channels());
        assertEquals("bees/0.png", ds.test().imageName(0));
    }

    @Test
    void aSubsetIsTheFirstOfTheSeededPermutation() throws Exception {
        for (int i = 0; i < 5; i++) write(dir.resolve("train/c" + (i % 2) + "/" + i + ".png"), image("png", i));
        write(dir.resolve("test/c0/0.png"), image("png", 9));
        LabelledImages ds = LabelledImages.folder(dir, 2, null, 0);
        // numpy: np.random.RandomState(0).permutation(5) = [2, 0, 1, 3, 4]
        assertArrayEquals(new int[]{2, 0}, ds.train().index());
    }

    @Test
    void unreadableImagesAreNamed() throws Exception {
        write(dir.resolve("train/a/0.png"), "not an image".getBytes());
        write(dir.resolve("test/a/0.png"), image("png", 1));
        LabelledImages ds = LabelledImages.folder(dir, null, null, 0);
        SourceException e = assertThrows(SourceException.class, () -> ds.train().decode(0, 1));
        assertTrue(e.getMessage().endsWith("train/a/0.png is neither JPEG nor PNG"), e.getMessage());
    }
}
