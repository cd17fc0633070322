package dinostream.pipeline.produce;

import dinostream.schemas.ImageEncoding;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FolderSourceTest {
    @TempDir
    Path dir;

    /** A small folder tree: two class folders, a loose image, and files that must be left out or skipped. */
    static List<String> makeTree(Path dir) throws IOException {
        write(dir.resolve("cats/b.png"), image("png", 1));
        write(dir.resolve("cats/a.jpg"), image("jpg", 2));
        write(dir.resolve("dogs/deep/c.PNG"), image("png", 3));
        write(dir.resolve("loose.jpeg"), image("jpg", 4));
        write(dir.resolve("dogs/actually-jpeg.png"), image("jpg", 5));   // encoding from the bytes, not the name
        write(dir.resolve("dogs/not-an-image.png"), "hello".getBytes());  // skipped when read
        write(dir.resolve("notes.txt"), "not listed".getBytes());
        write(dir.resolve(".hidden/x.png"), image("png", 6));
        return List.of("cats/a.jpg", "cats/b.png", "dogs/actually-jpeg.png", "dogs/deep/c.PNG", "dogs/not-an-image.png", "loose.jpeg");
    }

    @Test
    void listsImagesRecursivelySortedWithFolderLabels() throws IOException {
        List<String> expected = makeTree(dir);
        Instant mtime = Instant.parse("2024-05-06T07:08:09Z");
        Files.setLastModifiedTime(dir.resolve("cats/a.jpg"), FileTime.from(mtime));

        FolderSource s = FolderSource.open(dir);
        assertEquals(dir.toAbsolutePath().normalize().toString(), s.name());
        assertEquals(List.of("cats", "dogs"), s.classes());
        List<String> paths = new ArrayList<>();
        for (int i = 0; i < s.size(); i++) paths.add(s.path(i));
        assertEquals(expected, paths);
        assertEquals(List.of("notes.txt"), s.notImages(), "files left out by name are listed, hidden ones are not");

        SourceImage a = s.read(0);
        assertEquals("cats/a.jpg", a.id());
        assertEquals(ImageEncoding.JPEG, a.encoding());
        assertEquals(0, a.label());
        assertEquals("cats", a.attributes().get("class"));
        assertEquals(mtime, a.eventTime());
        assertNull(a.width(), "JPEG/PNG: the size comes from the header when decoded");
        assertArrayEquals(Files.readAllBytes(dir.resolve("cats/a.jpg")), a.bytes());

        assertEquals(ImageEncoding.PNG, s.read(1).encoding());
        assertEquals(ImageEncoding.JPEG, s.read(2).encoding());
        SourceImage c = s.read(3);
        assertEquals(ImageEncoding.PNG, c.encoding());
        assertEquals(1, c.label());
        assertNull(s.read(4), "not JPEG or PNG: skipped");
        SourceImage loose = s.read(5);
        assertNull(loose.label(), "no class folder, no label");
        assertNull(s.label(5));
    }

    @Test
    void errorsForMissingEmptyAndNonFolders() throws IOException {
        assertThrows(NoSuchFileException.class, () -> FolderSource.open(dir.resolve("missing")));
        write(dir.resolve("file.png"), image("png", 1));
        assertThrows(NotDirectoryException.class, () -> FolderSource.open(dir.resolve("file.png")));
        Files.createDirectories(dir.resolve("empty/sub"));
        SourceException e = assertThrows(SourceException.class, () -> FolderSource.open(dir.resolve("empty")));
        assertTrue(e.getMessage().startsWith("no JPEG or PNG files"), e.getMessage());
    }

    @Test
    void sniffsMagicBytes() {
        assertEquals(ImageEncoding.JPEG, FolderSource.sniff(new byte[]{(byte) 0xFF, (byte) 0xD8, (byte) 0xFF, 0}));
        assertEquals(ImageEncoding.PNG, FolderSource.sniff(new byte[]{(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0}));
        assertNull(FolderSource.sniff(new byte[]{(byte) 0x89, 'P', 'N', 'G'}));
        assertNull(FolderSource.sniff(new byte[0]));
    }

    static byte[] image(String format, int seed) throws IOException {
        BufferedImage img = new BufferedImage(12, 10, BufferedImage.TYPE_3BYTE_BGR);
        for (int y = 0; y < 10; y++) for (int x = 0; x < 12; x++) img.setRGB(x, y, (x * 20 + seed * 31) << 16 | (y * 25) << 8 | seed * 40);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        if (!ImageIO.write(img, format, out)) throw new IllegalStateException("no ImageIO writer for " + format);
        return out.toByteArray();
    }

    static void write(Path file, byte[] bytes) throws IOException {
        Files.createDirectories(file.getParent());
        Files.write(file, bytes);
    }
}
