package dinostream.pipeline.decode;

import static dinostream.pipeline.decode.DecodeException.Reason.CORRUPT_IMAGE;
import static dinostream.pipeline.decode.DecodeException.Reason.ENCODING_MISMATCH;
import static dinostream.pipeline.decode.DecodeException.Reason.MISSING_RAW_DIMENSIONS;
import static dinostream.pipeline.decode.DecodeException.Reason.RAW_SIZE_MISMATCH;
import static dinostream.pipeline.decode.DecodeException.Reason.SIDE_TOO_LONG;
import static dinostream.pipeline.decode.DecodeException.Reason.TOO_MANY_BYTES;
import static dinostream.pipeline.decode.DecodeException.Reason.TOO_MANY_PIXELS;
import static dinostream.pipeline.decode.DecodeException.Reason.TRUNCATED_IMAGE;
import static dinostream.pipeline.decode.DecodeException.Reason.UNSUPPORTED_CHANNELS;
import static dinostream.pipeline.decode.DecodeException.Reason.UNSUPPORTED_FORMAT;
import static dinostream.pipeline.decode.DecodeException.Reason.ZERO_SIZE;

import dinostream.schemas.ImageEncoding;
import dinostream.schemas.ImageRecord;
import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import javax.imageio.stream.MemoryCacheImageInputStream;

/**
 * Turns an {@link ImageRecord} into 8-bit pixels with the channel count the model wants, or says
 * precisely why not. Pure Java (javax.imageio), no Flink; stateless and thread-safe.
 *
 * <p>Conversions follow Pillow's {@code Image.convert}, which the Python reference uses: gray to RGB
 * replicates the level; RGB to gray is ITU-R 601-2 luma in Pillow's fixed point,
 * {@code (R*19595 + G*38470 + B*7471 + 0x8000) >> 16} (the documented {@code R*299/1000 + G*587/1000
 * + B*114/1000}, rounded); alpha is dropped, not composited; palettes are expanded (their
 * transparency dropped too). 16-bit samples keep their high byte ({@code v >> 8}), as Pillow does
 * for 16-bit RGB(A) PNGs; Pillow's {@code I;16 -> L} for 16-bit gray clips at 255 instead, which
 * would turn most 16-bit gray images white, so the high byte is used for gray too. 1-, 2- and 4-bit
 * samples are scaled to 0..255 ({@code v * 255 / (2^bits - 1)}, as Pillow's unpackers).
 *
 * <p>Pixels are read from the raster, never through {@code BufferedImage.getRGB}, so no colour
 * management applies (embedded ICC profiles and gAMA are ignored, as Pillow ignores them).
 */
public final class ImageDecoder {

    private static final byte[] PNG_SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

    /**
     * Decodes and validates one image.
     *
     * @param wantChannels 1 (gray) or 3 (RGB)
     * @return the pixels, upright (EXIF orientation applied); for RAW_U8 with the wanted channel
     *     count the array may be the record's own
     * @throws DecodeException with the reason the image is refused
     */
    public DecodedPixels decode(ImageRecord r, int wantChannels, Limits limits) throws DecodeException {
        if (wantChannels != 1 && wantChannels != 3) {
            throw new IllegalArgumentException("wantChannels must be 1 or 3, not " + wantChannels);
        }
        byte[] data = bytes(r.getBytes());
        if (data.length > limits.maxBytes()) {
            throw new DecodeException(TOO_MANY_BYTES, r.getEncoding() + " of " + data.length
                    + " bytes exceeds the limit of " + limits.maxBytes() + " bytes");
        }
        if (data.length == 0) throw new DecodeException(ZERO_SIZE, r.getEncoding() + " with no bytes");
        ImageEncoding enc = r.getEncoding();
        return switch (enc) {
            case RAW_U8 -> raw(r, data, wantChannels, limits);
            case JPEG, PNG -> coded(enc, data, wantChannels, limits);
        };
    }

    private static DecodedPixels raw(ImageRecord r, byte[] data, int want, Limits limits) throws DecodeException {
        Integer w = r.getWidth();
        Integer h = r.getHeight();
        Integer c = r.getChannels();
        if (w == null || h == null || c == null) {
            List<String> missing = new ArrayList<>();
            if (w == null) missing.add("width");
            if (h == null) missing.add("height");
            if (c == null) missing.add("channels");
            throw new DecodeException(MISSING_RAW_DIMENSIONS, "RAW_U8 needs width, height and channels; missing "
                    + String.join(", ", missing));
        }
        checkSize("RAW_U8", w, h, limits);
        if (c != 1 && c != 3) {
            throw new DecodeException(UNSUPPORTED_CHANNELS, "RAW_U8 with " + c + " channels; 1 (gray) or 3 (RGB) supported");
        }
        long expected = (long) w * h * c;
        if (data.length != expected) {
            throw new DecodeException(RAW_SIZE_MISMATCH, "RAW_U8 " + w + "x" + h + "x" + c + " needs "
                    + expected + " bytes, got " + data.length);
        }
        if (c == want) return new DecodedPixels(w, h, c, data);
        int n = w * h;
        byte[] out = new byte[n * want];
        if (want == 3) {
            for (int i = 0; i < n; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = data[i];
        } else {
            for (int i = 0; i < n; i++) {
                out[i] = (byte) luma(data[3 * i] & 0xFF, data[3 * i + 1] & 0xFF, data[3 * i + 2] & 0xFF);
            }
        }
        return new DecodedPixels(w, h, want, out);
    }

    private static DecodedPixels coded(ImageEncoding enc, byte[] data, int want, Limits limits) throws DecodeException {
        checkSignature(enc, data);
        if (enc == ImageEncoding.PNG) checkPngChunks(data);
        String format = enc == ImageEncoding.JPEG ? "jpeg" : "png";
        Iterator<ImageReader> readers = ImageIO.getImageReadersByFormatName(format);
        if (!readers.hasNext()) throw new DecodeException(UNSUPPORTED_FORMAT, "no " + enc + " reader in this JVM");
        ImageReader reader = readers.next();
        List<String> warnings = new ArrayList<>();
        BufferedImage img;
        int w;
        int h;
        // In-memory stream: ImageIO's default cache would write every image to a temporary file.
        try (ImageInputStream in = new MemoryCacheImageInputStream(new ByteArrayInputStream(data))) {
            // ignoreMetadata: no ICC/text chunk parsing (nor inflating of compressed ones); not needed.
            reader.setInput(in, true, true);
            reader.addIIOReadWarningListener((source, message) -> warnings.add(message));
            try {
                // Only the header is read here: the limits are checked before any pixel is allocated.
                w = reader.getWidth(0);
                h = reader.getHeight(0);
            } catch (IOException | RuntimeException e) {
                throw failure(enc, data, "header", e);
            }
            checkSize(enc.toString(), w, h, limits);
            try {
                img = reader.read(0);
            } catch (IOException | RuntimeException e) {
                throw failure(enc, data, "image data", e);
            }
        } catch (IOException e) {
            throw new DecodeException(CORRUPT_IMAGE, "cannot read " + enc + ": " + e.getMessage(), e);
        } finally {
            reader.dispose();
        }
        for (String warning : warnings) {
            // libjpeg fills a truncated scan with gray and only warns; Pillow refuses such files.
            String lower = warning.toLowerCase(Locale.ROOT);
            if (lower.contains("premature end") || lower.contains("truncated")) {
                throw new DecodeException(TRUNCATED_IMAGE, enc + " data ends early (" + warning + ")");
            }
        }
        if (img.getWidth() != w || img.getHeight() != h) {
            throw new DecodeException(CORRUPT_IMAGE, enc + " header says " + w + "x" + h + " but the image decoded as "
                    + img.getWidth() + "x" + img.getHeight());
        }
        DecodedPixels px = toChannels(enc, img, want);
        int orientation = enc == ImageEncoding.JPEG ? ExifOrientation.fromJpeg(data) : ExifOrientation.fromPng(data);
        return ExifOrientation.apply(px, orientation);
    }

    private static void checkSignature(ImageEncoding enc, byte[] d) throws DecodeException {
        boolean ok = enc == ImageEncoding.JPEG
                ? d.length >= 3 && (d[0] & 0xFF) == 0xFF && (d[1] & 0xFF) == 0xD8 && (d[2] & 0xFF) == 0xFF
                : startsWith(d, PNG_SIGNATURE);
        if (ok) return;
        String found = startsWith(d, PNG_SIGNATURE) ? " (it is a PNG)"
                : d.length >= 2 && (d[0] & 0xFF) == 0xFF && (d[1] & 0xFF) == 0xD8 ? " (it is a JPEG)" : "";
        StringBuilder head = new StringBuilder();
        for (int i = 0; i < Math.min(8, d.length); i++) head.append(String.format(" %02X", d[i] & 0xFF));
        throw new DecodeException(ENCODING_MISMATCH, "declared " + enc + " but the bytes start with" + head
                + ", not the " + enc + (enc == ImageEncoding.JPEG ? " marker FF D8 FF" : " signature") + found);
    }

    private static boolean startsWith(byte[] d, byte[] prefix) {
        if (d.length < prefix.length) return false;
        for (int i = 0; i < prefix.length; i++) if (d[i] != prefix[i]) return false;
        return true;
    }

    private static void checkSize(String what, int w, int h, Limits limits) throws DecodeException {
        if (w <= 0 || h <= 0) throw new DecodeException(ZERO_SIZE, what + " of size " + w + "x" + h);
        if (w > limits.maxSide() || h > limits.maxSide()) {
            throw new DecodeException(SIDE_TOO_LONG, what + " of " + w + "x" + h + " has a side over the limit of "
                    + limits.maxSide());
        }
        long pixels = (long) w * h;
        if (pixels > limits.maxPixels()) {
            throw new DecodeException(TOO_MANY_PIXELS, what + " of " + w + "x" + h + " = " + pixels
                    + " pixels exceeds the limit of " + limits.maxPixels());
        }
    }

    /**
     * A PNG's chunk structure, before ImageIO (which skips CRCs and reports a zero width as a corrupt
     * header): a chunk that runs past the end is a truncated file, a CRC that does not match is a
     * corrupt one, an IHDR with a zero side is an empty image. Costs one CRC-32 pass over the bytes.
     */
    static void checkPngChunks(byte[] d) throws DecodeException {
        int at = PNG_SIGNATURE.length;
        boolean first = true;
        java.util.zip.CRC32 crc = new java.util.zip.CRC32();
        while (at < d.length) {
            if (at + 8 > d.length) throw new DecodeException(TRUNCATED_IMAGE, "PNG data ends early inside a chunk header at byte " + at);
            long len = ((d[at] & 0xFFL) << 24) | ((d[at + 1] & 0xFF) << 16) | ((d[at + 2] & 0xFF) << 8) | (d[at + 3] & 0xFF);
            String type = new String(d, at + 4, 4, java.nio.charset.StandardCharsets.ISO_8859_1);
            if (at + 12 + len > d.length) {
                throw new DecodeException(TRUNCATED_IMAGE, "PNG data ends early: chunk " + printable(type) + " of " + len + " bytes at byte " + at);
            }
            if (first) {
                if (!type.equals("IHDR") || len < 8) throw new DecodeException(CORRUPT_IMAGE, "corrupt PNG header: the first chunk is not IHDR");
                int w = readInt(d, at + 8), h = readInt(d, at + 12);
                if (w == 0 || h == 0) throw new DecodeException(ZERO_SIZE, "PNG of size " + Integer.toUnsignedString(w) + "x" + Integer.toUnsignedString(h));
                first = false;
            }
            crc.reset();
            crc.update(d, at + 4, 4 + (int) len);
            long stored = readInt(d, at + 8 + (int) len) & 0xFFFFFFFFL;
            if (crc.getValue() != stored) {
                throw new DecodeException(CORRUPT_IMAGE, "corrupt PNG: CRC mismatch in chunk " + printable(type) + " at byte " + at);
            }
            if (type.equals("IEND")) return;
            at += 12 + (int) len;
        }
        throw new DecodeException(TRUNCATED_IMAGE, "PNG data ends early: no IEND chunk");
    }

    /**
     * Whether a JPEG that failed to decode is cut short rather than corrupt: its marker segments are
     * well formed as far as the bytes go, but a segment runs past the end, or the scan data has no
     * end-of-image marker (FF D9). A marker that is not one (no FF where a segment must start) is corruption.
     */
    static boolean jpegEndsEarly(byte[] d) {
        int at = 2;   // after SOI
        while (at + 1 < d.length) {
            if ((d[at] & 0xFF) != 0xFF) return false;
            int marker = d[at + 1] & 0xFF;
            if (marker == 0xFF) { at++; continue; }   // fill byte
            if (marker == 0xD9) return false;          // EOI before any scan: complete, so corrupt
            if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) { at += 2; continue; }   // no length
            if (marker < 0xC0) return false;           // not a JPEG marker
            if (at + 4 > d.length) return true;
            int len = ((d[at + 2] & 0xFF) << 8) | (d[at + 3] & 0xFF);
            if (len < 2) return false;
            if (at + 2 + len > d.length) return true;
            if (marker == 0xDA) {                      // SOS: entropy-coded data up to EOI
                return !(d.length >= 2 && (d[d.length - 2] & 0xFF) == 0xFF && (d[d.length - 1] & 0xFF) == 0xD9);
            }
            at += 2 + len;
        }
        return true;
    }

    private static int readInt(byte[] d, int at) {
        return ((d[at] & 0xFF) << 24) | ((d[at + 1] & 0xFF) << 16) | ((d[at + 2] & 0xFF) << 8) | (d[at + 3] & 0xFF);
    }

    private static String printable(String chunkType) {
        return chunkType.chars().allMatch(c -> c >= 0x21 && c < 0x7F) ? chunkType : "(binary type)";
    }

    private static DecodeException failure(ImageEncoding enc, byte[] data, String part, Exception e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof EOFException) {
                return new DecodeException(TRUNCATED_IMAGE, enc + " " + part + " ends early: " + e.getMessage(), e);
            }
        }
        if (enc == ImageEncoding.JPEG && jpegEndsEarly(data)) {
            return new DecodeException(TRUNCATED_IMAGE, "JPEG " + part + " ends early (" + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage()) + ")", e);
        }
        String msg = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        if (msg.contains("Unsupported Image Type")) {
            return new DecodeException(UNSUPPORTED_FORMAT, enc + " of a kind not supported: " + msg, e);
        }
        return new DecodeException(CORRUPT_IMAGE, "corrupt " + enc + " " + part + ": " + msg, e);
    }

    /** Pixels of a decoded image as 8-bit HWC with {@code want} channels (see the class comment for the rules). */
    static DecodedPixels toChannels(ImageEncoding enc, BufferedImage img, int want) throws DecodeException {
        Raster ras = img.getRaster();
        ColorModel cm = img.getColorModel();
        int w = img.getWidth();
        int h = img.getHeight();
        byte[] out = new byte[w * h * want];
        int o = 0;
        if (cm instanceof IndexColorModel icm) {
            int size = icm.getMapSize();
            byte[] red = new byte[size];
            byte[] green = new byte[size];
            byte[] blue = new byte[size];
            icm.getReds(red);
            icm.getGreens(green);
            icm.getBlues(blue);
            int[] row = new int[w];
            for (int y = 0; y < h; y++) {
                ras.getSamples(0, y, w, 1, 0, row);
                for (int x = 0; x < w; x++) {
                    int i = row[x];
                    // An index past the palette is invalid PNG; such pixels are black rather than a failure.
                    int r = i < size ? red[i] & 0xFF : 0;
                    int g = i < size ? green[i] & 0xFF : 0;
                    int b = i < size ? blue[i] & 0xFF : 0;
                    o = put(out, o, want, r, g, b);
                }
            }
            return new DecodedPixels(w, h, want, out);
        }
        int space = cm.getColorSpace().getType();
        int colors = cm.getNumColorComponents();
        boolean gray = space == ColorSpace.TYPE_GRAY && colors == 1;
        if (!gray && !(space == ColorSpace.TYPE_RGB && colors == 3)) {
            throw new DecodeException(UNSUPPORTED_FORMAT, enc + " with " + colors + " colour components in colour space "
                    + spaceName(space) + "; gray and RGB supported");
        }
        int bands = ras.getNumBands();   // the colour components, then alpha if any (ignored)
        int[] bits = new int[colors];
        for (int c = 0; c < colors; c++) bits[c] = cm.getComponentSize(c);
        int[] row = new int[w * bands];
        for (int y = 0; y < h; y++) {
            ras.getPixels(0, y, w, 1, row);
            for (int x = 0, p = 0; x < w; x++, p += bands) {
                if (gray) {
                    int v = to8(row[p], bits[0]);
                    o = put(out, o, want, v, v, v);
                } else {
                    o = put(out, o, want, to8(row[p], bits[0]), to8(row[p + 1], bits[1]), to8(row[p + 2], bits[2]));
                }
            }
        }
        return new DecodedPixels(w, h, want, out);
    }

    private static int put(byte[] out, int o, int want, int r, int g, int b) {
        if (want == 3) {
            out[o] = (byte) r;
            out[o + 1] = (byte) g;
            out[o + 2] = (byte) b;
            return o + 3;
        }
        // For gray sources r == g == b, and the weights sum to 65536, so the level is kept exactly.
        out[o] = (byte) luma(r, g, b);
        return o + 1;
    }

    /** Pillow's {@code convert("L")}: ITU-R 601-2 luma in 16-bit fixed point, rounded. */
    static int luma(int r, int g, int b) {
        return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
    }

    /** A sample of {@code bits} bits as 0..255. */
    static int to8(int v, int bits) {
        if (bits == 8) return v;
        if (bits > 8) return v >>> (bits - 8);
        return v * 255 / ((1 << bits) - 1);
    }

    private static String spaceName(int type) {
        return switch (type) {
            case ColorSpace.TYPE_CMYK -> "CMYK";
            case ColorSpace.TYPE_YCbCr -> "YCbCr";
            case ColorSpace.TYPE_GRAY -> "gray";
            case ColorSpace.TYPE_RGB -> "RGB";
            default -> "type " + type;
        };
    }

    /** The record's bytes as an array, without a copy when the buffer is a whole array (as Avro makes it). */
    private static byte[] bytes(ByteBuffer b) {
        if (b.hasArray() && b.arrayOffset() == 0 && b.position() == 0 && b.remaining() == b.array().length) {
            return b.array();
        }
        byte[] copy = new byte[b.remaining()];
        b.duplicate().get(copy);
        return copy;
    }
}
