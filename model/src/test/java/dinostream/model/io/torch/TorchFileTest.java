package dinostream.model.io.torch;

import dinostream.model.io.DType;
import dinostream.model.io.TensorData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;
import java.util.zip.ZipOutputStream;

import static org.junit.jupiter.api.Assertions.*;

/** Fixtures: model/src/test/python/make_torch_format_fixtures.py (torch 1.13). */
class TorchFileTest {
    @TempDir
    Path dir;

    private static Path fixture(String name) {
        return Path.of("src/test/resources/torch", name);
    }

    @SuppressWarnings("unchecked")
    private static Map<Object, Object> map(Object o) {
        assertInstanceOf(LinkedHashMap.class, o);
        return (Map<Object, Object>) o;
    }

    private static TensorData floats(long[] shape, float... v) {
        return TensorData.ofFloats(shape, v);
    }

    private static long[] shape(long... s) {
        return s;
    }

    @Test
    void readsEveryValueOfTheTorchFixture() throws IOException {
        Map<Object, Object> root = map(TorchFile.read(fixture("checkpoint.pth")));
        assertEquals(List.of("model", "module", "optimizer", "epoch", "big", "loss", "nan", "flag", "off", "nothing", "name", "list",
                "tuple", "size", "args", "bytes"), new ArrayList<>(root.keySet()));

        Map<Object, Object> model = map(root.get("model"));
        assertEquals(List.of("f32", "f64", "i64", "scalar_f32", "scalar_i64", "strided", "transposed", "base", "shared_head",
                "shared_tail", "empty", "param"), new ArrayList<>(model.keySet()));
        assertEquals(floats(shape(2, 2), 1.5f, -2f, 0.25f, 3f), model.get("f32"));
        assertEquals(TensorData.ofDoubles(shape(3), new double[]{1.0 / 3.0, -0.5, 1e300}), model.get("f64"));
        assertEquals(TensorData.ofLongs(shape(3), new long[]{-(1L << 40), 7, 1L << 62}), model.get("i64"));
        assertEquals(TensorData.scalarFloat(2.5f), model.get("scalar_f32"));
        assertEquals(TensorData.scalarLong(42), model.get("scalar_i64"));
        assertEquals(floats(shape(3, 2), 1, 3, 5, 7, 9, 11), model.get("strided"));
        assertEquals(floats(shape(4, 3), 0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11), model.get("transposed"));
        assertEquals(floats(shape(3, 4), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), model.get("base"));
        assertEquals(TensorData.ofLongs(shape(2), new long[]{0, 10}), model.get("shared_head"));
        assertEquals(TensorData.ofLongs(shape(3), new long[]{30, 40, 50}), model.get("shared_tail"));
        assertEquals(TensorData.zeros(DType.F32, shape(0, 3)), model.get("empty"));
        assertEquals(floats(shape(2), 0.5f, 1.5f), model.get("param"));

        Map<Object, Object> module = map(root.get("module")); // its _metadata attribute is dropped
        assertEquals(List.of("weight", "bias"), new ArrayList<>(module.keySet()));
        assertEquals(floats(shape(1, 2), 0.5f, -1f), module.get("weight"));
        assertEquals(floats(shape(1), 2f), module.get("bias"));

        Map<Object, Object> optimizer = map(root.get("optimizer"));
        Map<Object, Object> state = map(optimizer.get("state"));
        assertEquals(List.of(0L, 1L), new ArrayList<>(state.keySet()));
        assertEquals(TensorData.scalarFloat(3f), map(state.get(0L)).get("step"));
        assertEquals(floats(shape(2), 0.125f, -0.125f), map(state.get(0L)).get("exp_avg"));
        assertEquals(floats(shape(1), 1f), map(state.get(1L)).get("exp_avg"));
        Map<Object, Object> group = new LinkedHashMap<>();
        group.put("lr", 0.0005);
        group.put("betas", List.of(0.9, 0.999));
        group.put("weight_decay", 0.04);
        group.put("amsgrad", false);
        group.put("params", List.of(0L, 1L));
        assertEquals(List.of(group), optimizer.get("param_groups"));

        assertEquals(7L, root.get("epoch"));
        assertEquals(Long.MIN_VALUE, root.get("big"));
        assertEquals(1.25, root.get("loss"));
        assertTrue(Double.isNaN((Double) root.get("nan")));
        assertEquals(true, root.get("flag"));
        assertEquals(false, root.get("off"));
        assertTrue(root.containsKey("nothing"));
        assertNull(root.get("nothing"));
        assertEquals("dino_vits16 \u00e9\u00e8 \u4e2d", root.get("name"));
        assertEquals(Arrays.asList(1L, 2.5, "three", null), root.get("list"));
        assertEquals(List.of(4L, "five"), root.get("tuple"));
        assertEquals(List.of(2L, 3L), root.get("size"));
        Map<Object, Object> args = new LinkedHashMap<>();
        args.put("arch", "vit_small");
        args.put("patch_size", 16L);
        args.put("lr", 0.0005);
        args.put("use_fp16", true);
        assertEquals(args, map(root.get("args")));
        assertArrayEquals(new byte[]{0, 1, (byte) 0xff}, (byte[]) root.get("bytes"));
    }

    @Test
    void readsBytesLikeTheFile() throws IOException {
        Path f = fixture("checkpoint.pth");
        Object fromBytes = TorchFile.read(Files.readAllBytes(f), "in-memory.pth");
        Map<Object, Object> a = map(fromBytes), b = map(TorchFile.read(f));
        assertEquals(b.get("model"), a.get("model"));
        assertEquals(b.get("optimizer"), a.get("optimizer"));
    }

    private static void assertRefused(String expected, Path file) {
        TorchFormatException e = assertThrows(TorchFormatException.class, () -> TorchFile.read(file));
        assertEquals(expected, e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
    }

    private static void assertRefused(String expected, byte[] bytes) {
        TorchFormatException e = assertThrows(TorchFormatException.class, () -> TorchFile.read(bytes, "f.pth"));
        assertEquals(expected, e.getMessage());
    }

    @Test
    void refusesClassesOutsideTheWhitelist() {
        Path f = fixture("hostile.pth");
        assertRefused(f + ": refusing to load class posix.system: a DINO checkpoint holds only tensors, dicts, lists and numbers", f);
        // GLOBAL, and STACK_GLOBAL (protocol 4) which names the class from the stack.
        String refusal = ": a DINO checkpoint holds only tensors, dicts, lists and numbers";
        assertRefused("f.pth: refusing to load class os.system" + refusal, archive(pickle("\u0080\u0002cos\nsystem\nX\u0004\u0000\u0000\u0000echo\u0085R.")));
        assertRefused("f.pth: refusing to load class os.system" + refusal,
                archive(pickle("\u0080\u0004\u008c\u0002os\u008c\u0006system\u0093X\u0004\u0000\u0000\u0000echo\u0085R.")));
        // Classes razorvine would build on its own are refused too.
        assertRefused("f.pth: refusing to load class datetime.datetime" + refusal, archive(pickle("\u0080\u0002cdatetime\ndatetime\n)R.")));
        assertRefused("f.pth: refusing to load class builtins.set" + refusal, archive(pickle("\u0080\u0002cbuiltins\nset\n]\u0085R.")));
        assertRefused("f.pth: refusing to load class __builtin__.bytearray" + refusal, archive(pickle("\u0080\u0002c__builtin__\nbytearray\n)R.")));
        assertRefused("f.pth: pickle opcode INST builds arbitrary objects; torch.save never writes it", archive(pickle("(ios\nsystem\n.")));
    }

    @Test
    void refusesOtherTensorTypes() {
        Path f = fixture("half.pth");
        assertRefused(f + ": storage type torch.HalfStorage is not supported: dinostream reads float32, float64 and int64 tensors", f);
    }

    @Test
    void readsBigEndianArchives() throws IOException {
        Map<String, Object> root = Map.of("w", TensorData.ofDoubles(shape(2), new double[]{1.5, -2}));
        Map<String, byte[]> entries = unzip(TorchFile.toBytes(root, "a"));
        entries.put("a/byteorder", "big".getBytes(StandardCharsets.US_ASCII));
        ByteBuffer le = ByteBuffer.wrap(entries.get("a/data/0")).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer be = ByteBuffer.allocate(16).order(ByteOrder.BIG_ENDIAN).putDouble(le.getDouble(0)).putDouble(le.getDouble(8));
        entries.put("a/data/0", be.array());
        assertEquals(root, TorchFile.read(zip(entries), "f.pth"));
    }

    @Test
    void refusesTheLegacyFormat() {
        Path f = fixture("legacy.pth");
        assertRefused(f + ": legacy torch format: re-save it with torch >= 1.6 (torch.save(torch.load(f), f))", f);
    }

    @Test
    void refusesBrokenArchives() throws IOException {
        Path truncated = fixture("truncated.pth");
        TorchFormatException e = assertThrows(TorchFormatException.class, () -> TorchFile.read(truncated));
        assertTrue(e.getMessage().startsWith(truncated + ": truncated or corrupt zip archive ("), e.getMessage());
        Path missing = fixture("missing_storage.pth");
        assertRefused(missing + ": missing storage checkpoint/data/1 (the archive is incomplete)", missing);

        assertRefused("f.pth: empty file, not a torch.save archive", new byte[0]);
        assertRefused("f.pth: not a torch.save file (no zip signature)", "hello".getBytes(StandardCharsets.US_ASCII));
        assertRefused("f.pth: a bare pickle, not a torch.save zip archive", pickle("\u0080\u0002}."));
        Map<String, byte[]> noPickle = new LinkedHashMap<>();
        noPickle.put("a/version", "3\n".getBytes(StandardCharsets.US_ASCII));
        assertRefused("f.pth: no a/data.pkl: the zip is not a torch.save archive", zip(noPickle));
        assertRefused("f.pth: a/data.pkl is corrupt (IOException: expected more bytes in input stream)", archive(pickle("\u0080\u0002}(X")));
    }

    @Test
    void refusesAStorageShorterThanItsTensor() throws IOException {
        Map<String, Object> root = Map.of("w", floats(shape(4), 1, 2, 3, 4));
        Map<String, byte[]> entries = unzip(TorchFile.toBytes(root, "a"));
        entries.put("a/data/0", Arrays.copyOf(entries.get("a/data/0"), 12));
        assertRefused("f.pth: storage a/data/0 holds 12 bytes, its header says 4 F32 elements (16 bytes)", zip(entries));
    }

    @Test
    void refusesAViewOutsideItsStorage() throws IOException {
        // _rebuild_tensor_v2(storage of 2 floats, offset 1, size (2,), stride (1,)): one element too far.
        String pkl = "\u0080\u0002ctorch._utils\n_rebuild_tensor_v2\n((X\u0007\u0000\u0000\u0000storagectorch\nFloatStorage\n"
                + "X\u0001\u0000\u0000\u00000X\u0003\u0000\u0000\u0000cpuK\u0002tQK\u0001K\u0002\u0085K\u0001\u0085\u0089ccollections\nOrderedDict\n)RtR.";
        Map<String, byte[]> entries = new LinkedHashMap<>();
        entries.put("a/data.pkl", pickle(pkl));
        entries.put("a/data/0", new byte[8]);
        assertRefused("f.pth: tensor of size [2], stride [1], offset 1 in storage data/0 reaches element 2, the storage holds 2 elements", zip(entries));
    }

    private static Map<String, Object> everything() {
        return everything(2500);
    }

    private static Map<String, Object> everything(int manyKeys) {
        TensorData shared = TensorData.ofLongs(shape(2), new long[]{Long.MIN_VALUE, Long.MAX_VALUE});
        Map<String, Object> model = new LinkedHashMap<>();
        model.put("w", floats(shape(2, 3), 1, -2, 3.5f, Float.NaN, Float.NEGATIVE_INFINITY, -0f));
        model.put("d", TensorData.ofDoubles(shape(1, 1, 2), new double[]{Math.PI, -1e-300}));
        model.put("step", TensorData.scalarLong(123456789012L));
        model.put("loss", TensorData.scalarFloat(0.5f));
        model.put("empty", TensorData.zeros(DType.F64, shape(3, 0)));
        model.put("a", shared);
        model.put("b", shared);
        Map<Long, Object> state = new LinkedHashMap<>();
        state.put(0L, Map.of("step", TensorData.scalarFloat(3)));
        state.put(-5L, List.of());
        state.put(1L << 40, new LinkedHashMap<>());
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("model", model);
        root.put("state", state);
        root.put("ints", Arrays.asList(0L, 255L, 256L, 65535L, 65536L, -1L, (long) Integer.MIN_VALUE, (long) Integer.MAX_VALUE,
                1L << 31, -(1L << 31) - 1, Long.MIN_VALUE, Long.MAX_VALUE));
        root.put("doubles", Arrays.asList(0.0, -0.0, 1e-310, Double.MAX_VALUE, Double.NEGATIVE_INFINITY));
        root.put("misc", Arrays.asList(true, false, null, "", "\u00e9\u4e2d\ud83d\ude00", List.of(List.of())));
        Map<String, Object> many = new LinkedHashMap<>();
        for (int i = manyKeys; i > 0; i--) many.put("k" + i, (long) i); // more than one SETITEMS batch, not sorted
        root.put("many", many);
        root.put("longList", new ArrayList<>(many.values()));
        return root;
    }

    @Test
    void roundTripsExactly() throws IOException {
        Map<String, Object> root = everything();
        Path f = dir.resolve("ckpt.pth");
        TorchFile.write(f, root);
        Object back = TorchFile.read(f);
        assertEquals(root, back);
        assertEquals(new ArrayList<>(((Map<?, ?>) root.get("many")).keySet()), new ArrayList<>(map(map(back).get("many")).keySet()));
        assertTrue(Double.isNaN(((TensorData) map(map(back).get("model")).get("w")).toFloatArray()[3]));
        assertArrayEquals(Files.readAllBytes(f), TorchFile.toBytes(root, "ckpt"));
        try (var files = Files.list(dir)) {
            assertEquals(List.of(f), files.toList(), "no temporary file is left");
        }
        // Integer values and keys are written as ints and read back as Long.
        Map<Object, Object> ints = new LinkedHashMap<>();
        ints.put(3, 4);
        assertEquals(Map.of(3L, 4L), TorchFile.read(TorchFile.toBytes(Map.of("x", ints), "a"), "a.pth") instanceof Map<?, ?> m ? m.get("x") : null);
    }

    @Test
    void writesDeterministicAlignedRecords() throws IOException {
        byte[] a = TorchFile.toBytes(everything(), "archive");
        assertArrayEquals(a, TorchFile.toBytes(everything(), "archive"));
        // Walk the local headers: each record's data starts on a 64-byte boundary, as torch writes.
        ByteBuffer b = ByteBuffer.wrap(a).order(ByteOrder.LITTLE_ENDIAN);
        List<String> names = new ArrayList<>();
        int at = 0;
        while (b.getInt(at) == 0x04034b50) {
            int size = b.getInt(at + 18), nameLen = b.getShort(at + 26) & 0xffff, extraLen = b.getShort(at + 28) & 0xffff;
            names.add(new String(a, at + 30, nameLen, StandardCharsets.UTF_8));
            int data = at + 30 + nameLen + extraLen;
            assertEquals(0, data % 64, names.get(names.size() - 1));
            at = data + size;
        }
        assertEquals(List.of("archive/data.pkl", "archive/byteorder", "archive/data/0", "archive/data/1", "archive/data/2",
                "archive/data/3", "archive/data/4", "archive/data/5", "archive/data/6", "archive/version"), names);
    }

    /**
     * java_written.pth is what check_torch_load.py loads with torch.load(weights_only=True); the
     * writer must keep producing it byte for byte. java_written_nofloat.pth drops the Python
     * floats, which torch 1.13's weights-only unpickler cannot read at all (no BINFLOAT opcode,
     * not even in files torch saves itself). Regenerate with -Dtorch.golden.update=true.
     */
    @Test
    void writesTheGoldenFilesTorchLoads() throws IOException {
        Map<String, Object> noFloat = everything(1001);
        noFloat.remove("doubles");
        assertGolden("java_written", everything(1001));
        assertGolden("java_written_nofloat", noFloat);
    }

    private static void assertGolden(String archive, Map<String, Object> root) throws IOException {
        byte[] bytes = TorchFile.toBytes(root, archive);
        Path golden = fixture(archive + ".pth");
        if (Boolean.getBoolean("torch.golden.update")) Files.write(golden, bytes);
        assertArrayEquals(Files.readAllBytes(golden), bytes, golden.toString());
        assertEquals(root, TorchFile.read(golden));
    }

    @Test
    void writeRefusesValuesItCannotWrite() {
        Path f = dir.resolve("bad.pth");
        Map<String, Object> bad = Map.of("x", List.of(new Object()));
        assertThrows(IllegalArgumentException.class, () -> TorchFile.write(f, bad));
        assertFalse(Files.exists(f));
        Map<Object, Object> badKey = new LinkedHashMap<>();
        badKey.put(1.5, 1L);
        assertThrows(IllegalArgumentException.class, () -> TorchFile.toBytes(badKey, "a"));
        Map<String, Object> cyclic = new LinkedHashMap<>();
        cyclic.put("self", cyclic);
        assertThrows(IllegalArgumentException.class, () -> TorchFile.toBytes(cyclic, "a"));
        assertThrows(IllegalArgumentException.class, () -> TorchFile.toBytes(Map.of(), "a/b"));
    }

    // --- helpers: hand-made archives ---

    /** A pickle spelled with chars 0..255, one byte each. */
    private static byte[] pickle(String s) {
        return s.getBytes(StandardCharsets.ISO_8859_1);
    }

    private static byte[] archive(byte[] dataPkl) {
        Map<String, byte[]> entries = new LinkedHashMap<>();
        entries.put("a/data.pkl", dataPkl);
        entries.put("a/version", "3\n".getBytes(StandardCharsets.US_ASCII));
        return zip(entries);
    }

    private static byte[] zip(Map<String, byte[]> entries) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (ZipOutputStream z = new ZipOutputStream(out)) {
            for (Map.Entry<String, byte[]> e : entries.entrySet()) {
                z.putNextEntry(new ZipEntry(e.getKey()));
                z.write(e.getValue());
                z.closeEntry();
            }
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        return out.toByteArray();
    }

    private static Map<String, byte[]> unzip(byte[] bytes) throws IOException {
        Map<String, byte[]> entries = new LinkedHashMap<>();
        try (InputStream in = new ByteArrayInputStream(bytes); ZipInputStream z = new ZipInputStream(in)) {
            for (ZipEntry e; (e = z.getNextEntry()) != null; ) entries.put(e.getName(), z.readAllBytes());
        }
        return entries;
    }
}
