package dinostream.pipeline.decode;

import java.io.Serializable;

/**
 * What the decoder accepts, checked before any pixel is decoded: the encoded size first, then the
 * width and height from the image header. A small file can declare a huge image (a decompression
 * bomb); these checks reject it without allocating its pixels.
 *
 * @param maxBytes  largest encoded image (the record's {@code bytes}) accepted
 * @param maxPixels largest width x height accepted
 * @param maxSide   largest width or height accepted
 */
public record Limits(long maxBytes, long maxPixels, int maxSide) implements Serializable {

    /** 32 MiB, 50 megapixels, 16384 pixels a side. */
    public static final Limits DEFAULT = new Limits(32L << 20, 50_000_000L, 16_384);

    public Limits {
        if (maxBytes <= 0 || maxPixels <= 0 || maxSide <= 0) {
            throw new IllegalArgumentException("limits must be positive: " + maxBytes + ", " + maxPixels + ", " + maxSide);
        }
    }
}
