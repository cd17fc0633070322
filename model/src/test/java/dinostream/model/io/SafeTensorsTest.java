package dinostream.model.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

class SafeTensorsTest {
    @TempDir
    Path dir;

    /**
     * The bytes the PyTorch reference's write_safetensors produces (model/docs/state-format.md,
     * "safetensors"): u64 LE length, json.dumps header, space padding, data.
     */
    private static byte[] file(String headerJson, byte[] data) {
        byte[] h = headerJson.getBytes(StandardCharsets.UTF_8);
        int padded = (h.length + 7) / 8 * 8;
        ByteBuffer b = ByteBuffer.allocate(8 + padded + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(padded).put(h);
        for (int i = h.length; i < padded; i++) b.put((byte) ' ');
        b.put(data);
        return b.array();
    }

    private static byte[] le(Object... values) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (Object v : values) {
            ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            if (v instanceof Float f) b.putFloat(f);
            else if (v instanceof Double d) b.putDouble(d);
            else b.putLong((Long) v);
            out.write(b.array(), 0, b.position());
        }
        return out.toByteArray();
    }

    private static final String TINY_HEADER = "{\"__metadata__\": {\"format\": \"x/1\"}, "
            + "\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
            + "\"b\": {\"dtype\": \"I64\", \"shape\": [], \"data_offsets\": [8, 16]}}";

    @Test
    void readsAHandAssembledFile() throws IOException {
        Path p = dir.resolve("tiny.safetensors");
        Files.write(p, file(TINY_HEADER, le(1.5f, -2f, 7L)));
        SafeTensorsFile f = SafeTensors.read(p);
        assertEquals(List.of("a", "b"), new ArrayList<>(f.tensors().keySet()));
        assertEquals(Map.of("format", "x/1"), f.metadata());
        TensorData a = f.tensors().get("a");
        assertEquals(DType.F32, a.dtype());
        assertArrayEquals(new long[]{2}, a.shape());
        assertArrayEquals(new float[]{1.5f, -2f}, a.toFloatArray());
        assertTrue(a.asFloatBuffer().isDirect(), "file data is mapped, not copied to the heap");
        TensorData b = f.tensors().get("b");
        assertEquals(0, b.rank());
        assertEquals(7L, b.longValue());
    }

    @Test
    void writesTheReferenceWritersBytes() throws IOException {
        Path p = dir.resolve("w.safetensors");
        Map<String, TensorData> t = new LinkedHashMap<>();
        t.put("b", TensorData.scalarLong(7));  // given out of order: the writer sorts
        t.put("a", TensorData.ofFloats(new long[]{2}, new float[]{1.5f, -2f}));
        SafeTensors.write(p, t, Map.of("format", "x/1"));
        assertArrayEquals(file(TINY_HEADER, le(1.5f, -2f, 7L)), Files.readAllBytes(p));
    }

    @Test
    void roundTripIsBitExactWithMetadataAndScalars() throws IOException {
        Map<String, TensorData> t = new LinkedHashMap<>();
        t.put("student/w", TensorData.ofFloats(new long[]{2, 3}, new float[]{Float.MIN_VALUE, -0f, 1e30f, Float.NaN, 3, -4}));
        t.put("x64", TensorData.ofDoubles(new long[]{2}, new double[]{Math.PI, -1e-300}));
        t.put("step", TensorData.scalarLong(Long.MAX_VALUE));
        t.put("loss", TensorData.scalarFloat(4.125f));
        t.put("empty", TensorData.zeros(DType.F32, new long[]{0, 4}));
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("config", "{\"dim\": 32, \"note\": \"caf\u00e9 \\\"q\\\" \\n\"}");
        meta.put("format", "dinostream/1");
        Path p = dir.resolve("rt.safetensors");
        SafeTensors.write(p, t, meta);
        SafeTensorsFile f = SafeTensors.read(p);
        assertEquals(List.of("empty", "loss", "step", "student/w", "x64"), new ArrayList<>(f.tensors().keySet()),
                "file order is sorted order");
        for (Map.Entry<String, TensorData> e : t.entrySet()) assertEquals(e.getValue(), f.tensors().get(e.getKey()), e.getKey());
        assertEquals(meta, f.metadata());
        assertEquals(List.of("config", "format"), new ArrayList<>(f.metadata().keySet()));
        long headerLen = ByteBuffer.wrap(Files.readAllBytes(p), 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, headerLen % 8, "header padded so the data section starts 8-aligned");
        assertEquals(8 + headerLen + 6 * 4 + 2 * 8 + 8 + 4, Files.size(p), "data stored back to back");
    }

    @Test
    void headerEscapesLikePythonJsonDumps() {
        Map<String, TensorData> t = Map.of("k", TensorData.scalarLong(1));
        byte[] h = SafeTensors.header(List.of("k"), t, Map.of("m", "\u00e9\"\\\n\t\u007f\u0001/\uD83D\uDE00"));
        String s = new String(h, StandardCharsets.US_ASCII);
        assertTrue(s.startsWith("{\"__metadata__\": {\"m\": \"\\u00e9\\\"\\\\\\n\\t\\u007f\\u0001/\\ud83d\\ude00\"}, "), s);
        assertEquals(0, h.length % 8);
    }

    @Test
    void sortsNamesByCodePointLikePython() {
        List<String> names = new ArrayList<>(List.of("b", "\uD83D\uDE00", "a.1", "\uE000", "B", "a"));
        names.sort(SafeTensors.CODE_POINT_ORDER);
        assertEquals(List.of("B", "a", "a.1", "b", "\uE000", "\uD83D\uDE00"), names,
                "a supplementary character sorts after U+E000, unlike String.compareTo");
    }

    @Test
    void writeReplacesAtomicallyAndLeavesNoTemporaryFile() throws IOException {
        Path p = dir.resolve("s.safetensors");
        SafeTensors.write(p, Map.of("a", TensorData.ofFloats(new long[]{1}, new float[]{1})), Map.of());
        TensorData mapped = SafeTensors.read(p).tensors().get("a");
        SafeTensors.write(p, Map.of("a", TensorData.ofFloats(new long[]{1}, new float[]{2})), Map.of());
        assertArrayEquals(new float[]{2}, SafeTensors.read(p).tensors().get("a").toFloatArray());
        assertArrayEquals(new float[]{1}, mapped.toFloatArray(), "a mapping of the replaced file keeps its content");
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(List.of(p), s.toList());
        }
    }

    @Test
    void failedWriteRemovesItsTemporaryFile() throws IOException {
        Path target = dir.resolve("d.safetensors");
        Files.createDirectory(target);
        Files.writeString(target.resolve("keep"), "x");
        assertThrows(IOException.class, () -> SafeTensors.write(target, Map.of("a", TensorData.scalarLong(1)), Map.of()));
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(List.of(target), s.toList());
        }
        assertThrows(IllegalArgumentException.class,
                () -> SafeTensors.write(dir.resolve("m.safetensors"), Map.of("__metadata__", TensorData.scalarLong(1)), Map.of()));
    }

    private String readError(String name, byte[] bytes) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, bytes);
        String m = assertThrows(IllegalArgumentException.class, () -> SafeTensors.read(p)).getMessage();
        assertTrue(m.startsWith(p + ": "), m);
        assertFalse(m.contains("\n"), "one line: " + m);
        return m.substring(p.toString().length() + 2);
    }

    private static String tensor(String name, String dtype, String shape, String offsets) {
        return "\"" + name + "\": {\"dtype\": \"" + dtype + "\", \"shape\": " + shape + ", \"data_offsets\": " + offsets + "}";
    }

    @Test
    void rejectsATruncatedLengthPrefix() throws IOException {
        assertEquals("truncated: 5 bytes, shorter than the 8-byte header length", readError("t.safetensors", new byte[5]));
    }

    @Test
    void rejectsAHeaderLengthBeyondTheFile() throws IOException {
        byte[] f = file(TINY_HEADER, le(1.5f, -2f, 7L));
        byte[] cut = java.util.Arrays.copyOf(f, 40);
        assertEquals("truncated: header length " + (f.length - 8 - 16) + " exceeds the 32 bytes after the length prefix",
                readError("h.safetensors", cut));
        byte[] huge = le(-1L);
        assertEquals("truncated: header length 18446744073709551615 exceeds the 0 bytes after the length prefix",
                readError("u.safetensors", huge));
    }

    @Test
    void rejectsBadJson() throws IOException {
        String m = readError("j.safetensors", file("{\"a\": {\"dtype\": \"F32\",", new byte[0]));
        assertTrue(m.startsWith("header is not valid JSON: "), m);
        assertTrue(readError("j2.safetensors", file("[1, 2]", new byte[0])).equals("header is not a JSON object"));
        assertTrue(readError("j3.safetensors", file("{\"a\": 1} x", new byte[0])).startsWith("header is not valid JSON: "));
        String dup = readError("j4.safetensors", file("{" + tensor("a", "F32", "[]", "[0, 4]") + ", "
                + tensor("a", "F32", "[]", "[4, 8]") + "}", new byte[8]));
        assertTrue(dup.startsWith("header is not valid JSON: Duplicate field 'a'"), dup);
    }

    @Test
    void rejectsAnUnknownDtypeNamingIt() throws IOException {
        assertEquals("tensor 'w': unsupported dtype 'BF16' (supported: F32, F64, I64)",
                readError("d.safetensors", file("{" + tensor("w", "BF16", "[2]", "[0, 4]") + "}", new byte[4])));
    }

    @Test
    void rejectsOffsetsOutOfRange() throws IOException {
        assertEquals("tensor 'w': data_offsets [0, 12] reach past the 8-byte data section (file truncated?)",
                readError("r.safetensors", file("{" + tensor("w", "F32", "[3]", "[0, 12]") + "}", new byte[8])));
        assertEquals("tensor 'w': data_offsets [8, 4] end before they begin",
                readError("r2.safetensors", file("{" + tensor("w", "F32", "[1]", "[8, 4]") + "}", new byte[8])));
        assertEquals("tensor 'w': data_offsets [-4, 4] must hold non-negative integers",
                readError("r3.safetensors", file("{" + tensor("w", "F32", "[2]", "[-4, 4]") + "}", new byte[8])));
    }

    @Test
    void rejectsOverlappingTensors() throws IOException {
        String h = "{" + tensor("a", "F32", "[2]", "[0, 8]") + ", " + tensor("b", "F32", "[2]", "[4, 12]") + "}";
        assertEquals("tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]", readError("o.safetensors", file(h, new byte[12])));
    }

    @Test
    void rejectsASizeThatDoesNotMatchTheShape() throws IOException {
        assertEquals("tensor 'w': data_offsets [0, 8] hold 8 bytes but F32[3] needs 12",
                readError("s.safetensors", file("{" + tensor("w", "F32", "[3]", "[0, 8]") + "}", new byte[12])));
        assertEquals("tensor 'w': shape [2.5] must hold non-negative integers",
                readError("s2.safetensors", file("{" + tensor("w", "F32", "[2.5]", "[0, 8]") + "}", new byte[8])));
    }

    @Test
    void rejectsNonStringMetadata() throws IOException {
        assertEquals("__metadata__ value 'n' is not a string",
                readError("m.safetensors", file("{\"__metadata__\": {\"n\": 3}}", new byte[0])));
    }
}
