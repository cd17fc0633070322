package dinostream.pipeline.decode;

import static dinostream.pipeline.decode.TestImages.encode;
import static dinostream.pipeline.decode.TestImages.pngDeclaring;
import static dinostream.pipeline.decode.TestImages.raw;
import static dinostream.pipeline.decode.TestImages.record;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dinostream.pipeline.decode.DecodeException.Reason;
import dinostream.schemas.ImageEncoding;
import dinostream.schemas.ImageRecord;
import java.awt.Transparency;
import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ComponentColorModel;
import java.awt.image.DataBuffer;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.awt.image.WritableRaster;
import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ImageDecoderTest {

    private final ImageDecoder decoder = new ImageDecoder();

    private DecodedPixels decode(ImageRecord r, int channels) throws DecodeException {
        return decoder.decode(r, channels, Limits.DEFAULT);
    }

    private DecodedPixels png(BufferedImage img, int channels) throws DecodeException {
        return decode(record(ImageEncoding.PNG, encode(img, "png")), channels);
    }

    private static BufferedImage randomRgb(int w, int h, long seed) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        Random rnd = new Random(seed);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) img.setRGB(x, y, rnd.nextInt() & 0xFFFFFF);
        return img;
    }

    private static void assertClose(int expected, int actual, int tolerance, String what) {
        assertTrue(Math.abs(expected - actual) <= tolerance, what + ": expected " + expected + " +-" + tolerance + ", got " + actual);
    }

    // ---- formats and channel conversions -------------------------------------------------------

    @Test
    void png8BitRgbIsExactAndGrayIsPillowLuma() throws Exception {
        BufferedImage img = randomRgb(7, 5, 1);
        DecodedPixels rgb = png(img, 3);
        DecodedPixels gray = png(img, 1);
        assertEquals(7, rgb.width());
        assertEquals(5, rgb.height());
        assertEquals(3, rgb.channels());
        assertEquals(1, gray.channels());
        for (int y = 0; y < 5; y++) {
            for (int x = 0; x < 7; x++) {
                int p = img.getRGB(x, y);
                int r = p >> 16 & 0xFF;
                int g = p >> 8 & 0xFF;
                int b = p & 0xFF;
                assertEquals(r, rgb.at(x, y, 0));
                assertEquals(g, rgb.at(x, y, 1));
                assertEquals(b, rgb.at(x, y, 2));
                assertEquals((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16, gray.at(x, y, 0));
            }
        }
    }

    @Test
    void lumaMatchesPillowOnKnownValues() {
        // Values from Pillow's Image.new("RGB", (1, 1), c).convert("L").getpixel((0, 0)).
        assertEquals(76, ImageDecoder.luma(255, 0, 0));
        assertEquals(150, ImageDecoder.luma(0, 255, 0));
        assertEquals(29, ImageDecoder.luma(0, 0, 255));
        assertEquals(255, ImageDecoder.luma(255, 255, 255));
        assertEquals(128, ImageDecoder.luma(128, 128, 128));
        assertEquals(0, ImageDecoder.luma(0, 0, 0));
    }

    @Test
    void png8BitGrayIsExactAndReplicatedToRgb() throws Exception {
        BufferedImage img = new BufferedImage(6, 4, BufferedImage.TYPE_BYTE_GRAY);
        for (int y = 0; y < 4; y++) for (int x = 0; x < 6; x++) img.getRaster().setSample(x, y, 0, (x * 40 + y * 7) & 0xFF);
        DecodedPixels gray = png(img, 1);
        DecodedPixels rgb = png(img, 3);
        for (int y = 0; y < 4; y++) {
            for (int x = 0; x < 6; x++) {
                int v = img.getRaster().getSample(x, y, 0);
                assertEquals(v, gray.at(x, y, 0));
                for (int c = 0; c < 3; c++) assertEquals(v, rgb.at(x, y, c));
            }
        }
    }

    @Test
    void png16BitGrayKeepsTheHighByte() throws Exception {
        BufferedImage img = new BufferedImage(4, 1, BufferedImage.TYPE_USHORT_GRAY);
        int[] v = {0xABCD, 0x00FF, 0xFFFF, 0x0100};
        for (int x = 0; x < 4; x++) img.getRaster().setSample(x, 0, 0, v[x]);
        DecodedPixels gray = png(img, 1);
        DecodedPixels rgb = png(img, 3);
        // Not Pillow's clip (0x00FF -> 255, 0x0100 -> 255): the high byte.
        int[] expected = {0xAB, 0x00, 0xFF, 0x01};
        for (int x = 0; x < 4; x++) {
            assertEquals(expected[x], gray.at(x, 0, 0));
            assertEquals(expected[x], rgb.at(x, 0, 1));
        }
    }

    @Test
    void png16BitRgbKeepsTheHighByte() throws Exception {
        ComponentColorModel cm = new ComponentColorModel(ColorSpace.getInstance(ColorSpace.CS_sRGB),
                new int[] {16, 16, 16}, false, false, Transparency.OPAQUE, DataBuffer.TYPE_USHORT);
        WritableRaster ras = cm.createCompatibleWritableRaster(2, 1);
        ras.setPixel(0, 0, new int[] {0x1234, 0xFF00, 0x00FF});
        ras.setPixel(1, 0, new int[] {0x8080, 0x0001, 0xFFFF});
        DecodedPixels rgb = png(new BufferedImage(cm, ras, false, null), 3);
        assertArrayEquals(new byte[] {0x12, (byte) 0xFF, 0x00, (byte) 0x80, 0x00, (byte) 0xFF}, rgb.pixels());
    }

    @Test
    void rgbaDropsAlphaWithoutCompositing() throws Exception {
        BufferedImage img = new BufferedImage(2, 1, BufferedImage.TYPE_INT_ARGB);
        img.setRGB(0, 0, 0x00102030);   // fully transparent: colour kept, as Pillow's convert("RGB")
        img.setRGB(1, 0, 0x80C0D0E0);
        DecodedPixels rgb = png(img, 3);
        assertArrayEquals(new byte[] {0x10, 0x20, 0x30, (byte) 0xC0, (byte) 0xD0, (byte) 0xE0}, rgb.pixels());
        DecodedPixels gray = png(img, 1);
        assertEquals(ImageDecoder.luma(0xC0, 0xD0, 0xE0), gray.at(1, 0, 0));
    }

    @Test
    void grayAlphaDropsAlpha() throws Exception {
        ComponentColorModel cm = new ComponentColorModel(ColorSpace.getInstance(ColorSpace.CS_GRAY),
                new int[] {8, 8}, true, false, Transparency.TRANSLUCENT, DataBuffer.TYPE_BYTE);
        WritableRaster ras = cm.createCompatibleWritableRaster(2, 1);
        ras.setPixel(0, 0, new int[] {77, 0});
        ras.setPixel(1, 0, new int[] {200, 255});
        DecodedPixels gray = png(new BufferedImage(cm, ras, false, null), 1);
        assertArrayEquals(new byte[] {77, (byte) 200}, gray.pixels());
        DecodedPixels rgb = png(new BufferedImage(cm, ras, false, null), 3);
        assertArrayEquals(new byte[] {77, 77, 77, (byte) 200, (byte) 200, (byte) 200}, rgb.pixels());
    }

    @Test
    void paletteIsExpandedAndItsTransparencyDropped() throws Exception {
        byte[] r = {10, (byte) 200, 0, (byte) 255};
        byte[] g = {20, 100, (byte) 255, (byte) 255};
        byte[] b = {30, 50, 0, (byte) 255};
        byte[] a = {(byte) 255, 0, (byte) 128, (byte) 255};
        IndexColorModel icm = new IndexColorModel(8, 4, r, g, b, a);
        BufferedImage img = new BufferedImage(4, 1, BufferedImage.TYPE_BYTE_INDEXED, icm);
        for (int x = 0; x < 4; x++) img.getRaster().setSample(x, 0, 0, 3 - x);
        DecodedPixels rgb = png(img, 3);
        DecodedPixels gray = png(img, 1);
        for (int x = 0; x < 4; x++) {
            int i = 3 - x;
            assertEquals(r[i] & 0xFF, rgb.at(x, 0, 0));
            assertEquals(g[i] & 0xFF, rgb.at(x, 0, 1));
            assertEquals(b[i] & 0xFF, rgb.at(x, 0, 2));
            assertEquals(ImageDecoder.luma(r[i] & 0xFF, g[i] & 0xFF, b[i] & 0xFF), gray.at(x, 0, 0));
        }
    }

    @Test
    void lowBitDepthPaletteAndBilevel() throws Exception {
        IndexColorModel icm = new IndexColorModel(4, 3, new byte[] {1, 2, 3}, new byte[] {4, 5, 6}, new byte[] {7, 8, 9});
        BufferedImage pal4 = new BufferedImage(3, 1, BufferedImage.TYPE_BYTE_BINARY, icm);
        for (int x = 0; x < 3; x++) pal4.getRaster().setSample(x, 0, 0, x);
        assertArrayEquals(new byte[] {1, 4, 7, 2, 5, 8, 3, 6, 9}, png(pal4, 3).pixels());

        BufferedImage bilevel = new BufferedImage(3, 1, BufferedImage.TYPE_BYTE_BINARY);
        bilevel.getRaster().setSample(1, 0, 0, 1);
        assertArrayEquals(new byte[] {0, (byte) 255, 0}, png(bilevel, 1).pixels());
    }

    @Test
    void jpegRgbAndGray() throws Exception {
        // Flat 16x16 blocks, one per 4:2:0 MCU, so chroma subsampling does not mix the two colours.
        BufferedImage img = new BufferedImage(32, 16, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 16; y++) {
            for (int x = 0; x < 32; x++) img.setRGB(x, y, x < 16 ? 0xC82028 : 0x3050B4);
        }
        ImageRecord rec = record(ImageEncoding.JPEG, encode(img, "jpeg"));
        DecodedPixels rgb = decode(rec, 3);
        assertEquals(32, rgb.width());
        assertEquals(16, rgb.height());
        int[][] colours = {{0xC8, 0x20, 0x28}, {0x30, 0x50, 0xB4}};
        for (int half = 0; half < 2; half++) {
            int x = half * 16 + 8;
            for (int c = 0; c < 3; c++) assertClose(colours[half][c], rgb.at(x, 8, c), 8, "half " + half + " channel " + c);
        }
        DecodedPixels gray = decode(rec, 1);
        for (int half = 0; half < 2; half++) {
            int[] col = colours[half];
            assertClose(ImageDecoder.luma(col[0], col[1], col[2]), gray.at(half * 16 + 8, 8, 0), 6, "gray half " + half);
        }

        BufferedImage g = new BufferedImage(16, 8, BufferedImage.TYPE_BYTE_GRAY);
        for (int y = 0; y < 8; y++) for (int x = 0; x < 16; x++) g.getRaster().setSample(x, y, 0, x < 8 ? 40 : 210);
        ImageRecord grayJpeg = record(ImageEncoding.JPEG, encode(g, "jpeg"));
        DecodedPixels one = decode(grayJpeg, 1);
        DecodedPixels three = decode(grayJpeg, 3);
        assertClose(40, one.at(4, 4, 0), 3, "dark block");
        assertClose(210, one.at(12, 4, 0), 3, "light block");
        for (int i = 0; i < one.pixels().length; i++) {
            for (int c = 0; c < 3; c++) assertEquals(one.pixels()[i], three.pixels()[3 * i + c]);
        }
    }

    // ---- EXIF orientation ----------------------------------------------------------------------

    /** Levels of a 2-column x 3-row grid of flat 8x8 blocks: a b / c d / e f. */
    private static final int A = 20, B = 60, C = 100, D = 140, E = 180, F = 220;

    /** How each orientation must look once applied (rows of blocks), derived by hand from the EXIF definitions. */
    private static final int[][][] UPRIGHT = {
        null,
        {{A, B}, {C, D}, {E, F}},     // 1 as stored
        {{B, A}, {D, C}, {F, E}},     // 2 mirrored
        {{F, E}, {D, C}, {B, A}},     // 3 rotated 180
        {{E, F}, {C, D}, {A, B}},     // 4 flipped top-bottom
        {{A, C, E}, {B, D, F}},       // 5 transposed
        {{E, C, A}, {F, D, B}},       // 6 rotated 90 clockwise
        {{F, D, B}, {E, C, A}},       // 7 transversed
        {{B, D, F}, {A, C, E}},       // 8 rotated 90 counter-clockwise
    };

    private static BufferedImage grid() {
        int[][] levels = UPRIGHT[1];
        BufferedImage img = new BufferedImage(16, 24, BufferedImage.TYPE_BYTE_GRAY);
        for (int y = 0; y < 24; y++) for (int x = 0; x < 16; x++) img.getRaster().setSample(x, y, 0, levels[y / 8][x / 8]);
        return img;
    }

    private static void assertGrid(int orientation, DecodedPixels px, int tolerance) {
        int[][] want = UPRIGHT[orientation];
        assertEquals(want[0].length * 8, px.width(), "width for orientation " + orientation);
        assertEquals(want.length * 8, px.height(), "height for orientation " + orientation);
        for (int by = 0; by < want.length; by++) {
            for (int bx = 0; bx < want[0].length; bx++) {
                for (int c = 0; c < px.channels(); c++) {
                    assertClose(want[by][bx], px.at(bx * 8 + 4, by * 8 + 4, c), tolerance,
                            "orientation " + orientation + " block (" + bx + "," + by + ")");
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 4, 5, 6, 7, 8})
    void jpegExifOrientationIsApplied(int orientation) throws Exception {
        byte[] jpeg = encode(grid(), "jpeg");
        for (boolean little : new boolean[] {true, false}) {
            byte[] tagged = TestImages.withExifApp1(jpeg, TestImages.tiffWithOrientation(orientation, little));
            assertEquals(orientation, ExifOrientation.fromJpeg(tagged));
            assertGrid(orientation, decode(record(ImageEncoding.JPEG, tagged), 1), 4);
            assertGrid(orientation, decode(record(ImageEncoding.JPEG, tagged), 3), 4);
        }
    }

    @Test
    void pngExifChunkIsApplied() throws Exception {
        byte[] png = TestImages.withExifChunk(encode(grid(), "png"), TestImages.tiffWithOrientation(6, false));
        assertGrid(6, decode(record(ImageEncoding.PNG, png), 1), 0);
    }

    @Test
    void malformedOrMissingExifLeavesTheImageAsStored() throws Exception {
        byte[] jpeg = encode(grid(), "jpeg");
        byte[] good = TestImages.tiffWithOrientation(6, true);
        assertEquals(1, ExifOrientation.fromJpeg(jpeg));
        assertEquals(1, ExifOrientation.fromJpeg(TestImages.withExifApp1(jpeg, TestImages.tiffWithOrientation(9, true))));
        assertEquals(1, ExifOrientation.fromJpeg(TestImages.withExifApp1(jpeg, Arrays.copyOf(good, 12))));   // IFD cut off
        byte[] badOffset = good.clone();
        badOffset[4] = (byte) 0xF0;                                                                           // IFD0 past the end
        assertEquals(1, ExifOrientation.fromJpeg(TestImages.withExifApp1(jpeg, badOffset)));
        byte[] badOrder = good.clone();
        badOrder[0] = 'X';
        assertEquals(1, ExifOrientation.fromJpeg(TestImages.withExifApp1(jpeg, badOrder)));
        // Every prefix of a tagged file: the parser must never read outside the array.
        byte[] tagged = TestImages.withExifApp1(jpeg, good);
        for (int n = 0; n < 80; n++) ExifOrientation.fromJpeg(Arrays.copyOf(tagged, n));
        byte[] taggedPng = TestImages.withExifChunk(encode(grid(), "png"), good);
        for (int n = 0; n < 90; n++) ExifOrientation.fromPng(Arrays.copyOf(taggedPng, n));
        assertGrid(1, decode(record(ImageEncoding.JPEG, TestImages.withExifApp1(jpeg, badOffset)), 1), 4);
    }

    // ---- RAW_U8 --------------------------------------------------------------------------------

    @Test
    void rawGrayAndRgb() throws Exception {
        byte[] gray = {0, 50, 100, (byte) 150, (byte) 200, (byte) 250};
        DecodedPixels same = decode(raw(3, 2, 1, gray), 1);
        assertSame(gray, same.pixels());   // no copy when nothing changes
        assertEquals(3, same.width());
        assertEquals(2, same.height());
        DecodedPixels rgb = decode(raw(3, 2, 1, gray), 3);
        for (int i = 0; i < 6; i++) for (int c = 0; c < 3; c++) assertEquals(gray[i], rgb.pixels()[3 * i + c]);

        byte[] colour = {(byte) 255, 0, 0, 0, (byte) 255, 0};
        assertArrayEquals(new byte[] {76, (byte) 150}, decode(raw(2, 1, 3, colour), 1).pixels());
        assertArrayEquals(colour, decode(raw(2, 1, 3, colour), 3).pixels());
    }

    // ---- failures ------------------------------------------------------------------------------

    private DecodeException fails(Reason reason, ImageRecord r, Limits limits, String messagePart) {
        DecodeException e = assertThrows(DecodeException.class, () -> decoder.decode(r, 3, limits));
        assertEquals(reason, e.reason(), e.getMessage());
        assertTrue(e.getMessage().contains(messagePart), "message was: " + e.getMessage());
        return e;
    }

    private DecodeException fails(Reason reason, ImageRecord r, String messagePart) {
        return fails(reason, r, Limits.DEFAULT, messagePart);
    }

    @Test
    void tooManyBytesIsCheckedFirst() {
        byte[] png = encode(randomRgb(8, 8, 2), "png");
        fails(Reason.TOO_MANY_BYTES, record(ImageEncoding.PNG, png), new Limits(png.length - 1, 1000, 100),
                "PNG of " + png.length + " bytes exceeds the limit of " + (png.length - 1) + " bytes");
        // Bytes come before any other check, even for garbage.
        fails(Reason.TOO_MANY_BYTES, record(ImageEncoding.JPEG, new byte[11]), new Limits(10, 1000, 100), "exceeds");
    }

    @Test
    void sizeLimitsComeFromTheHeader() {
        byte[] png = encode(randomRgb(40, 30, 3), "png");
        fails(Reason.SIDE_TOO_LONG, record(ImageEncoding.PNG, png), new Limits(1 << 20, 10_000, 39),
                "PNG of 40x30 has a side over the limit of 39");
        fails(Reason.TOO_MANY_PIXELS, record(ImageEncoding.PNG, png), new Limits(1 << 20, 1199, 100),
                "PNG of 40x30 = 1200 pixels exceeds the limit of 1199");
        byte[] jpeg = encode(randomRgb(40, 30, 3), "jpeg");
        fails(Reason.TOO_MANY_PIXELS, record(ImageEncoding.JPEG, jpeg), new Limits(1 << 20, 1199, 100), "JPEG of 40x30");
    }

    @Test
    void decompressionBombsAreRejectedWithoutAllocatingTheirPixels() {
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        byte[] huge = pngDeclaring(100_000, 100_000);       // 10 GB of pixels in 70-odd bytes
        byte[] many = pngDeclaring(16_000, 16_000);         // each side allowed, 256 Mpx in total is not
        assertTrue(huge.length < 100);
        fails(Reason.SIDE_TOO_LONG, record(ImageEncoding.PNG, huge), "PNG of 100000x100000 has a side over the limit of 16384");
        long before = mx.getCurrentThreadAllocatedBytes();
        fails(Reason.TOO_MANY_PIXELS, record(ImageEncoding.PNG, many), "PNG of 16000x16000 = 256000000 pixels exceeds the limit of 50000000");
        long allocated = mx.getCurrentThreadAllocatedBytes() - before;
        assertTrue(allocated < 16L << 20, "allocated " + allocated + " bytes for a rejected 256 Mpx image");
    }

    @Test
    void zeroSize() {
        fails(Reason.ZERO_SIZE, record(ImageEncoding.JPEG, new byte[0]), "JPEG with no bytes");
        fails(Reason.ZERO_SIZE, raw(0, 5, 1, new byte[1]), "RAW_U8 of size 0x5");
        fails(Reason.ZERO_SIZE, raw(4, -1, 1, new byte[1]), "RAW_U8 of size 4x-1");
    }

    @Test
    void rawFailures() {
        fails(Reason.MISSING_RAW_DIMENSIONS, raw(2, null, null, new byte[4]), "missing height, channels");
        fails(Reason.UNSUPPORTED_CHANNELS, raw(2, 2, 4, new byte[16]), "RAW_U8 with 4 channels");
        fails(Reason.RAW_SIZE_MISMATCH, raw(3, 2, 3, new byte[17]), "RAW_U8 3x2x3 needs 18 bytes, got 17");
        fails(Reason.SIDE_TOO_LONG, raw(20_000, 1, 1, new byte[20_000]), "RAW_U8 of 20000x1");
    }

    @Test
    void encodingMismatch() {
        byte[] png = encode(randomRgb(4, 4, 4), "png");
        byte[] jpeg = encode(randomRgb(4, 4, 4), "jpeg");
        fails(Reason.ENCODING_MISMATCH, record(ImageEncoding.JPEG, png), "declared JPEG but the bytes start with 89 50 4E 47");
        fails(Reason.ENCODING_MISMATCH, record(ImageEncoding.JPEG, png), "(it is a PNG)");
        fails(Reason.ENCODING_MISMATCH, record(ImageEncoding.PNG, jpeg), "(it is a JPEG)");
        fails(Reason.ENCODING_MISMATCH, record(ImageEncoding.PNG, "GIF89a......".getBytes()), "declared PNG but the bytes start with 47 49 46 38");
    }

    @Test
    void cmykJpegIsUnsupported() {
        WritableRaster cmyk = Raster.createInterleavedRaster(DataBuffer.TYPE_BYTE, 16, 16, 4, null);
        fails(Reason.UNSUPPORTED_FORMAT, record(ImageEncoding.JPEG, TestImages.jpegOfRaster(cmyk)), "colour space CMYK");
    }

    @Test
    void truncatedImages() {
        byte[] jpeg = encode(randomRgb(64, 64, 5), "jpeg");
        fails(Reason.TRUNCATED_IMAGE, record(ImageEncoding.JPEG, Arrays.copyOf(jpeg, jpeg.length * 9 / 10)), "JPEG data ends early");
        byte[] png = encode(randomRgb(64, 64, 5), "png");
        fails(Reason.TRUNCATED_IMAGE, record(ImageEncoding.PNG, Arrays.copyOf(png, png.length / 2)), "PNG data ends early: chunk IDAT");
        fails(Reason.TRUNCATED_IMAGE, record(ImageEncoding.PNG, Arrays.copyOf(png, png.length - 12)), "PNG data ends early: no IEND chunk");
        // A JPEG cut inside its header segments, and one cut in its scan without the end-of-image marker.
        fails(Reason.TRUNCATED_IMAGE, record(ImageEncoding.JPEG, Arrays.copyOf(jpeg, 100)), "JPEG header ends early");
        byte[] cutScan = Arrays.copyOf(jpeg, jpeg.length / 2);
        DecodeException e = assertThrows(DecodeException.class, () -> decoder.decode(record(ImageEncoding.JPEG, cutScan), 3, Limits.DEFAULT));
        assertEquals(Reason.TRUNCATED_IMAGE, e.reason(), e.getMessage());
        fails(Reason.TRUNCATED_IMAGE, record(ImageEncoding.PNG, Arrays.copyOf(png, 20)), "PNG data ends early: chunk IHDR");
    }

    @Test
    void corruptImages() {
        byte[] jpegHead = {(byte) 0xFF, (byte) 0xD8, (byte) 0xFF, 0x13, 0x13, 0x13, 0x13, 0x13, 0x13, 0x13};
        fails(Reason.CORRUPT_IMAGE, record(ImageEncoding.JPEG, jpegHead), "corrupt JPEG header");
        byte[] png = encode(randomRgb(16, 16, 6), "png");
        byte[] zeroWidth = png.clone();
        Arrays.fill(zeroWidth, 16, 20, (byte) 0);   // IHDR width
        fails(Reason.ZERO_SIZE, record(ImageEncoding.PNG, zeroWidth), "PNG of size 0x16");
        byte[] badData = png.clone();
        int idat = indexOf(badData, "IDAT".getBytes()) + 4;
        for (int i = idat; i < idat + 40; i++) badData[i] = 0x55;   // deflate stream garbage
        fails(Reason.CORRUPT_IMAGE, record(ImageEncoding.PNG, badData), "corrupt PNG: CRC mismatch in chunk IDAT");
        // The same garbage with a CRC that matches it: the decoder itself finds the stream corrupt.
        fixCrc(badData, idat - 8);
        fails(Reason.CORRUPT_IMAGE, record(ImageEncoding.PNG, badData), "corrupt PNG image data");
        byte[] flipped = png.clone();
        flipped[idat + 5] ^= 0x01;   // one bit in the image data, CRC left as it was
        fails(Reason.CORRUPT_IMAGE, record(ImageEncoding.PNG, flipped), "CRC mismatch");
    }

    @Test
    void wantedChannelsMustBeOneOrThree() {
        assertThrows(IllegalArgumentException.class, () -> decoder.decode(raw(1, 1, 1, new byte[1]), 2, Limits.DEFAULT));
        assertThrows(IllegalArgumentException.class, () -> new Limits(0, 1, 1));
    }

    /** Recomputes the CRC of the PNG chunk that starts (at its length field) at {@code at}. */
    private static void fixCrc(byte[] png, int at) {
        int len = java.nio.ByteBuffer.wrap(png, at, 4).getInt();
        java.util.zip.CRC32 crc = new java.util.zip.CRC32();
        crc.update(png, at + 4, 4 + len);
        java.nio.ByteBuffer.wrap(png, at + 8 + len, 4).putInt((int) crc.getValue());
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) if (hay[i + j] != needle[j]) continue outer;
            return i;
        }
        throw new AssertionError("not found");
    }
}
