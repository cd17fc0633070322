package dinostream.pipeline.decode;

import dinostream.schemas.ImageEncoding;
import dinostream.schemas.ImageRecord;
import java.awt.image.BufferedImage;
import java.awt.image.Raster;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.zip.CRC32;
import java.util.zip.DeflaterOutputStream;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriter;
import javax.imageio.stream.ImageOutputStream;

/** Builds the test images in memory: encoded with ImageIO, or assembled byte by byte where ImageIO would refuse. */
final class TestImages {

    private TestImages() {}

    static byte[] encode(BufferedImage img, String format) {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            if (!ImageIO.write(img, format, out)) throw new IllegalStateException("no " + format + " writer for image type " + img.getType());
            return out.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A JPEG of a bare raster: with 4 bands ImageIO writes (and reads back) CMYK. */
    static byte[] jpegOfRaster(Raster raster) {
        try {
            ImageWriter w = ImageIO.getImageWritersByFormatName("jpeg").next();
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            try (ImageOutputStream out = ImageIO.createImageOutputStream(bytes)) {
                w.setOutput(out);
                w.write(null, new IIOImage(raster, null, null), null);
            } finally {
                w.dispose();
            }
            return bytes.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static ImageRecord record(ImageEncoding enc, byte[] bytes) {
        return ImageRecord.newBuilder()
                .setId("img-1")
                .setSource("test")
                .setEventTime(Instant.ofEpochMilli(1_000))
                .setEncoding(enc)
                .setBytes(ByteBuffer.wrap(bytes))
                .build();
    }

    static ImageRecord raw(Integer w, Integer h, Integer c, byte[] bytes) {
        ImageRecord r = record(ImageEncoding.RAW_U8, bytes);
        r.setWidth(w);
        r.setHeight(h);
        r.setChannels(c);
        return r;
    }

    /** A TIFF structure (the body of an EXIF block) whose IFD0 holds only the Orientation tag, as a SHORT. */
    static byte[] tiffWithOrientation(int orientation, boolean littleEndian) {
        ByteBuffer b = ByteBuffer.allocate(8 + 2 + 12 + 4).order(littleEndian ? ByteOrder.LITTLE_ENDIAN : ByteOrder.BIG_ENDIAN);
        b.put(littleEndian ? (byte) 'I' : (byte) 'M').put(littleEndian ? (byte) 'I' : (byte) 'M');
        b.putShort((short) 42).putInt(8);                    // magic, offset of IFD0
        b.putShort((short) 1);                               // one entry
        b.putShort((short) 0x0112).putShort((short) 3).putInt(1);
        b.putShort((short) orientation).putShort((short) 0); // value, left-aligned in its 4 bytes
        b.putInt(0);                                         // no next IFD
        return b.array();
    }

    /** The JPEG with an APP1 Exif segment holding {@code tiff} inserted right after SOI, as cameras write it. */
    static byte[] withExifApp1(byte[] jpeg, byte[] tiff) {
        byte[] exif = "Exif\0\0".getBytes(StandardCharsets.ISO_8859_1);
        int len = 2 + exif.length + tiff.length;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(jpeg, 0, 2);
        out.write(0xFF);
        out.write(0xE1);
        out.write(len >> 8);
        out.write(len & 0xFF);
        out.write(exif, 0, exif.length);
        out.write(tiff, 0, tiff.length);
        out.write(jpeg, 2, jpeg.length - 2);
        return out.toByteArray();
    }

    /** The PNG with an eXIf chunk holding {@code tiff} inserted after IHDR. */
    static byte[] withExifChunk(byte[] png, byte[] tiff) {
        int afterIhdr = 8 + 8 + 13 + 4;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(png, 0, afterIhdr);
        writeChunk(out, "eXIf", tiff);
        out.write(png, afterIhdr, png.length - afterIhdr);
        return out.toByteArray();
    }

    /**
     * A syntactically valid 8-bit gray PNG of a few dozen bytes that declares {@code width x height}:
     * a decompression bomb if anyone allocated its pixels.
     */
    static byte[] pngDeclaring(int width, int height) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(0x89);
        out.writeBytes("PNG\r\n\u001a\n".getBytes(StandardCharsets.ISO_8859_1));
        writeChunk(out, "IHDR", ByteBuffer.allocate(13).putInt(width).putInt(height)
                .put((byte) 8).put((byte) 0).put((byte) 0).put((byte) 0).put((byte) 0).array());
        ByteArrayOutputStream z = new ByteArrayOutputStream();
        try (DeflaterOutputStream d = new DeflaterOutputStream(z)) {
            d.write(new byte[4096]);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        writeChunk(out, "IDAT", z.toByteArray());
        writeChunk(out, "IEND", new byte[0]);
        return out.toByteArray();
    }

    static void writeChunk(ByteArrayOutputStream out, String type, byte[] data) {
        try {
            DataOutputStream d = new DataOutputStream(out);
            byte[] t = type.getBytes(StandardCharsets.ISO_8859_1);
            d.writeInt(data.length);
            d.write(t);
            d.write(data);
            CRC32 crc = new CRC32();
            crc.update(t);
            crc.update(data);
            d.writeInt((int) crc.getValue());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
