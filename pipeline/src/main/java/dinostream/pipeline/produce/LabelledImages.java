package dinostream.pipeline.produce;

import dinostream.model.eval.NumpyPermutation;
import dinostream.pipeline.decode.DecodeException;
import dinostream.pipeline.decode.DecodedPixels;
import dinostream.pipeline.decode.ImageDecoder;
import dinostream.pipeline.decode.Limits;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;

/**
 * A labelled image set in a train and a test split, for k-NN evaluation
 * ({@code model/docs/algorithm.md §6}): Fashion-MNIST, or a folder with {@code train/<class>/} and
 * {@code test/<class>/} (ImageFolder style, as {@code eval_knn.py} reads its data). A split may be
 * cut to the first N of numpy's {@code RandomState(seed).permutation}, so that a subset is the
 * same as the reference's. Test labels are numbered as the train split's classes.
 *
 * @param pixelChannels channels of the raw-pixel baseline: 1 for Fashion-MNIST; 3 for folders (a
 *                      gray image replicated to RGB has the same cosine similarities)
 */
public record LabelledImages(Split train, Split test, int classes, int pixelChannels) {
    private static final ImageDecoder DECODER = new ImageDecoder();

    /**
     * One split as scored: the source, the chosen indices into it and their labels.
     *
     * @param index  {@code index[j]} is the source index of the split's image {@code j}
     * @param labels the class of image {@code j}, in the train split's numbering
     */
    public record Split(String name, ImageSource source, int[] index, int[] labels) {
        public int size() {
            return index.length;
        }

        /** Image {@code j}'s name in the source: its path under the split's folder, or its index. */
        public String imageName(int j) {
            return source instanceof FolderSource f ? f.path(index[j]) : Integer.toString(index[j]);
        }

        /** Image {@code j} as 8-bit pixels with {@code channels} channels (1 or 3). */
        public DecodedPixels decode(int j, int channels) throws IOException {
            int i = index[j];
            SourceImage img = source.read(i);
            if (img == null) throw new SourceException(where(source, name, i) + " is neither JPEG nor PNG");
            try {
                return DECODER.decode(img.toRecord(source.name(), Instant.EPOCH, null), channels, Limits.DEFAULT);
            } catch (DecodeException e) {
                throw new SourceException(where(source, name, i) + ": " + e.getMessage(), e);
            }
        }
    }

    /** Fashion-MNIST's train and test sets from {@code dir}, the first {@code trainLimit} / {@code testLimit} (null: all). */
    public static LabelledImages fashionMnist(Path dir, Integer trainLimit, Integer testLimit, long seed) throws IOException {
        FashionMnist train = FashionMnist.load(dir, FashionMnist.Split.TRAIN);
        FashionMnist test = FashionMnist.load(dir, FashionMnist.Split.TEST);
        return new LabelledImages(split("train", train, trainLimit, seed, null, null),
                split("test", test, testLimit, seed, null, null), FashionMnist.CLASSES.size(), 1);
    }

    /** {@code dir/train/<class>/...} and {@code dir/test/<class>/...}; test classes are matched to train's by name. */
    public static LabelledImages folder(Path dir, Integer trainLimit, Integer testLimit, long seed) throws IOException {
        FolderSource train = open(dir, "train"), test = open(dir, "test");
        List<String> classes = train.classes();
        if (classes.isEmpty()) throw new SourceException(train.root() + " has no class folders (expected train/<class>/ with images)");
        return new LabelledImages(split("train", train, trainLimit, seed, classes, classes),
                split("test", test, testLimit, seed, test.classes(), classes), classes.size(), 3);
    }

    private static FolderSource open(Path dir, String split) throws IOException {
        Path sub = dir.resolve(split);
        if (!Files.isDirectory(sub)) {
            throw new SourceException("dataset folder " + dir + " has no " + split + "/ subfolder (expected train/<class>/ and test/<class>/ with images)");
        }
        return FolderSource.open(sub);
    }

    /**
     * The chosen indices of a split and their labels. For folders, {@code own} are the split's
     * class names (its labels index them) and {@code trainClasses} the numbering used for scoring.
     */
    private static Split split(String name, ImageSource src, Integer limit, long seed, List<String> own, List<String> trainClasses)
            throws SourceException {
        int[] index = NumpyPermutation.subset(src.size(), limit == null ? src.size() : limit, seed);
        int[] labels = new int[index.length];
        for (int j = 0; j < index.length; j++) {
            int i = index[j];
            Integer label = src.label(i);
            if (label == null) throw new SourceException(where(src, name, i) + " is not in a class folder (" + name + "/ must hold one folder per class)");
            if (own != null) {
                String cls = own.get(label);
                label = trainClasses.indexOf(cls);
                if (label < 0) throw new SourceException("test class '" + cls + "' has no folder under train/ (train classes: " + String.join(", ", trainClasses) + ")");
            }
            labels[j] = label;
        }
        return new Split(name, src, index, labels);
    }

    /** Image {@code i} of a source, for messages: its file, or "train image 12". */
    private static String where(ImageSource src, String split, int i) {
        return src instanceof FolderSource f ? f.root().resolve(f.path(i)).toString() : split + " image " + i;
    }
}
