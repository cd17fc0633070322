package dinostream.pipeline.produce;

import dinostream.schemas.ImageEncoding;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.zip.GZIPInputStream;
import java.util.zip.ZipException;

/**
 * Fashion-MNIST from its IDX files (as Debian's {@code dataset-fashion-mnist} installs them:
 * {@code train-images-idx3-ubyte.gz}, {@code train-labels-idx1-ubyte.gz}, {@code t10k-*}), held in
 * memory (47 MB for the training split) and handed out as RAW_U8 28x28x1 images with their labels.
 */
public final class FashionMnist implements ImageSource {
    public static final Path DEFAULT_DIR = Path.of("/usr/share/datasets/fashion-mnist");
    public static final List<String> CLASSES = List.of(
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot");

    static final int IMAGES_MAGIC = 0x00000803;   // unsigned byte, 3 dimensions
    static final int LABELS_MAGIC = 0x00000801;   // unsigned byte, 1 dimension
    static final int SIDE = 28;

    public enum Split {
        TRAIN("train", "train", 60_000),
        TEST("test", "t10k", 10_000);

        final String cliName;
        final String filePrefix;
        final int size;

        Split(String cliName, String filePrefix, int size) {
            this.cliName = cliName;
            this.filePrefix = filePrefix;
            this.size = size;
        }

        public String cliName() {
            return cliName;
        }

        public static Split parse(String s) {
            for (Split x : values()) if (x.cliName.equals(s)) return x;
            throw new IllegalArgumentException("unknown split '" + s + "' (expected train or test)");
        }
    }

    private final Split split;
    private final byte[] pixels;
    private final byte[] labels;

    private FashionMnist(Split split, byte[] pixels, byte[] labels) {
        this.split = split;
        this.pixels = pixels;
        this.labels = labels;
    }

    public static Path imagesFile(Path dir, Split split) {
        return dir.resolve(split.filePrefix + "-images-idx3-ubyte.gz");
    }

    public static Path labelsFile(Path dir, Split split) {
        return dir.resolve(split.filePrefix + "-labels-idx1-ubyte.gz");
    }

    /** Whether both files of the split are there (not whether they are valid). */
    public static boolean available(Path dir, Split split) {
        return Files.isRegularFile(imagesFile(dir, split)) && Files.isRegularFile(labelsFile(dir, split));
    }

    /** Reads and checks one split; a missing file says how to install the dataset. */
    public static FashionMnist load(Path dir, Split split) throws IOException {
        Path imgs = imagesFile(dir, split), lbls = labelsFile(dir, split);
        for (Path f : List.of(imgs, lbls)) {
            if (!Files.isRegularFile(f)) {
                throw new SourceException("Fashion-MNIST not found at " + f + ": apt-get install dataset-fashion-mnist");
            }
        }
        byte[] labels = readIdx(lbls, LABELS_MAGIC, 1, null);
        byte[] pixels = readIdx(imgs, IMAGES_MAGIC, 3, labels.length);
        for (int i = 0; i < labels.length; i++) {
            if ((labels[i] & 0xff) >= CLASSES.size()) {
                throw new SourceException(lbls + ": label " + (labels[i] & 0xff) + " of image " + i + " is not a Fashion-MNIST class (0-9)");
            }
        }
        return new FashionMnist(split, pixels, labels);
    }

    /**
     * The payload of a gzip'd IDX file: magic number, big-endian dimension sizes, then the bytes.
     * {@code count} is the number of items the file must hold (the labels' count), or null.
     */
    private static byte[] readIdx(Path file, int magic, int dims, Integer count) throws IOException {
        try (InputStream raw = Files.newInputStream(file);
             DataInputStream in = new DataInputStream(new BufferedInputStream(new GZIPInputStream(raw, 1 << 16), 1 << 16))) {
            int m = in.readInt();
            if (m != magic) {
                throw new SourceException(String.format(Locale.ROOT, "%s: bad magic number 0x%08x (expected 0x%08x: an IDX file of %s)",
                        file, m, magic, dims == 3 ? "images" : "labels"));
            }
            int n = in.readInt();
            if (n <= 0) throw new SourceException(file + ": no items (count " + n + ")");
            if (count != null && n != count) {
                throw new SourceException(file + ": " + n + " images but " + count + " labels");
            }
            long itemBytes = 1;
            for (int d = 1; d < dims; d++) {
                int side = in.readInt();
                if (side != SIDE) throw new SourceException(file + ": images are " + side + " pixels along dimension " + d + ", expected " + SIDE);
                itemBytes *= side;
            }
            byte[] data = new byte[Math.toIntExact(n * itemBytes)];
            try {
                in.readFully(data);
            } catch (EOFException e) {
                throw new SourceException(file + ": truncated (expected " + n + " items of " + itemBytes + " bytes)", e);
            }
            if (in.read() != -1) throw new SourceException(file + ": trailing bytes after " + n + " items");
            return data;
        } catch (ZipException e) {
            throw new SourceException(file + ": not a valid gzip file (" + e.getMessage() + ")", e);
        } catch (EOFException e) {
            throw new SourceException(file + ": truncated header", e);
        }
    }

    public Split split() {
        return split;
    }

    @Override
    public String name() {
        return "fashion-mnist/" + split.cliName;
    }

    @Override
    public int size() {
        return labels.length;
    }

    @Override
    public Integer label(int i) {
        return labels[i] & 0xff;
    }

    /** The 784 gray pixels of image {@code i}, row-major, a fresh copy. */
    public byte[] pixels(int i) {
        int n = SIDE * SIDE;
        return Arrays.copyOfRange(pixels, i * n, (i + 1) * n);
    }

    public String id(int i) {
        return String.format(Locale.ROOT, "fmnist-%s-%06d", split.cliName, i);
    }

    @Override
    public SourceImage read(int i) {
        int label = labels[i] & 0xff;
        return new SourceImage(id(i), ImageEncoding.RAW_U8, SIDE, SIDE, 1, pixels(i), label, null,
                Map.of("dataset", "fashion-mnist", "split", split.cliName, "index", Integer.toString(i), "class", CLASSES.get(label)));
    }
}
