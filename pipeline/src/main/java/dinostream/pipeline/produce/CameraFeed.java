package dinostream.pipeline.produce;

import dinostream.pipeline.augment.MultiCrop;
import dinostream.schemas.ImageEncoding;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.TreeMap;

/**
 * A labelled source sent as a camera would see it: successive frames are near-duplicates, a scene
 * (here a class) stays for a long run, then others come, then it comes back. Each picked image of
 * the base source becomes {@code framesPerImage} consecutive frames, each slightly jittered (a
 * brightness gain of 0.9 to 1.1 and a little sensor noise, as a fixed camera sends); each class's images are cut into runs of {@code runLength} images, and the runs of all
 * classes go out in a seeded random order.
 *
 * <p>This is itself an {@link ImageSource}: index {@code i} is the {@code i}-th frame of the feed,
 * so the order to send is {@link #order()}, 0 .. size-1. Frame {@code k} of base image {@code id}
 * has the id {@code id-fk}, the base's label and attributes plus {@code frame}, and depends only on
 * (seed, id, k). Only raw pixels (RAW_U8) can be jittered without a codec: a folder of JPEG/PNG
 * files is refused.
 *
 * <p>No motion: on 28 x 28 images a shift of 2 pixels is 7 % of the width, and measured on
 * Fashion-MNIST it put {@link dinostream.pipeline.dedup.FrameHash} distances of successive frames of
 * one image (median 22 bits) as far apart as two images of a class (25): a moving camera's frames are
 * new views, not the near-duplicates this feed is for. Without it: median 0, 99th percentile 4 bits,
 * against 3 (1st percentile), 6 (5th) and 17 (median) between successive images of a run.
 */
public final class CameraFeed implements ImageSource {
    public static final int DEFAULT_FRAMES_PER_IMAGE = 4;
    public static final int DEFAULT_RUN_LENGTH = 256;
    static final double MIN_GAIN = 0.9, MAX_GAIN = 1.1;
    /** Largest pixel noise, gray levels either way: sensor noise, small enough to keep frames near-duplicates. */
    static final int NOISE = 2;

    private final ImageSource base;
    private final long seed;
    private final int framesPerImage;
    private final int runLength;
    private final int[] bases;   // base-source index of each image of the feed, in feed order
    private final int frames;
    // The producer reads the frames of an image one after the other: read the base image once for
    // them (a synthetic image is rendered on each read). Immutable, so a racing reader is harmless.
    private volatile Cached last;

    private record Cached(int index, SourceImage image) {}

    private CameraFeed(ImageSource base, long seed, int framesPerImage, int runLength, int[] bases, int frames) {
        this.base = base;
        this.seed = seed;
        this.framesPerImage = framesPerImage;
        this.runLength = runLength;
        this.bases = bases;
        this.frames = frames;
    }

    /**
     * The feed of {@code base}'s images. {@code limit} (negative: none) counts frames: the first
     * ceil(limit / framesPerImage) images of the seeded shuffle {@link Order#IID} would send are
     * picked (so a limited feed still has every class), and the feed is cut to {@code limit} frames
     * (the last image has fewer frames when limit is not a multiple of framesPerImage).
     *
     * @throws IllegalArgumentException when {@code base} is a folder of JPEG/PNG files, or for
     *                                  framesPerImage or runLength below 1
     */
    public static CameraFeed of(ImageSource base, long seed, long limit, int framesPerImage, int runLength) {
        if (framesPerImage < 1) throw new IllegalArgumentException("frames per image must be at least 1, not " + framesPerImage);
        if (runLength < 1) throw new IllegalArgumentException("run length must be at least 1 image, not " + runLength);
        if (base instanceof FolderSource) throw notRaw(base);
        int n = base.size();
        int images = limit < 0 ? n : (int) Math.min(n, limit / framesPerImage + (limit % framesPerImage == 0 ? 0 : 1));
        int[] picked = Arrays.copyOf(Order.permutation(n, seed), images);

        // Classes in label order, unlabelled last, each keeping the shuffled order of its images:
        // a fixed starting point for the seeded shuffle of the runs.
        Map<Integer, List<Integer>> byClass = new TreeMap<>(Comparator.nullsLast(Comparator.naturalOrder()));
        for (int i : picked) byClass.computeIfAbsent(base.label(i), k -> new ArrayList<>()).add(i);
        List<List<Integer>> runs = new ArrayList<>();
        for (List<Integer> cls : byClass.values()) {
            for (int from = 0; from < cls.size(); from += runLength) runs.add(cls.subList(from, Math.min(cls.size(), from + runLength)));
        }
        // Another stream than the image shuffle's, so that which run comes first is not tied to it.
        int[] runOrder = Order.permutation(runs.size(), mix(seed, 0x52554E53L));
        int[] bases = new int[images];
        int at = 0;
        for (int r : runOrder) for (int i : runs.get(r)) bases[at++] = i;

        long all = (long) images * framesPerImage;
        int frames = (int) Math.min(Integer.MAX_VALUE, limit < 0 ? all : Math.min(limit, all));
        return new CameraFeed(base, seed, framesPerImage, runLength, bases, frames);
    }

    private static IllegalArgumentException notRaw(ImageSource base) {
        return new IllegalArgumentException("the camera order needs raw-pixel sources (fmnist, synthetic): the images of "
                + base.name() + " are JPEG/PNG files, which it cannot jitter into frames");
    }

    /** The order to send: every frame, in feed order. */
    public int[] order() {
        int[] o = new int[frames];
        for (int i = 0; i < frames; i++) o[i] = i;
        return o;
    }

    public ImageSource base() {
        return base;
    }

    public int framesPerImage() {
        return framesPerImage;
    }

    public int runLength() {
        return runLength;
    }

    /** The base-source index of frame {@code i}'s image. */
    public int baseIndex(int i) {
        return bases[checkIndex(i) / framesPerImage];
    }

    /** Which frame of its image frame {@code i} is, 0 .. framesPerImage-1. */
    public int frame(int i) {
        return checkIndex(i) % framesPerImage;
    }

    private int checkIndex(int i) {
        return Objects.checkIndex(i, frames);
    }

    /** The base source's name: the frames are of its images. */
    @Override
    public String name() {
        return base.name();
    }

    @Override
    public int size() {
        return frames;
    }

    @Override
    public Integer label(int i) {
        return base.label(baseIndex(i));
    }

    /** Frame {@code i}: its base image, jittered; null when the base source skips that image. */
    @Override
    public SourceImage read(int i) throws IOException {
        int b = baseIndex(i), k = frame(i);
        Cached c = last;
        SourceImage img;
        if (c != null && c.index == b) {
            img = c.image;
        } else {
            img = base.read(b);
            last = new Cached(b, img);
        }
        if (img == null) return null;
        if (img.encoding() != ImageEncoding.RAW_U8) throw notRaw(base);
        SplittableRandom rng = new SplittableRandom(mix(mix(seed, img.id().hashCode()), k));
        byte[] px = jitter(img.bytes(), rng, NOISE);
        Map<String, String> attrs = new HashMap<>(img.attributes());
        attrs.put("frame", Integer.toString(k));
        return new SourceImage(img.id() + "-f" + k, ImageEncoding.RAW_U8, img.width(), img.height(), img.channels(), px,
                img.label(), img.eventTime(), attrs);
    }

    /**
     * A near-duplicate of uint8 pixels, as the next frame of a fixed camera: scaled by a gain in
     * [MIN_GAIN, MAX_GAIN] (light changes), plus noise of up to {@code noise} levels.
     */
    static byte[] jitter(byte[] px, SplittableRandom rng, int noise) {
        double gain = rng.nextDouble(MIN_GAIN, MAX_GAIN);
        byte[] out = new byte[px.length];
        for (int i = 0; i < px.length; i++) {
            double v = (px[i] & 0xff) * gain;
            if (noise > 0) v += rng.nextInt(-noise, noise + 1);
            out[i] = (byte) Math.max(0, Math.min(255, Math.round(v)));
        }
        return out;
    }

    /** A seed from a seed and a value, mixed so that nearby pairs give unrelated streams. */
    static long mix(long seed, long value) {
        return MultiCrop.mix64(seed * 0x9E3779B97F4A7C15L + value);
    }
}
