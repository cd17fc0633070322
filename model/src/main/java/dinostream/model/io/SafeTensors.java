package dinostream.model.io;

import com.fasterxml.jackson.core.JsonFactoryBuilder;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.SerializableString;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.io.CharacterEscapes;
import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.core.util.MinimalPrettyPrinter;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * Reads and writes the safetensors format: an unsigned 64-bit little-endian header length, a JSON
 * header ({@code __metadata__} with string values, then per tensor {@code dtype}, {@code shape},
 * {@code data_offsets} relative to the data section), then the raw little-endian data.
 *
 * <p>The writer produces the same bytes as {@code write_safetensors} of
 * the PyTorch reference (model/docs/state-format.md, "safetensors"): tensors sorted by name (code-point order, as Python sorts
 * strings) and stored back to back in that order, the header formatted like Python's
 * {@code json.dumps} defaults, padded with spaces to a multiple of 8 so the data stays aligned.
 */
public final class SafeTensors {
    private SafeTensors() {}

    /** The header size the Rust reference implementation accepts; larger means a corrupt length. */
    static final long MAX_HEADER_BYTES = 100_000_000L;

    static final String METADATA_KEY = "__metadata__";

    private static final ObjectMapper JSON = new ObjectMapper(new JsonFactoryBuilder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(JsonWriteFeature.ESCAPE_NON_ASCII)
            .disable(JsonWriteFeature.WRITE_HEX_UPPER_CASE)
            .characterEscapes(new PythonAsciiEscapes())
            .build())
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private static final ObjectWriter HEADER_WRITER = JSON.writer(new PythonJsonSeparators());

    /** Python's string order: by Unicode code point (String.compareTo orders UTF-16 units). */
    static final Comparator<String> CODE_POINT_ORDER = (a, b) -> {
        int i = 0, j = 0;
        while (i < a.length() && j < b.length()) {
            int ca = a.codePointAt(i), cb = b.codePointAt(j);
            if (ca != cb) return Integer.compare(ca, cb);
            i += Character.charCount(ca);
            j += Character.charCount(cb);
        }
        return Boolean.compare(i < a.length(), j < b.length());
    };

    /**
     * Reads a file. Tensor data is memory-mapped read-only (direct buffers, no copy), one mapping
     * per tensor so no single mapping hits the 2 GiB buffer limit. The mappings stay valid after a
     * later {@link #write} replaces the file, because that write renames a new file over it.
     *
     * @throws IllegalArgumentException a one-line description naming the file (and the tensor) when
     *     the content is not a valid safetensors file of F32/F64/I64 tensors
     */
    public static SafeTensorsFile read(Path path) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            return parse(path, ch.size(), (buf, pos) -> readFully(ch, buf, pos),
                    (pos, len) -> ch.map(FileChannel.MapMode.READ_ONLY, pos, len));
        }
    }

    /** Reads safetensors bytes held in memory (a checkpointed state); {@code source} names them in errors. */
    public static SafeTensorsFile read(byte[] bytes, String source) {
        ByteBuffer all = ByteBuffer.wrap(bytes);
        try {
            return parse(source, bytes.length, (buf, pos) -> {
                if (pos + buf.remaining() > bytes.length) throw new IOException("unexpected end of data");
                buf.put(all.duplicate().position((int) pos).limit((int) pos + buf.remaining()));
            }, (pos, len) -> all.duplicate().position((int) pos).limit((int) (pos + len)).slice());
        } catch (IOException e) {
            throw invalid(source, e.getMessage());
        }
    }

    private interface ReadAt {
        void read(ByteBuffer dst, long position) throws IOException;
    }

    private interface SliceAt {
        ByteBuffer slice(long position, long length) throws IOException;
    }

    private static SafeTensorsFile parse(Object path, long size, ReadAt readAt, SliceAt sliceAt) throws IOException {
        if (size < 8) throw invalid(path, "truncated: " + size + " bytes, shorter than the 8-byte header length");
        ByteBuffer prefix = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readAt.read(prefix, 0);
        long headerLen = prefix.getLong(0);
        if (headerLen < 0 || headerLen > size - 8) {
            throw invalid(path, "truncated: header length " + Long.toUnsignedString(headerLen)
                    + " exceeds the " + (size - 8) + " bytes after the length prefix");
        }
        if (headerLen > MAX_HEADER_BYTES) {
            throw invalid(path, "header length " + headerLen + " is over the " + MAX_HEADER_BYTES + "-byte limit");
        }
        ByteBuffer header = ByteBuffer.allocate((int) headerLen);
        readAt.read(header, 8);
        JsonNode root;
        try {
            root = JSON.readTree(header.array());
        } catch (JsonProcessingException e) {
            throw invalid(path, "header is not valid JSON: " + oneLine(e.getOriginalMessage()));
        }
        if (root == null || !root.isObject()) throw invalid(path, "header is not a JSON object");

        long dataStart = 8 + headerLen, dataLen = size - dataStart;
        Map<String, String> metadata = new LinkedHashMap<>();
        List<Entry> entries = new ArrayList<>();
        for (Map.Entry<String, JsonNode> f : root.properties()) {
            if (f.getKey().equals(METADATA_KEY)) {
                readMetadata(path, f.getValue(), metadata);
            } else {
                entries.add(parseEntry(path, f.getKey(), f.getValue(), dataLen));
            }
        }
        checkNoOverlap(path, entries);

        Map<String, TensorData> tensors = new LinkedHashMap<>();
        for (Entry e : entries) {
            long len = e.end - e.begin;
            ByteBuffer bytes = len == 0 ? ByteBuffer.allocateDirect(0) : sliceAt.slice(dataStart + e.begin, len);
            tensors.put(e.name, TensorData.wrap(e.dtype, e.shape, bytes));
        }
        return new SafeTensorsFile(Collections.unmodifiableMap(tensors), Collections.unmodifiableMap(metadata));
    }

    /**
     * Writes {@code tensors} and {@code metadata} atomically: the bytes go to a temporary file in
     * the same folder, are forced to disk, and the file is renamed over {@code path}, so a reader
     * (or a crash) sees the old file or the new one, never a partial one.
     */
    public static void write(Path path, Map<String, TensorData> tensors, Map<String, String> metadata) throws IOException {
        List<String> names = sortedNames(tensors);
        byte[] header = header(names, tensors, metadata);

        Path target = path.toAbsolutePath();
        Path dir = target.getParent();
        Path tmp = dir.resolve("." + target.getFileName() + "." + UUID.randomUUID() + ".tmp");
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                writeTo(ch, names, header, tensors);
                ch.force(true);
            }
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(tmp);
        }
        forceDirectory(dir);
    }

    /** The file's bytes in memory (a state checkpointed into Flink, a snapshot streamed to a file system). */
    public static byte[] toBytes(Map<String, ? extends TensorSource> tensors, Map<String, String> metadata) {
        List<String> names = sortedNames(tensors);
        byte[] header = header(names, tensors, metadata);
        long size = 8L + header.length;
        for (String n : names) size += tensors.get(n).byteSize();
        if (size > Integer.MAX_VALUE - 16) throw new IllegalArgumentException("state of " + size + " bytes does not fit one array");
        byte[] bytes = new byte[(int) size];
        ByteBuffer out = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(header.length).put(header);
        for (String n : names) {
            int end = out.position() + (int) tensors.get(n).byteSize();
            tensors.get(n).copyTo(out);
            if (out.position() != end) throw new IllegalStateException("tensor " + n + " wrote " + (out.position() - end + tensors.get(n).byteSize()) + " bytes");
        }
        return bytes;
    }

    private static List<String> sortedNames(Map<String, ? extends TensorSource> tensors) {
        List<String> names = new ArrayList<>(tensors.keySet());
        for (String n : names) {
            if (n == null || n.equals(METADATA_KEY)) throw new IllegalArgumentException("invalid tensor name " + n);
            if (tensors.get(n) == null) throw new IllegalArgumentException("tensor " + n + " is null");
        }
        names.sort(CODE_POINT_ORDER);
        return names;
    }

    private static void writeTo(java.nio.channels.WritableByteChannel ch, List<String> names, byte[] header,
                                Map<String, TensorData> tensors) throws IOException {
        writeFully(ch, ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length));
        writeFully(ch, ByteBuffer.wrap(header));
        for (String n : names) writeFully(ch, tensors.get(n).data());
    }

    /** The padded header bytes for tensors written in {@code sortedNames} order. */
    static byte[] header(List<String> sortedNames, Map<String, ? extends TensorSource> tensors, Map<String, String> metadata) {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode meta = root.putObject(METADATA_KEY);
        metadata.forEach((k, v) -> {
            if (k == null || v == null) throw new IllegalArgumentException("metadata " + k + " = " + v + ": null is not allowed");
            meta.put(k, v);
        });
        long offset = 0;
        for (String n : sortedNames) {
            TensorSource t = tensors.get(n);
            ObjectNode e = root.putObject(n);
            e.put("dtype", t.dtype().safetensorsName());
            ArrayNode shape = e.putArray("shape");
            for (long d : t.shape()) shape.add(d);
            e.putArray("data_offsets").add(offset).add(offset + t.byteSize());
            offset += t.byteSize();
        }
        byte[] json;
        try {
            json = HEADER_WRITER.writeValueAsBytes(root);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot encode a safetensors header", e);
        }
        int padded = (json.length + 7) / 8 * 8;
        byte[] out = Arrays.copyOf(json, padded);
        Arrays.fill(out, json.length, padded, (byte) ' ');
        return out;
    }

    private record Entry(String name, DType dtype, long[] shape, long begin, long end) {}

    private static void readMetadata(Object path, JsonNode node, Map<String, String> out) {
        if (!node.isObject()) throw invalid(path, METADATA_KEY + " is not a JSON object");
        for (Map.Entry<String, JsonNode> m : node.properties()) {
            if (!m.getValue().isTextual()) {
                throw invalid(path, METADATA_KEY + " value '" + m.getKey() + "' is not a string");
            }
            out.put(m.getKey(), m.getValue().textValue());
        }
    }

    private static Entry parseEntry(Object path, String name, JsonNode node, long dataLen) {
        if (!node.isObject()) throw invalidTensor(path, name, "entry is not a JSON object");
        JsonNode dt = node.get("dtype");
        if (dt == null || !dt.isTextual()) throw invalidTensor(path, name, "missing dtype");
        DType dtype = DType.fromSafetensorsName(dt.textValue());
        if (dtype == null) {
            throw invalidTensor(path, name, "unsupported dtype '" + dt.textValue() + "' (supported: F32, F64, I64)");
        }
        long[] shape = nonNegativeLongs(path, name, "shape", node.get("shape"));
        long[] offsets = nonNegativeLongs(path, name, "data_offsets", node.get("data_offsets"));
        if (offsets.length != 2) throw invalidTensor(path, name, "data_offsets must hold 2 numbers, not " + offsets.length);
        long begin = offsets[0], end = offsets[1];
        String span = "data_offsets [" + begin + ", " + end + "]";
        if (end < begin) throw invalidTensor(path, name, span + " end before they begin");
        if (end > dataLen) {
            throw invalidTensor(path, name, span + " reach past the " + dataLen + "-byte data section (file truncated?)");
        }
        long need;
        try {
            need = TensorData.byteSize(dtype, shape);
        } catch (ArithmeticException e) {
            throw invalidTensor(path, name, "shape " + Arrays.toString(shape) + " is too large");
        }
        if (end - begin != need) {
            throw invalidTensor(path, name, span + " hold " + (end - begin) + " bytes but " + dtype
                    + Arrays.toString(shape) + " needs " + need);
        }
        if (need > Integer.MAX_VALUE) throw invalidTensor(path, name, "tensor is larger than 2 GiB");
        return new Entry(name, dtype, shape, begin, end);
    }

    private static long[] nonNegativeLongs(Object path, String name, String field, JsonNode node) {
        if (node == null || !node.isArray()) throw invalidTensor(path, name, "missing " + field + " array");
        long[] out = new long[node.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
                List<String> items = new ArrayList<>();
                node.forEach(x -> items.add(x.toString()));
                throw invalidTensor(path, name, field + " [" + String.join(", ", items) + "] must hold non-negative integers");
            }
            out[i] = v.longValue();
        }
        return out;
    }

    private static void checkNoOverlap(Object path, List<Entry> entries) {
        List<Entry> byStart = new ArrayList<>(entries);
        byStart.removeIf(e -> e.begin == e.end); // empty tensors occupy no bytes
        byStart.sort(Comparator.comparingLong(Entry::begin));
        for (int i = 1; i < byStart.size(); i++) {
            Entry prev = byStart.get(i - 1), cur = byStart.get(i);
            if (cur.begin < prev.end) {
                throw invalidTensor(path, cur.name, "data_offsets [" + cur.begin + ", " + cur.end + "] overlap tensor '"
                        + prev.name + "' [" + prev.begin + ", " + prev.end + "]");
            }
        }
    }

    private static IllegalArgumentException invalid(Object path, String problem) {
        return new IllegalArgumentException(path + ": " + problem);
    }

    private static IllegalArgumentException invalidTensor(Object path, String name, String problem) {
        return invalid(path, "tensor '" + name + "': " + problem);
    }

    private static String oneLine(String s) {
        return s == null ? "" : s.replaceAll("\\s*[\\r\\n]+\\s*", " ").trim();
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long position) throws IOException {
        while (buf.hasRemaining()) {
            int n = ch.read(buf, position + buf.position());
            if (n < 0) throw new IOException("unexpected end of file");
        }
    }

    private static void writeFully(java.nio.channels.WritableByteChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) ch.write(buf);
    }

    /** Makes the rename durable; not every platform can open a folder, and there it is skipped. */
    private static void forceDirectory(Path dir) {
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        } catch (IOException | UnsupportedOperationException e) {
            // The file itself is already complete on disk; only the rename's durability is best-effort.
        }
    }

    /** Python's json.dumps separators: ", " between items, ": " after keys. */
    private static final class PythonJsonSeparators extends MinimalPrettyPrinter {
        @Override
        public void writeObjectFieldValueSeparator(JsonGenerator g) throws IOException {
            g.writeRaw(": ");
        }

        @Override
        public void writeObjectEntrySeparator(JsonGenerator g) throws IOException {
            g.writeRaw(", ");
        }

        @Override
        public void writeArrayValueSeparator(JsonGenerator g) throws IOException {
            g.writeRaw(", ");
        }
    }

    /** Python's ensure_ascii also escapes DEL (0x7f); Jackson's standard table does not. */
    private static final class PythonAsciiEscapes extends CharacterEscapes {
        private final int[] ascii;

        PythonAsciiEscapes() {
            ascii = standardAsciiEscapesForJSON();
            ascii[0x7f] = ESCAPE_STANDARD;
        }

        @Override
        public int[] getEscapeCodesForAscii() {
            return ascii;
        }

        @Override
        public SerializableString getEscapeSequence(int ch) {
            return null;
        }
    }
}
