package dinostream.pipeline.decode;

/**
 * An image as 8-bit pixels: {@code height x width x channels} bytes, row-major, channels
 * interleaved (HWC), channels 1 (gray) or 3 (RGB).
 */
public record DecodedPixels(int width, int height, int channels, byte[] pixels) {

    public DecodedPixels {
        if ((long) width * height * channels != pixels.length) {
            throw new IllegalArgumentException(width + "x" + height + "x" + channels + " needs "
                    + (long) width * height * channels + " bytes, got " + pixels.length);
        }
    }

    /** Sample of channel {@code c} at column {@code x}, row {@code y}, 0..255. */
    public int at(int x, int y, int c) {
        return pixels[(y * width + x) * channels + c] & 0xFF;
    }
}
