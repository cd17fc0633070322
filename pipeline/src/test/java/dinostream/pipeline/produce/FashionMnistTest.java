package dinostream.pipeline.produce;

import dinostream.schemas.ImageEncoding;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The IDX reader: against the real files when Debian's dataset-fashion-mnist is installed, and
 * always against small IDX files written here (so the format checks run on every machine).
 */
class FashionMnistTest {
    @TempDir
    Path dir;

    @Test
    void readsTheInstalledTestSplit() throws IOException {
        assumeTrue(FashionMnist.available(FashionMnist.DEFAULT_DIR, FashionMnist.Split.TEST),
                "Fashion-MNIST is not installed at " + FashionMnist.DEFAULT_DIR + " (apt-get install dataset-fashion-mnist); "
                        + "the IDX format is still tested on generated files");
        FashionMnist f = FashionMnist.load(FashionMnist.DEFAULT_DIR, FashionMnist.Split.TEST);
        assertEquals(10_000, f.size());
        assertEquals("fashion-mnist/test", f.name());
        // The first labels and the pixel sum of image 0, as Python's gzip module reads the same files.
        List<Integer> first = List.of(9, 2, 1, 1, 6, 1, 4, 6, 5, 7);
        for (int i = 0; i < first.size(); i++) assertEquals(first.get(i), f.label(i), "label " + i);
        int[] perClass = new int[10];
        for (int i = 0; i < f.size(); i++) perClass[f.label(i)]++;
        for (int c = 0; c < 10; c++) assertEquals(1000, perClass[c], "class " + c);

        SourceImage im = f.read(0);
        assertEquals("fmnist-test-000000", im.id());
        assertEquals(ImageEncoding.RAW_U8, im.encoding());
        assertEquals(28, im.width());
        assertEquals(28, im.height());
        assertEquals(1, im.channels());
        assertEquals(784, im.bytes().length);
        assertEquals(9, im.label());
        assertEquals("Ankle boot", im.attributes().get("class"));
        assertNull(im.eventTime(), "sent with the time of sending");
        long sum = 0;
        for (byte b : im.bytes()) sum += b & 0xff;
        assertEquals(33456, sum);
        assertEquals("fmnist-test-009999", f.read(9999).id());
    }

    @Test
    void readsTheInstalledTrainLabels() throws IOException {
        assumeTrue(FashionMnist.available(FashionMnist.DEFAULT_DIR, FashionMnist.Split.TRAIN),
                "Fashion-MNIST is not installed at " + FashionMnist.DEFAULT_DIR + " (apt-get install dataset-fashion-mnist)");
        FashionMnist f = FashionMnist.load(FashionMnist.DEFAULT_DIR, FashionMnist.Split.TRAIN);
        assertEquals(60_000, f.size());
        List<Integer> first = List.of(9, 0, 0, 3, 0, 2, 7, 2, 5, 5);
        for (int i = 0; i < first.size(); i++) assertEquals(first.get(i), f.label(i), "label " + i);
        assertEquals("fmnist-train-000123", f.read(123).id());
    }

    @Test
    void readsGeneratedIdxFiles() throws IOException {
        int n = 5;
        byte[] pixels = new byte[n * 784];
        for (int i = 0; i < pixels.length; i++) pixels[i] = (byte) (i * 7);
        byte[] labels = {3, 1, 4, 1, 5};
        writeIdx(FashionMnist.imagesFile(dir, FashionMnist.Split.TRAIN), 0x803, n, new int[]{28, 28}, pixels);
        writeIdx(FashionMnist.labelsFile(dir, FashionMnist.Split.TRAIN), 0x801, n, new int[]{}, labels);
        FashionMnist f = FashionMnist.load(dir, FashionMnist.Split.TRAIN);
        assertEquals(n, f.size());
        for (int i = 0; i < n; i++) {
            SourceImage im = f.read(i);
            assertEquals(labels[i], im.label().byteValue());
            assertArrayEquals(java.util.Arrays.copyOfRange(pixels, i * 784, (i + 1) * 784), im.bytes());
        }
    }

    @Test
    void missingFilesSayHowToInstall() {
        SourceException e = assertThrows(SourceException.class, () -> FashionMnist.load(dir, FashionMnist.Split.TEST));
        assertTrue(e.getMessage().startsWith("Fashion-MNIST not found at " + dir), e.getMessage());
        assertTrue(e.getMessage().endsWith(": apt-get install dataset-fashion-mnist"), e.getMessage());
    }

    @Test
    void badFilesAreRejectedWithTheReason() throws IOException {
        Path imgs = FashionMnist.imagesFile(dir, FashionMnist.Split.TRAIN), lbls = FashionMnist.labelsFile(dir, FashionMnist.Split.TRAIN);
        writeIdx(lbls, 0x801, 2, new int[]{}, new byte[]{0, 1});

        writeIdx(imgs, 0x801, 2, new int[]{28, 28}, new byte[2 * 784]);   // a labels magic on the images file
        assertMessage("bad magic number 0x00000801 (expected 0x00000803");

        writeIdx(imgs, 0x803, 3, new int[]{28, 28}, new byte[3 * 784]);
        assertMessage("3 images but 2 labels");

        writeIdx(imgs, 0x803, 2, new int[]{32, 32}, new byte[2 * 1024]);
        assertMessage("images are 32 pixels along dimension 1, expected 28");

        writeIdx(imgs, 0x803, 2, new int[]{28, 28}, new byte[784 + 100]);
        assertMessage("truncated");

        Files.write(imgs, new byte[]{1, 2, 3, 4});
        assertMessage("not a valid gzip file");

        writeIdx(imgs, 0x803, 2, new int[]{28, 28}, new byte[2 * 784]);
        writeIdx(lbls, 0x801, 2, new int[]{}, new byte[]{0, 10});
        assertMessage("label 10 of image 1 is not a Fashion-MNIST class");
    }

    private void assertMessage(String part) {
        SourceException e = assertThrows(SourceException.class, () -> FashionMnist.load(dir, FashionMnist.Split.TRAIN));
        assertTrue(e.getMessage().contains(part), e.getMessage());
    }

    static void writeIdx(Path file, int magic, int count, int[] dims, byte[] data) throws IOException {
        try (OutputStream raw = Files.newOutputStream(file); DataOutputStream out = new DataOutputStream(new GZIPOutputStream(raw))) {
            out.writeInt(magic);
            out.writeInt(count);
            for (int d : dims) out.writeInt(d);
            out.write(data);
        }
    }
}
