package dinostream.pipeline.decode;

/**
 * Reads the EXIF Orientation tag (0x0112 in IFD0) from JPEG (APP1 "Exif") and PNG (eXIf chunk)
 * files, and applies it as Pillow's {@code ImageOps.exif_transpose} does. The reader never throws
 * and never reads outside the array: anything missing, malformed or out of range means 1 (as
 * stored), since the pixels themselves are still good.
 */
final class ExifOrientation {

    static final int TAG_ORIENTATION = 0x0112;
    private static final int TYPE_SHORT = 3;
    private static final int TYPE_LONG = 4;

    private ExifOrientation() {}

    /** Orientation from the first APP1 Exif segment before the image data, 1 if none. */
    static int fromJpeg(byte[] b) {
        if (b.length < 4 || (b[0] & 0xFF) != 0xFF || (b[1] & 0xFF) != 0xD8) return 1;
        int p = 2;
        while (p + 1 < b.length) {
            if ((b[p] & 0xFF) != 0xFF) return 1;             // not at a marker: malformed
            int marker = b[p + 1] & 0xFF;
            if (marker == 0xFF) {                             // fill byte before a marker
                p++;
                continue;
            }
            p += 2;
            if (marker == 0xD9 || marker == 0xDA) return 1;   // EOI, or SOS: the metadata is over
            if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue; // no length field
            if (p + 2 > b.length) return 1;
            int len = u16(b, p, false);                       // includes its own 2 bytes
            if (len < 2 || p + len > b.length) return 1;
            int data = p + 2;
            int dataLen = len - 2;
            if (marker == 0xE1 && dataLen >= 6 && b[data] == 'E' && b[data + 1] == 'x' && b[data + 2] == 'i'
                    && b[data + 3] == 'f' && b[data + 4] == 0 && b[data + 5] == 0) {
                return fromTiff(b, data + 6, dataLen - 6);
            }
            p += len;
        }
        return 1;
    }

    /** Orientation from the eXIf chunk, 1 if none. */
    static int fromPng(byte[] b) {
        int p = 8;                                            // after the signature
        while (p + 8 <= b.length) {
            long len = u32(b, p, false);
            int type = p + 4;
            int data = p + 8;
            if (len > b.length - data - 4L) return 1;         // chunk (and its CRC) must fit
            if (b[type] == 'e' && b[type + 1] == 'X' && b[type + 2] == 'I' && b[type + 3] == 'f') {
                int off = data;
                int n = (int) len;
                // Some writers keep the JPEG-style "Exif\0\0" prefix; Pillow accepts both.
                if (n >= 6 && b[off] == 'E' && b[off + 1] == 'x' && b[off + 2] == 'i' && b[off + 3] == 'f'
                        && b[off + 4] == 0 && b[off + 5] == 0) {
                    off += 6;
                    n -= 6;
                }
                return fromTiff(b, off, n);
            }
            if (b[type] == 'I' && b[type + 1] == 'E' && b[type + 2] == 'N' && b[type + 3] == 'D') return 1;
            p = data + (int) len + 4;
        }
        return 1;
    }

    /** Orientation from a TIFF structure at {@code b[off..off+len)}: header, then IFD0's entries. */
    static int fromTiff(byte[] b, int off, int len) {
        if (len < 8 || off < 0 || off + len > b.length) return 1;
        boolean little;
        if (b[off] == 'I' && b[off + 1] == 'I') little = true;
        else if (b[off] == 'M' && b[off + 1] == 'M') little = false;
        else return 1;
        if (u16(b, off + 2, little) != 42) return 1;
        long ifd = u32(b, off + 4, little);                   // offsets are from the TIFF header
        if (ifd < 8 || ifd + 2 > len) return 1;
        int count = u16(b, off + (int) ifd, little);
        for (int i = 0; i < count; i++) {
            long e = ifd + 2 + 12L * i;
            if (e + 12 > len) return 1;
            int entry = off + (int) e;
            if (u16(b, entry, little) != TAG_ORIENTATION) continue;
            int type = u16(b, entry + 2, little);
            long n = u32(b, entry + 4, little);
            if (n < 1) return 1;
            // A value of 4 bytes or less sits in the entry itself, left-aligned.
            long v = type == TYPE_SHORT ? u16(b, entry + 8, little)
                    : type == TYPE_LONG ? u32(b, entry + 8, little) : 1;
            return v >= 1 && v <= 8 ? (int) v : 1;
        }
        return 1;
    }

    /**
     * Applies an orientation to HWC pixels, giving the image as it should be displayed: 2 mirror,
     * 3 rotate 180, 4 flip top-bottom, 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90
     * counter-clockwise (Pillow's FLIP_LEFT_RIGHT, ROTATE_180, FLIP_TOP_BOTTOM, TRANSPOSE, ROTATE_270,
     * TRANSVERSE, ROTATE_90).
     */
    static DecodedPixels apply(DecodedPixels in, int orientation) {
        if (orientation < 2 || orientation > 8) return in;
        int w = in.width();
        int h = in.height();
        int c = in.channels();
        boolean swap = orientation >= 5;
        int ow = swap ? h : w;
        int oh = swap ? w : h;
        byte[] src = in.pixels();
        byte[] out = new byte[src.length];
        int o = 0;
        for (int y = 0; y < oh; y++) {
            for (int x = 0; x < ow; x++) {
                int sx;
                int sy;
                switch (orientation) {
                    case 2 -> { sx = w - 1 - x; sy = y; }
                    case 3 -> { sx = w - 1 - x; sy = h - 1 - y; }
                    case 4 -> { sx = x; sy = h - 1 - y; }
                    case 5 -> { sx = y; sy = x; }
                    case 6 -> { sx = y; sy = h - 1 - x; }
                    case 7 -> { sx = w - 1 - y; sy = h - 1 - x; }
                    default -> { sx = w - 1 - y; sy = x; }   // 8
                }
                System.arraycopy(src, (sy * w + sx) * c, out, o, c);
                o += c;
            }
        }
        return new DecodedPixels(ow, oh, c, out);
    }

    private static int u16(byte[] b, int p, boolean little) {
        int b0 = b[p] & 0xFF;
        int b1 = b[p + 1] & 0xFF;
        return little ? b0 | b1 << 8 : b0 << 8 | b1;
    }

    private static long u32(byte[] b, int p, boolean little) {
        long v = 0;
        for (int i = 0; i < 4; i++) {
            long byteVal = b[p + i] & 0xFFL;
            v |= little ? byteVal << (8 * i) : byteVal << (8 * (3 - i));
        }
        return v;
    }
}
