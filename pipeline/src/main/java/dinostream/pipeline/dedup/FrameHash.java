package dinostream.pipeline.dedup;

import dinostream.pipeline.decode.DecodedPixels;

/**
 * A 64-bit difference hash (dHash) of an image, for telling near-duplicate frames apart from new
 * images: the image in gray, box-averaged down to 9 x 8 cells, and for each of the 8 x 8 pairs of
 * horizontal neighbours one bit, set when the right cell is brighter than the left by more than
 * {@link #MARGIN} gray levels. The bits follow the image's gradients, not its absolute values, so a
 * brightness change flips few of them; the margin keeps sensor noise in flat areas (a black
 * background) from flipping them at random (measured on Fashion-MNIST frames with noise of 2 levels:
 * median 7 bits between frames of one image without it, 0 with it). Compare two hashes with
 * {@link #distance}: the number of differing bits, 0 .. 64.
 *
 * <p>Bit {@code row * 8 + col} is the comparison of cells {@code col} and {@code col + 1} of row
 * {@code row}, rows from the top.
 */
public final class FrameHash {
    private FrameHash() {}

    static final int COLS = 9, ROWS = 8;
    /** Gray levels (of 255) by which a cell must be brighter than its left neighbour to set a bit. */
    static final int MARGIN = 2;

    /**
     * The hash of HWC-interleaved uint8 pixels, 1 (gray) or 3 (RGB) channels, any size from 1 x 1.
     *
     * @throws IllegalArgumentException when the sizes do not match the pixels
     */
    public static long of(int width, int height, int channels, byte[] hwcPixels) {
        if (width < 1 || height < 1) throw new IllegalArgumentException("image size must be at least 1x1, not " + width + "x" + height);
        if (channels != 1 && channels != 3) throw new IllegalArgumentException("channels must be 1 or 3, not " + channels);
        if ((long) width * height * channels != hwcPixels.length) {
            throw new IllegalArgumentException(width + "x" + height + "x" + channels + " needs "
                    + (long) width * height * channels + " bytes, got " + hwcPixels.length);
        }
        // Cell sums of luma (x1000 for RGB, so that the weights stay integers) and pixel counts:
        // the comparison below cross-multiplies them, exact where averages would round.
        long[] sum = new long[ROWS * COLS];
        long[] count = new long[ROWS * COLS];
        for (int r = 0; r < ROWS; r++) {
            int y0 = start(r, height, ROWS), y1 = end(r, height, ROWS);
            for (int c = 0; c < COLS; c++) {
                int x0 = start(c, width, COLS), x1 = end(c, width, COLS);
                long s = 0;
                for (int y = y0; y < y1; y++) {
                    int row = y * width;
                    for (int x = x0; x < x1; x++) s += luma(hwcPixels, (row + x) * channels, channels);
                }
                sum[r * COLS + c] = s;
                count[r * COLS + c] = (long) (y1 - y0) * (x1 - x0);
            }
        }
        long margin = channels == 1 ? MARGIN : MARGIN * 1000L;
        long h = 0;
        for (int r = 0; r < ROWS; r++) {
            for (int c = 0; c < COLS - 1; c++) {
                int left = r * COLS + c, right = left + 1;
                // right / n_r - left / n_l > margin, multiplied out by n_l * n_r.
                if (sum[right] * count[left] - sum[left] * count[right] > margin * count[left] * count[right]) h |= 1L << (r * 8 + c);
            }
        }
        return h;
    }

    /** The hash of decoded pixels. */
    public static long of(DecodedPixels p) {
        return of(p.width(), p.height(), p.channels(), p.pixels());
    }

    /** Hamming distance: how many of the 64 bits differ; 0 for the same image, about 32 for unrelated ones. */
    public static int distance(long a, long b) {
        return Long.bitCount(a ^ b);
    }

    /** First pixel of cell {@code i} of {@code cells} along a side of {@code n} pixels. */
    private static int start(int i, int n, int cells) {
        return (int) ((long) i * n / cells);
    }

    /**
     * One past the last pixel of cell {@code i}; at least one pixel, so that a side shorter than the
     * cells samples the pixel under the cell instead of averaging nothing.
     */
    private static int end(int i, int n, int cells) {
        return Math.max(start(i, n, cells) + 1, (int) ((long) (i + 1) * n / cells));
    }

    /** Gray of the pixel at {@code at}: the value itself, or ITU-R BT.601 luma x1000 for RGB. */
    private static int luma(byte[] px, int at, int channels) {
        if (channels == 1) return px[at] & 0xff;
        return 299 * (px[at] & 0xff) + 587 * (px[at + 1] & 0xff) + 114 * (px[at + 2] & 0xff);
    }
}
