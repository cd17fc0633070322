package dinostream.pipeline.produce;

import dinostream.schemas.ImageEncoding;

import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Simple shapes on a dark background, one class per shape (filled circle, rectangle, stripes in
 * three directions, ring, plus, triangle, checkerboard, X), at random positions, sizes and
 * intensities, with a little pixel noise. RAW_U8, gray 28x28 by default (the Fashion-MNIST
 * geometry, so the same presets train on it), or RGB and another size.
 *
 * <p>Image {@code n} depends only on (seed, n, size, channels): the same run gives the same bytes
 * on every machine, and its class is {@code n % 10}, so any prefix is balanced.
 */
public final class SyntheticSource implements ImageSource {
    public static final List<String> CLASSES = List.of(
            "circle", "rectangle", "h-stripes", "v-stripes", "ring", "plus", "triangle", "d-stripes", "checkerboard", "x-cross");
    /** Size of the stream when no limit is given: as many as Fashion-MNIST's training split. */
    public static final int DEFAULT_COUNT = 60_000;

    private final long seed;
    private final int count;
    private final int size;
    private final int channels;

    public SyntheticSource(long seed, int count, int size, int channels) {
        if (count < 1) throw new IllegalArgumentException("synthetic count must be at least 1, not " + count);
        if (size < 8 || size > 4096) throw new IllegalArgumentException("synthetic image size must be 8 to 4096 pixels, not " + size);
        if (channels != 1 && channels != 3) throw new IllegalArgumentException("synthetic channels must be 1 (gray) or 3 (RGB), not " + channels);
        this.seed = seed;
        this.count = count;
        this.size = size;
        this.channels = channels;
    }

    @Override
    public String name() {
        return "synthetic/" + seed;
    }

    @Override
    public int size() {
        return count;
    }

    @Override
    public Integer label(int i) {
        return i % CLASSES.size();
    }

    public String id(int i) {
        return "synthetic-" + seed + "-" + i;
    }

    @Override
    public SourceImage read(int i) {
        int label = label(i);
        return new SourceImage(id(i), ImageEncoding.RAW_U8, size, size, channels, render(i), label, null,
                Map.of("generator", "synthetic", "seed", Long.toString(seed), "class", CLASSES.get(label)));
    }

    /** The HWC uint8 pixels of image {@code i}. */
    public byte[] render(int i) {
        // One stream per image, from (seed, i) alone, so images can be made in any order.
        SplittableRandom rng = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + i);
        float[] mask = mask(label(i), rng);
        int[] bg = new int[channels], fg = new int[channels];
        if (channels == 1) {
            bg[0] = rng.nextInt(0, 61);
            fg[0] = rng.nextInt(150, 256);
        } else {
            // A random colour with at least one bright channel, on a dark random background.
            int bright = rng.nextInt(3);
            for (int c = 0; c < 3; c++) {
                bg[c] = rng.nextInt(0, 61);
                fg[c] = c == bright ? rng.nextInt(180, 256) : rng.nextInt(40, 256);
            }
        }
        byte[] px = new byte[size * size * channels];
        for (int p = 0; p < size * size; p++) {
            for (int c = 0; c < channels; c++) {
                float v = bg[c] + mask[p] * (fg[c] - bg[c]) + rng.nextInt(-8, 9);
                px[p * channels + c] = (byte) Math.max(0, Math.min(255, Math.round(v)));
            }
        }
        return px;
    }

    /** Where the shape is: 1 inside, 0 outside, sampled at pixel centres. */
    private float[] mask(int cls, SplittableRandom rng) {
        double s = size;
        float[] m = new float[size * size];
        // A random box for the patterns that fill an area (stripes, checkerboard).
        double bw = s * uniform(rng, 0.5, 0.9), bh = s * uniform(rng, 0.5, 0.9);
        double bx = uniform(rng, 0, s - bw), by = uniform(rng, 0, s - bh);
        double period = Math.max(2.0, s * uniform(rng, 0.12, 0.25));
        double phase = uniform(rng, 0, period);
        double cx = s * uniform(rng, 0.3, 0.7), cy = s * uniform(rng, 0.3, 0.7);
        switch (cls) {
            case 0 -> {   // filled circle
                double r = s * uniform(rng, 0.15, 0.3);
                cx = uniform(rng, r, s - r);
                cy = uniform(rng, r, s - r);
                for (int y = 0; y < size; y++) for (int x = 0; x < size; x++) {
                    double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
                    if (dx * dx + dy * dy <= r * r) m[y * size + x] = 1;
                }
            }
            case 1 -> {   // filled rectangle
                double w = s * uniform(rng, 0.3, 0.7), h = s * uniform(rng, 0.3, 0.7);
                double x0 = uniform(rng, 0, s - w), y0 = uniform(rng, 0, s - h);
                fillBox(m, x0, y0, w, h);
            }
            case 2, 3, 7 -> {   // horizontal, vertical, diagonal stripes inside the box
                for (int y = 0; y < size; y++) for (int x = 0; x < size; x++) {
                    double px = x + 0.5, py = y + 0.5;
                    if (!inBox(px, py, bx, by, bw, bh)) continue;
                    double t = cls == 2 ? py : cls == 3 ? px : (px + py) / Math.sqrt(2);
                    if (Math.floorMod((long) Math.floor((t + phase) * 2 / period), 2L) == 0) m[y * size + x] = 1;
                }
            }
            case 4 -> {   // ring
                double r = s * uniform(rng, 0.2, 0.36), t = Math.max(1.5, s * uniform(rng, 0.06, 0.12));
                cx = uniform(rng, r, s - r);
                cy = uniform(rng, r, s - r);
                for (int y = 0; y < size; y++) for (int x = 0; x < size; x++) {
                    double d = Math.hypot(x + 0.5 - cx, y + 0.5 - cy);
                    if (Math.abs(d - r) <= t / 2) m[y * size + x] = 1;
                }
            }
            case 5, 9 -> {   // plus, X
                double arm = s * uniform(rng, 0.2, 0.3), half = Math.max(1.0, s * uniform(rng, 0.05, 0.09));
                for (int y = 0; y < size; y++) for (int x = 0; x < size; x++) {
                    double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
                    boolean in = cls == 5
                            ? (Math.abs(dx) <= half && Math.abs(dy) <= arm) || (Math.abs(dy) <= half && Math.abs(dx) <= arm)
                            : Math.abs(dx) <= arm && Math.abs(dy) <= arm
                              && (Math.abs(dx - dy) <= half * Math.sqrt(2) || Math.abs(dx + dy) <= half * Math.sqrt(2));
                    if (in) m[y * size + x] = 1;
                }
            }
            case 6 -> {   // filled triangle, apex up
                double h = s * uniform(rng, 0.4, 0.7), b = s * uniform(rng, 0.4, 0.7);
                double tx = uniform(rng, b / 2, s - b / 2), ty = uniform(rng, 0, s - h);
                for (int y = 0; y < size; y++) for (int x = 0; x < size; x++) {
                    double py = y + 0.5 - ty;
                    if (py < 0 || py > h) continue;
                    if (Math.abs(x + 0.5 - tx) <= (b / 2) * (py / h)) m[y * size + x] = 1;
                }
            }
            case 8 -> {   // checkerboard inside the box
                double cell = Math.max(2.0, s * uniform(rng, 0.1, 0.2));
                for (int y = 0; y < size; y++) for (int x = 0; x < size; x++) {
                    double px = x + 0.5, py = y + 0.5;
                    if (!inBox(px, py, bx, by, bw, bh)) continue;
                    long k = (long) Math.floor((px - bx) / cell) + (long) Math.floor((py - by) / cell);
                    if ((k & 1) == 0) m[y * size + x] = 1;
                }
            }
            default -> throw new IllegalStateException("no class " + cls);
        }
        return m;
    }

    private void fillBox(float[] m, double x0, double y0, double w, double h) {
        for (int y = 0; y < size; y++) for (int x = 0; x < size; x++) {
            if (inBox(x + 0.5, y + 0.5, x0, y0, w, h)) m[y * size + x] = 1;
        }
    }

    private static boolean inBox(double px, double py, double x0, double y0, double w, double h) {
        return px >= x0 && px < x0 + w && py >= y0 && py < y0 + h;
    }

    private static double uniform(SplittableRandom rng, double lo, double hi) {
        return hi <= lo ? lo : rng.nextDouble(lo, hi);
    }
}
