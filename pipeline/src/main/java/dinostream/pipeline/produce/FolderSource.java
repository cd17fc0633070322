package dinostream.pipeline.produce;

import dinostream.schemas.ImageEncoding;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * The JPEG and PNG files under a folder, recursively, sorted by relative path (by name, as bytes
 * compare, so the order is the same on every machine). The images are sent as they are, not
 * decoded: the encoding comes from the file's magic bytes, the event time from its mtime, the id
 * is the relative path with '/' separators.
 *
 * <p>Images in subfolders are labelled ImageFolder-style: the index of their top-level folder
 * among the sorted top-level folders (attribute {@code class} holds its name); images directly in
 * the folder have no label.
 */
public final class FolderSource implements ImageSource {
    private final Path root;
    private final List<String> files;       // relative paths, '/'-separated, sorted
    private final List<String> classes;     // sorted top-level folder names holding images
    private final int[] labels;             // -1: none
    private final List<String> notImages;   // files left out by their name, relative, sorted

    private FolderSource(Path root, List<String> files, List<String> classes, int[] labels, List<String> notImages) {
        this.root = root;
        this.files = files;
        this.classes = classes;
        this.labels = labels;
        this.notImages = notImages;
    }

    /** The files under the folder that are not *.jpg, *.jpeg or *.png (hidden ones aside): not produced. */
    public List<String> notImages() {
        return notImages;
    }

    /** Lists the folder; throws {@link SourceException} when it has no JPEG or PNG files. */
    public static FolderSource open(Path dir) throws IOException {
        Path root = dir.toAbsolutePath().normalize();
        if (!Files.exists(root)) throw new NoSuchFileException(dir.toString(), null, "no such directory");
        if (!Files.isDirectory(root)) throw new NotDirectoryException(dir.toString());
        List<String> files = new ArrayList<>();
        List<String> notImages = new ArrayList<>();
        try (Stream<Path> s = Files.walk(root)) {
            s.filter(p -> !p.equals(root))
                    .filter(p -> !hidden(root.relativize(p)))
                    .filter(Files::isRegularFile)
                    .forEach(p -> (imageExtension(p) ? files : notImages).add(slashes(root.relativize(p))));
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
        if (files.isEmpty()) throw new SourceException("no JPEG or PNG files (*.jpg, *.jpeg, *.png) under " + dir);
        files.sort(null);
        TreeSet<String> tops = new TreeSet<>();
        for (String f : files) {
            int slash = f.indexOf('/');
            if (slash > 0) tops.add(f.substring(0, slash));
        }
        List<String> classes = List.copyOf(tops);
        int[] labels = new int[files.size()];
        for (int i = 0; i < labels.length; i++) {
            String f = files.get(i);
            int slash = f.indexOf('/');
            labels[i] = slash > 0 ? classes.indexOf(f.substring(0, slash)) : -1;
        }
        notImages.sort(null);
        return new FolderSource(root, List.copyOf(files), classes, labels, List.copyOf(notImages));
    }

    private static boolean hidden(Path rel) {
        for (Path part : rel) if (part.toString().startsWith(".")) return true;
        return false;
    }

    private static boolean imageExtension(Path p) {
        String n = p.getFileName().toString().toLowerCase(Locale.ROOT);
        return n.endsWith(".jpg") || n.endsWith(".jpeg") || n.endsWith(".png");
    }

    private static String slashes(Path rel) {
        StringBuilder b = new StringBuilder();
        for (Path part : rel) {
            if (b.length() > 0) b.append('/');
            b.append(part);
        }
        return b.toString();
    }

    /** JPEG (FF D8 FF) or PNG (89 'P' 'N' 'G' CR LF 1A LF) from the first bytes; null when neither. */
    public static ImageEncoding sniff(byte[] b) {
        if (b.length >= 3 && (b[0] & 0xff) == 0xFF && (b[1] & 0xff) == 0xD8 && (b[2] & 0xff) == 0xFF) return ImageEncoding.JPEG;
        byte[] png = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
        if (b.length >= png.length) {
            for (int i = 0; i < png.length; i++) if (b[i] != png[i]) return null;
            return ImageEncoding.PNG;
        }
        return null;
    }

    public Path root() {
        return root;
    }

    /** Relative path of image {@code i}, which is also its id. */
    public String path(int i) {
        return files.get(i);
    }

    public List<String> classes() {
        return classes;
    }

    @Override
    public String name() {
        return root.toString();
    }

    @Override
    public int size() {
        return files.size();
    }

    @Override
    public Integer label(int i) {
        return labels[i] >= 0 ? labels[i] : null;
    }

    @Override
    public SourceImage read(int i) throws IOException {
        String rel = files.get(i);
        Path file = root.resolve(rel);
        byte[] bytes = Files.readAllBytes(file);
        ImageEncoding enc = sniff(bytes);
        if (enc == null) return null;
        Map<String, String> attrs = new HashMap<>();
        attrs.put("path", rel);
        Integer label = label(i);
        if (label != null) attrs.put("class", classes.get(label));
        return new SourceImage(rel, enc, null, null, null, bytes, label, Files.getLastModifiedTime(file).toInstant(), attrs);
    }
}
