package dinostream.pipeline.viz;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;

/** PNG encoding of figures (ImageIO, no display needed) and their {@code data:} URIs for self-contained HTML. */
public final class Png {
    private Png() {}

    static {
        // Figures are drawn off-screen; without this a set DISPLAY would make AWT try to reach an X server.
        if (System.getProperty("java.awt.headless") == null) System.setProperty("java.awt.headless", "true");
    }

    /** Call before the first AWT use of a command, so the headless default above is in place. */
    public static void headless() {
        // The static initializer does the work; this only makes sure the class is loaded.
    }

    public static byte[] encode(BufferedImage img) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            if (!ImageIO.write(img, "png", out)) throw new IllegalStateException("this JVM has no PNG writer");
        } catch (IOException e) {
            throw new UncheckedIOException("PNG encoding failed", e);   // in memory: cannot happen short of a JVM bug
        }
        return out.toByteArray();
    }

    public static String dataUri(byte[] png) {
        return "data:image/png;base64," + Base64.getEncoder().encodeToString(png);
    }

    /** Writes the image as a PNG file (parent folders created), replacing any file of that name. */
    public static void write(BufferedImage img, Path file) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) Files.createDirectories(parent);
        Files.write(file, encode(img));
    }
}
