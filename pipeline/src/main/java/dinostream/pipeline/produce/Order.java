package dinostream.pipeline.produce;

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;

/**
 * The order in which a source's images go out. IID and CLASS_SORTED only reorder the source's
 * indices ({@link #indices}); CAMERA also changes the images (each becomes several jittered frames,
 * a {@link CameraFeed}). {@link #feed} gives the images and the order to send for any of the three.
 */
public enum Order {
    /** Shuffled by a permutation seeded with {@code --seed}: a stationary stream. */
    IID("iid"),
    /** All of class 0, then class 1, ...; unlabeled images last: a non-stationary stream. */
    CLASS_SORTED("class-sorted"),
    /**
     * Like a camera: each image as a few near-duplicate frames, a class for a long run of images,
     * then others, then back again ({@link CameraFeed}): correlated and non-stationary.
     */
    CAMERA("camera");

    /** What to send: the images and the indices into them, in order. */
    public record Feed(ImageSource source, int[] order) {}

    private final String cliName;

    Order(String cliName) {
        this.cliName = cliName;
    }

    public String cliName() {
        return cliName;
    }

    public static Order parse(String s) {
        for (Order o : values()) if (o.cliName.equals(s)) return o;
        throw new IllegalArgumentException("unknown order '" + s + "' (expected iid, class-sorted or camera)");
    }

    /**
     * The indices to send, in order. {@code limit} (negative: none) first picks that many images by the
     * seeded shuffle and then orders them, so a limited class-sorted stream still has every class
     * instead of only the first one. Within a class the shuffled order is kept.
     */
    public int[] indices(ImageSource source, long seed, long limit) {
        if (this == CAMERA) throw new UnsupportedOperationException("the camera order makes frames of the images: use Order.feed, not indices");
        int n = source.size();
        int[] perm = permutation(n, seed);
        if (limit >= 0 && limit < n) perm = Arrays.copyOf(perm, (int) limit);
        if (this == IID) return perm;
        Integer[] boxed = Arrays.stream(perm).boxed().toArray(Integer[]::new);
        // Arrays.sort on objects is stable, which keeps the shuffle within each class.
        Arrays.sort(boxed, Comparator.comparing(source::label, Comparator.nullsLast(Comparator.naturalOrder())));
        return Arrays.stream(boxed).mapToInt(Integer::intValue).toArray();
    }

    /**
     * The images to send and their order. {@code limit} (negative: none) counts what is sent: images,
     * or frames for CAMERA. {@code framesPerImage} and {@code runLength} apply to CAMERA only (see
     * {@link CameraFeed}); the other orders send {@code base} itself, as {@link #indices} orders it.
     *
     * @throws IllegalArgumentException for CAMERA when {@code base} has no raw pixels to jitter
     */
    public Feed feed(ImageSource base, long seed, long limit, int framesPerImage, int runLength) {
        if (this != CAMERA) return new Feed(base, indices(base, seed, limit));
        CameraFeed c = CameraFeed.of(base, seed, limit, framesPerImage, runLength);
        return new Feed(c, c.order());
    }

    /** A Fisher–Yates shuffle of 0 .. n-1, the same for the same seed on any machine. */
    static int[] permutation(int n, long seed) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        SplittableRandom rng = new SplittableRandom(seed);
        for (int i = n - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }
}
