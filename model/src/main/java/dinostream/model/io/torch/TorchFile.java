package dinostream.model.io.torch;

import dinostream.model.io.TensorData;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Enumeration;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

import static dinostream.model.io.torch.TorchFormatException.printable;

/**
 * Reads and writes PyTorch {@code torch.save} files (the zip format of torch >= 1.6) without
 * Python and without executing anything from the file: the pickle is read by a whitelisting
 * unpickler ({@link TorchUnpickler}) and written opcode by opcode ({@link TorchPickler}).
 */
public final class TorchFile {
    private static final byte[] ZIP_MAGIC = {'P', 'K', 3, 4};
    /** PROTO 2, LONG1 of 10 bytes: torch/serialization.py MAGIC_NUMBER 0x1950a86a20f9469cfc6c, the legacy format's first pickle. */
    private static final byte[] LEGACY_MAGIC = {(byte) 0x80, 2, (byte) 0x8a, 10, 0x6c, (byte) 0xfc, (byte) 0x9c, 0x46, (byte) 0xf9, 0x20, 0x6a, (byte) 0xa8, 0x50, 0x19};
    private static final String LEGACY = "legacy torch format: re-save it with torch >= 1.6 (torch.save(torch.load(f), f))";
    /** A DINO checkpoint's data.pkl is well under a megabyte; the rest of the archive is storages. */
    private static final long MAX_PICKLE_BYTES = 256L << 20;
    private static final int MAX_DEPTH = 500;
    private static final Pattern ARCHIVE_NAME = Pattern.compile("[A-Za-z0-9_.-]+");
    /** torch's writer aligns every record's data to 64 bytes (caffe2/serialize/inline_container.cc, getPadding). */
    private static final int ALIGNMENT = 64;
    /** Fixed, and past 1980-01-01 00:00, which ZipEntry would also store as a time-zone-dependent extended timestamp. */
    private static final LocalDateTime ENTRY_TIME = LocalDateTime.of(2000, 1, 1, 0, 0);

    private TorchFile() {
    }

    /**
     * Reads a torch.save file. Values: dict / collections.OrderedDict / argparse.Namespace ->
     * LinkedHashMap&lt;Object,Object&gt; (keys String or Long, file order); list and tuple ->
     * List&lt;Object&gt;; tensor -> TensorData (float32 -> F32, float64 -> F64, int64 -> I64; 0-dim
     * tensors have shape []); int -> Long, float -> Double, bool -> Boolean, str -> String, None ->
     * null; torch.Size -> List&lt;Long&gt;; bytes -> byte[]. Objects referenced twice in the pickle
     * are the same Java object. An OrderedDict's attributes (state_dict()'s {@code _metadata}) are
     * dropped.
     *
     * @throws TorchFormatException with one line naming the file and what is wrong
     */
    public static Object read(Path file) throws IOException {
        String name = file.toString();
        byte[] head = new byte[LEGACY_MAGIC.length];
        int n;
        try (InputStream in = Files.newInputStream(file)) {
            n = in.readNBytes(head, 0, head.length);
        }
        checkMagic(Arrays.copyOf(head, n), name);
        try (ZipFile zip = openZip(file, name)) {
            return readArchive(zip, name);
        }
    }

    /** {@link #read(Path)} for a file's bytes; {@code name} is the file's name in messages. */
    public static Object read(byte[] bytes, String name) throws IOException {
        checkMagic(Arrays.copyOf(bytes, Math.min(bytes.length, LEGACY_MAGIC.length)), name);
        // Torch writes STORED entries with data descriptors, which ZipInputStream refuses; ZipFile
        // reads the central directory but only from a file.
        Path tmp = Files.createTempFile("torchfile", ".zip");
        try {
            Files.write(tmp, bytes);
            try (ZipFile zip = openZip(tmp, name)) {
                return readArchive(zip, name);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    private static void checkMagic(byte[] head, String name) throws TorchFormatException {
        if (startsWith(head, ZIP_MAGIC)) return;
        if (startsWith(head, LEGACY_MAGIC)) throw new TorchFormatException(name, LEGACY);
        if (head.length == 0) throw new TorchFormatException(name, "empty file, not a torch.save archive");
        if ((head[0] & 0xff) == 0x80) throw new TorchFormatException(name, "a bare pickle, not a torch.save zip archive");
        throw new TorchFormatException(name, "not a torch.save file (no zip signature)");
    }

    private static boolean startsWith(byte[] b, byte[] prefix) {
        return b.length >= prefix.length && Arrays.equals(b, 0, prefix.length, prefix, 0, prefix.length);
    }

    private static ZipFile openZip(Path file, String name) throws IOException {
        try {
            return new ZipFile(file.toFile());
        } catch (ZipException e) {
            throw new TorchFormatException(name, "truncated or corrupt zip archive (" + printable(String.valueOf(e.getMessage())) + ")", e);
        }
    }

    private static Object readArchive(ZipFile zip, String name) throws IOException {
        // torch reads the archive name from the first record (caffe2/serialize/inline_container.cc, PyTorchStreamReader::init).
        String archive = null;
        long storageBytes = 0;
        for (Enumeration<? extends ZipEntry> e = zip.entries(); e.hasMoreElements(); ) {
            ZipEntry entry = e.nextElement();
            int slash = entry.getName().indexOf('/');
            if (archive == null && slash > 0) archive = entry.getName().substring(0, slash);
            if (archive != null && entry.getName().startsWith(archive + "/data/")) storageBytes += Math.max(0, entry.getSize());
        }
        if (archive == null) throw new TorchFormatException(name, "no <archive>/data.pkl: the zip is not a torch.save archive");
        ZipEntry pkl = zip.getEntry(archive + "/data.pkl");
        if (pkl == null) throw new TorchFormatException(name, "no " + printable(archive) + "/data.pkl: the zip is not a torch.save archive");
        if (pkl.getSize() > MAX_PICKLE_BYTES) throw new TorchFormatException(name, printable(archive) + "/data.pkl is " + pkl.getSize() + " bytes, over the " + MAX_PICKLE_BYTES + " a checkpoint needs");
        boolean bigEndian = "big".equals(readText(zip, archive + "/byteorder", name));
        byte[] pickle = readEntry(zip, pkl, name);
        Object raw = new TorchUnpickler(zip, archive, name, bigEndian, storageBytes).unpickle(pickle);
        return new Normalizer(name).value(raw, 0);
    }

    private static String readText(ZipFile zip, String entryName, String name) throws IOException {
        ZipEntry e = zip.getEntry(entryName);
        return e == null || e.getSize() > 64 ? null : new String(readEntry(zip, e, name), StandardCharsets.US_ASCII).strip();
    }

    private static byte[] readEntry(ZipFile zip, ZipEntry e, String name) throws IOException {
        try (InputStream in = zip.getInputStream(e)) {
            byte[] b = in.readNBytes((int) Math.min(e.getSize(), MAX_PICKLE_BYTES));
            if (b.length != e.getSize()) throw new TorchFormatException(name, printable(e.getName()) + " is truncated: " + b.length + " of " + e.getSize() + " bytes");
            return b;
        } catch (ZipException ex) {
            throw new TorchFormatException(name, "cannot read " + printable(e.getName()) + " (" + printable(String.valueOf(ex.getMessage())) + ")", ex);
        }
    }

    /**
     * Turns what the unpickler built into the documented Java types. Memoized by identity, so a
     * pickle that references one object many times (or builds an exponential DAG) costs one visit.
     */
    private static final class Normalizer {
        private final String name;
        private final Map<Object, Object> done = new IdentityHashMap<>();
        private final Set<Object> open = Collections.newSetFromMap(new IdentityHashMap<>());

        Normalizer(String name) {
            this.name = name;
        }

        Object value(Object v, int depth) throws TorchFormatException {
            if (v == null || v instanceof String || v instanceof Boolean || v instanceof Double || v instanceof Long
                    || v instanceof TensorData || v instanceof byte[]) {
                return v;
            }
            if (v instanceof Integer i) return i.longValue();
            if (v instanceof BigInteger b) {
                if (b.bitLength() > 63) throw new TorchFormatException(name, "integer " + b + " does not fit in 64 bits");
                return b.longValueExact();
            }
            if (!(v instanceof Map<?, ?>) && !(v instanceof List<?>) && !(v instanceof Object[])) {
                throw new TorchFormatException(name, "unsupported value: " + TorchUnpickler.typeName(v));
            }
            Object seen = done.get(v);
            if (seen != null) return seen;
            if (depth > MAX_DEPTH) throw new TorchFormatException(name, "values nested deeper than " + MAX_DEPTH + " levels");
            if (!open.add(v)) throw new TorchFormatException(name, "a dict, list or tuple that contains itself");
            Object out;
            if (v instanceof Map<?, ?> m) {
                Map<Object, Object> map = new LinkedHashMap<>();
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    Object k = value(e.getKey(), depth + 1);
                    if (!(k instanceof String) && !(k instanceof Long)) {
                        throw new TorchFormatException(name, "dict key of type " + TorchUnpickler.typeName(k) + ": only str and int keys are supported");
                    }
                    map.put(k, value(e.getValue(), depth + 1));
                }
                out = map;
            } else {
                List<?> items = v instanceof Object[] a ? Arrays.asList(a) : (List<?>) v;
                List<Object> list = new ArrayList<>(items.size());
                for (Object item : items) list.add(value(item, depth + 1));
                out = list;
            }
            open.remove(v);
            done.put(v, out);
            return out;
        }
    }

    /**
     * Writes {@code root} as torch.save does (zip of data.pkl, byteorder, data/N, version; pickle
     * protocol 2), loadable by {@code torch.load(f, weights_only=True)}: maps become plain dicts.
     * Values: nested Map (String or Long/Integer keys), List, TensorData, String, Long, Integer,
     * Double, Boolean, null. Atomic: written to a temporary file beside {@code file}, then renamed.
     * The archive name inside is the file name without its extension.
     */
    public static void write(Path file, Map<?, ?> root) throws IOException {
        Path abs = file.toAbsolutePath();
        TorchPickler.Result pickle = TorchPickler.pickle(root); // fails on bad values before touching the disk
        Path tmp = Files.createTempFile(abs.getParent(), "." + abs.getFileName(), ".tmp");
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING);
                 OutputStream out = new java.io.BufferedOutputStream(java.nio.channels.Channels.newOutputStream(ch), 1 << 16)) {
                writeZip(out, pickle, archiveName(abs));
                out.flush();
                ch.force(true);
            }
            Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** The bytes {@link #write} would write, with {@code archiveName} as the zip's top folder. */
    public static byte[] toBytes(Map<?, ?> root, String archiveName) {
        if (archiveName == null || !ARCHIVE_NAME.matcher(archiveName).matches()) {
            throw new IllegalArgumentException("archive name must match " + ARCHIVE_NAME + ": " + archiveName);
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            writeZip(out, TorchPickler.pickle(root), archiveName);
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a ByteArrayOutputStream does not fail
        }
        return out.toByteArray();
    }

    private static String archiveName(Path file) {
        String base = file.getFileName().toString();
        int dot = base.lastIndexOf('.');
        if (dot > 0) base = base.substring(0, dot);
        String clean = base.replaceAll("[^A-Za-z0-9_.-]", "_");
        return clean.isEmpty() || clean.startsWith(".") ? "archive" : clean;
    }

    /**
     * data.pkl, then the storages, then version, as torch/serialization.py _save writes them;
     * byteorder as newer torch adds it (older readers ignore unknown records).
     */
    private static void writeZip(OutputStream raw, TorchPickler.Result pickle, String archive) throws IOException {
        CountingOutputStream counting = new CountingOutputStream(raw);
        ZipOutputStream zip = new ZipOutputStream(counting);
        putStored(zip, counting, archive + "/data.pkl", ByteBuffer.wrap(pickle.bytes()));
        putStored(zip, counting, archive + "/byteorder", ByteBuffer.wrap("little".getBytes(StandardCharsets.US_ASCII)));
        List<TensorData> storages = pickle.storages();
        for (int i = 0; i < storages.size(); i++) putStored(zip, counting, archive + "/data/" + i, storages.get(i).data());
        putStored(zip, counting, archive + "/version", ByteBuffer.wrap("3\n".getBytes(StandardCharsets.US_ASCII)));
        zip.finish();
    }

    private static void putStored(ZipOutputStream zip, CountingOutputStream counting, String entryName, ByteBuffer data) throws IOException {
        CRC32 crc = new CRC32();
        crc.update(data.duplicate());
        ZipEntry e = new ZipEntry(entryName);
        e.setMethod(ZipEntry.STORED);
        e.setSize(data.remaining());
        e.setCompressedSize(data.remaining());
        e.setCrc(crc.getValue());
        e.setTimeLocal(ENTRY_TIME); // fixed: identical input, identical bytes
        byte[] nameBytes = entryName.getBytes(StandardCharsets.UTF_8);
        // Local header (30 bytes) + name + an "FB" extra field padded so the data starts aligned.
        long start = counting.count() + 30 + nameBytes.length + 4;
        int pad = (int) ((ALIGNMENT - start % ALIGNMENT) % ALIGNMENT);
        byte[] extra = new byte[4 + pad];
        extra[0] = 'F';
        extra[1] = 'B';
        extra[2] = (byte) pad;
        extra[3] = (byte) (pad >>> 8);
        Arrays.fill(extra, 4, extra.length, (byte) 'Z');
        e.setExtra(extra);
        zip.putNextEntry(e);
        if (data.hasArray()) {
            zip.write(data.array(), data.arrayOffset() + data.position(), data.remaining());
        } else {
            byte[] chunk = new byte[1 << 16];
            ByteBuffer src = data.duplicate();
            while (src.hasRemaining()) {
                int n = Math.min(chunk.length, src.remaining());
                src.get(chunk, 0, n);
                zip.write(chunk, 0, n);
            }
        }
        zip.closeEntry();
    }

    private static final class CountingOutputStream extends java.io.FilterOutputStream {
        private long count;

        CountingOutputStream(OutputStream out) {
            super(out);
        }

        long count() {
            return count;
        }

        @Override
        public void write(int b) throws IOException {
            out.write(b);
            count++;
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
            count += len;
        }
    }
}
