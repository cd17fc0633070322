package dinostream.model.io;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.ParamSpec;
import dinostream.model.dino.Presets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class DinoStateTest {
    @TempDir
    Path dir;

    private static DinoConfig test() {
        return Presets.get("test");
    }

    /**
     * json.dumps(asdict(Cfg(**PRESETS["test"]))) as the PyTorch reference (outside this repository)
     * writes it; model/docs/state-format.md, "Metadata".
     */
    private static final String REFERENCE_CONFIG = "{\"img_size\": 16, \"patch\": 4, \"in_chans\": 1, \"dim\": 32, "
            + "\"depth\": 2, \"heads\": 2, \"mlp_ratio\": 4.0, \"qkv_bias\": true, \"ln_eps\": 1e-06, \"drop_path\": 0.0, "
            + "\"out_dim\": 64, \"head_hidden\": 48, \"bottleneck\": 16, \"norm_last_layer\": true, \"n_local\": 2, "
            + "\"student_temp\": 0.1, \"center_momentum\": 0.9, \"clip_grad\": 3.0, \"freeze_last_layer\": 1, "
            + "\"beta1\": 0.9, \"beta2\": 0.999, \"adam_eps\": 1e-08}";

    @Test
    void keyLayoutMatchesTheReference() {
        DinoConfig c = test();
        List<ParamSpec> params = ParamSpec.of(c);
        List<String> keys = DinoState.stateKeys(c);
        int p = params.size();
        int trainable = (int) params.stream().filter(ParamSpec::trainable).count();
        assertEquals(p - 1, trainable, "weight_g is frozen with norm_last_layer");
        assertEquals(2 * p + 3 * trainable + 2, keys.size());
        assertEquals("student/backbone.cls_token", keys.get(0));
        assertEquals("student/head.last_layer.weight_v", keys.get(p - 1));
        assertEquals("teacher/backbone.cls_token", keys.get(p));
        assertEquals(List.of("optim/exp_avg/backbone.cls_token", "optim/exp_avg_sq/backbone.cls_token",
                "optim/step/backbone.cls_token"), keys.subList(2 * p, 2 * p + 3));
        assertEquals(List.of("center", "step"), keys.subList(keys.size() - 2, keys.size()));
        assertTrue(keys.contains("teacher/head.last_layer.weight_g"));
        assertFalse(keys.contains("optim/exp_avg/head.last_layer.weight_g"));
        assertFalse(keys.contains("optim/step/head.last_layer.weight_g"));

        c.normLastLayer = false;
        List<String> open = DinoState.stateKeys(c);
        assertEquals(keys.size() + 3, open.size());
        assertTrue(open.contains("optim/exp_avg_sq/head.last_layer.weight_g"));

        Map<String, DinoState.KeySpec> specs = new LinkedHashMap<>();
        DinoState.stateSpecs(test()).forEach(s -> specs.put(s.key(), s));
        assertArrayEquals(new long[]{1, 64}, specs.get("center").shape());
        assertArrayEquals(new long[0], specs.get("step").shape());
        assertEquals(DType.I64, specs.get("optim/step/backbone.norm.bias").dtype());
        assertArrayEquals(new long[]{1, 17, 32}, specs.get("optim/exp_avg/backbone.pos_embed").shape());
    }

    @Test
    void initIsDeterministicPerSeedWithTeacherEqualToStudent() {
        DinoState a = DinoState.init(test(), 7), b = DinoState.init(test(), 7), other = DinoState.init(test(), 8);
        assertEquals(DinoState.stateKeys(test()), new ArrayList<>(a.tensors().keySet()));
        for (String k : a.tensors().keySet()) assertEquals(a.get(k), b.get(k), k);
        for (ParamSpec p : ParamSpec.of(test())) {
            assertEquals(a.get("student/" + p.name()), a.get("teacher/" + p.name()), p.name());
            boolean random = p.init() == ParamSpec.Init.TRUNC_NORMAL_002 || p.init() == ParamSpec.Init.UNIFORM_FAN_IN;
            assertEquals(!random, a.get("student/" + p.name()).equals(other.get("student/" + p.name())), p.name());
            if (p.trainable()) {
                assertEquals(0, a.get("optim/step/" + p.name()).longValue());
                for (String m : List.of("optim/exp_avg/", "optim/exp_avg_sq/")) {
                    for (float v : a.get(m + p.name()).toFloatArray()) assertEquals(0f, v, m + p.name());
                }
            }
        }
        for (float v : a.get("center").toFloatArray()) assertEquals(0f, v);
        assertEquals(0, a.step());
        assertNotEquals(a.get("student/backbone.blocks.0.attn.qkv.weight"), a.get("student/backbone.blocks.1.attn.qkv.weight"),
                "each parameter has its own stream");
    }

    @Test
    void addingAParameterDoesNotShiftTheOthers() {
        DinoConfig deeper = test();
        deeper.depth = 3;
        DinoState a = DinoState.init(test(), 3), b = DinoState.init(deeper, 3);
        for (String k : a.tensors().keySet()) {
            if (b.tensors().containsKey(k) && k.startsWith("student/")) assertEquals(a.get(k), b.get(k), k);
        }
    }

    @Test
    void initValuesFollowTheDinoRecipe() {
        DinoConfig c = test();
        c.headHidden = 256; // head.mlp.2.weight: 65536 draws, enough for a tight std estimate
        DinoState s = DinoState.init(c, 0);
        double[] w = s.get("student/head.mlp.2.weight").toDoubleArray();
        double sum = 0, sq = 0, max = 0;
        for (double v : w) {
            sum += v;
            sq += v * v;
            max = Math.max(max, Math.abs(v));
        }
        double mean = sum / w.length, std = Math.sqrt(sq / w.length - mean * mean);
        assertEquals(0.02, std, 0.002, "trunc_normal std");
        assertEquals(0, mean, 0.001);
        assertTrue(max <= 2.0 && max > 0.06, "within the cut-offs, and not squeezed: " + max);

        float[] patch = s.get("student/backbone.patch_embed.proj.weight").toFloatArray();
        float bound = (float) (1 / Math.sqrt(c.inChans * c.patch * c.patch)); // 0.25
        double var = 0, top = 0;
        for (float v : patch) {
            assertTrue(Math.abs(v) <= bound, "U(-1/sqrt(fan_in), 1/sqrt(fan_in)): " + v);
            var += (double) v * v;
            top = Math.max(top, Math.abs(v));
        }
        assertTrue(top > 0.9 * bound, "fills the interval: " + top);
        assertEquals(bound * bound / 3, var / patch.length, 0.25 * bound * bound / 3, "uniform variance");
        for (float v : s.get("student/backbone.patch_embed.proj.bias").toFloatArray()) assertTrue(Math.abs(v) <= bound);
        float vBound = (float) (1 / Math.sqrt(c.bottleneck));
        for (float v : s.get("student/head.last_layer.weight_v").toFloatArray()) assertTrue(Math.abs(v) <= vBound);

        for (float v : s.get("student/head.last_layer.weight_g").toFloatArray()) assertEquals(1f, v);
        for (float v : s.get("student/backbone.blocks.0.norm1.weight").toFloatArray()) assertEquals(1f, v);
        for (float v : s.get("student/backbone.blocks.0.norm1.bias").toFloatArray()) assertEquals(0f, v);
        for (float v : s.get("student/head.mlp.0.bias").toFloatArray()) assertEquals(0f, v);
    }

    @Test
    void saveLoadRoundTripWithExtraLoss() throws IOException {
        DinoState s = DinoState.init(test(), 11);
        s.put("step", TensorData.scalarLong(5));
        s.put("optim/step/backbone.norm.weight", TensorData.scalarLong(4));
        s.put("center", TensorData.fullFloats(new long[]{1, 64}, 0.5f));
        Path p = dir.resolve("state.safetensors");
        s.save(p, Map.of("loss", TensorData.scalarFloat(3.5f)));

        SafeTensorsFile raw = SafeTensors.read(p);
        assertEquals("dinostream/1", raw.metadata().get("format"));
        assertEquals(test().toJson(), raw.metadata().get("config"));
        assertEquals(3.5, raw.tensors().get("loss").doubleValue());

        DinoState back = DinoState.load(p);
        assertEquals(s.config().toJson(), back.config().toJson());
        assertEquals(new ArrayList<>(s.tensors().keySet()), new ArrayList<>(back.tensors().keySet()));
        for (String k : s.tensors().keySet()) assertEquals(s.get(k), back.get(k), k);
        assertEquals(5, back.step());
        assertEquals(4, back.get("optim/step/backbone.norm.weight").longValue());
    }

    @Test
    void loadsAReferenceConfigWithoutDinostreamFields() throws IOException {
        Map<String, TensorData> t = new LinkedHashMap<>(DinoState.init(test(), 0).tensors());
        t.put("loss", TensorData.scalarFloat(1f));
        Path p = dir.resolve("ref.safetensors");
        SafeTensors.write(p, t, Map.of("config", REFERENCE_CONFIG, "format", "dino_ref/1"));
        DinoState s = DinoState.load(p);
        DinoConfig c = s.config();
        assertEquals(32, c.dim);
        assertEquals(8, c.localSize);
        assertNull(c.mean);
        assertNull(c.preset);
        assertFalse(s.tensors().containsKey("loss"));
    }

    /** Writes the initial state with {@code edit} applied and returns load's message without the path. */
    private String loadError(java.util.function.Consumer<Map<String, TensorData>> edit) throws IOException {
        Map<String, TensorData> t = new LinkedHashMap<>(DinoState.init(test(), 0).tensors());
        edit.accept(t);
        Path p = dir.resolve("state.safetensors");
        SafeTensors.write(p, t, Map.of("config", test().toJson(), "format", "dinostream/1"));
        String m = assertThrows(IllegalArgumentException.class, () -> DinoState.load(p)).getMessage();
        assertTrue(m.startsWith(p + ": "), m);
        assertFalse(m.contains("\n"), m);
        return m.substring(p.toString().length() + 2);
    }

    @Test
    void loadRejectsAMissingKey() throws IOException {
        assertEquals("missing key optim/exp_avg/backbone.norm.weight",
                loadError(t -> t.remove("optim/exp_avg/backbone.norm.weight")));
    }

    @Test
    void loadRejectsAnUnexpectedKey() throws IOException {
        assertEquals("unexpected key foo", loadError(t -> t.put("foo", TensorData.scalarLong(1))));
    }

    @Test
    void loadRejectsAWrongShapeOrDtype() throws IOException {
        assertEquals("student/backbone.pos_embed has shape [1, 50, 32], expected [1, 17, 32]",
                loadError(t -> t.put("student/backbone.pos_embed", TensorData.zeros(DType.F32, new long[]{1, 50, 32}))));
        assertEquals("step has shape [1], expected []",
                loadError(t -> t.put("step", TensorData.ofLongs(new long[]{1}, new long[]{0}))));
        assertEquals("center has shape [64], expected [1, 64]",
                loadError(t -> t.put("center", TensorData.zeros(DType.F32, new long[]{64}))));
        assertEquals("teacher/backbone.norm.bias is F64, expected F32",
                loadError(t -> t.put("teacher/backbone.norm.bias", TensorData.zeros(DType.F64, new long[]{32}))));
        assertEquals("missing key student/backbone.norm.bias (and 1 more problems)", loadError(t -> {
            t.remove("student/backbone.norm.bias");
            t.put("bar", TensorData.scalarLong(1));
        }));
    }

    @Test
    void loadRejectsNonFiniteValuesNamingTheKey() throws IOException {
        float[] v = new float[32];
        v[3] = Float.NaN;
        assertEquals("optim/exp_avg_sq/backbone.norm.weight holds a non-finite value (NaN) at flat index 3",
                loadError(t -> t.put("optim/exp_avg_sq/backbone.norm.weight", TensorData.ofFloats(new long[]{32}, v))));
        assertEquals("center holds a non-finite value (Infinity) at flat index 0", loadError(t -> {
            float[] c = new float[64];
            c[0] = Float.POSITIVE_INFINITY;
            t.put("center", TensorData.ofFloats(new long[]{1, 64}, c));
        }));
    }

    @Test
    void loadNeedsAConfigAndAKnownFormat() throws IOException {
        Map<String, TensorData> t = DinoState.init(test(), 0).tensors();
        Path p = dir.resolve("nocfg.safetensors");
        SafeTensors.write(p, t, Map.of("format", "dinostream/1"));
        assertEquals(p + ": no 'config' in the header's __metadata__",
                assertThrows(IllegalArgumentException.class, () -> DinoState.load(p)).getMessage());
        Path q = dir.resolve("fmt.safetensors");
        SafeTensors.write(q, t, Map.of("format", "other/2", "config", test().toJson()));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> DinoState.load(q)).getMessage()
                .startsWith(q + ": format 'other/2' is not a DINO state"));
        Path r = dir.resolve("badcfg.safetensors");
        SafeTensors.write(r, t, Map.of("config", "{\"dim\": 30, \"heads\": 4}"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> DinoState.load(r)).getMessage()
                .startsWith(r + ": invalid configuration: dim 30 must be divisible by heads 4"));
    }

    @Test
    void putChecksKeyDtypeAndShape() {
        DinoState s = DinoState.init(test(), 0);
        TensorData ok = TensorData.fullFloats(new long[]{32}, 2f);
        s.put("teacher/backbone.norm.weight", ok);
        assertSame(ok, s.get("teacher/backbone.norm.weight"));
        assertEquals("put student/backbone.norm.weight: got F32[33], expected F32[32]",
                assertThrows(IllegalArgumentException.class,
                        () -> s.put("student/backbone.norm.weight", TensorData.zeros(DType.F32, new long[]{33}))).getMessage());
        assertThrows(IllegalArgumentException.class, () -> s.put("step", TensorData.scalarFloat(1)));
        assertThrows(IllegalArgumentException.class, () -> s.put("optim/step/head.last_layer.weight_g", TensorData.scalarLong(1)));
        assertThrows(UnsupportedOperationException.class, () -> s.tensors().put("step", TensorData.scalarLong(1)));
        DinoState copy = s.copy();
        copy.put("step", TensorData.scalarLong(9));
        assertEquals(0, s.step());
        assertEquals(9, copy.step());
    }

    @Test
    void ofBuildsAStateFromComputedTensorsInKeyOrder() {
        DinoState init = DinoState.init(test(), 4);
        Map<String, TensorData> reversed = new LinkedHashMap<>();
        List<String> keys = new ArrayList<>(init.tensors().keySet());
        java.util.Collections.reverse(keys);
        for (String k : keys) reversed.put(k, init.get(k));
        DinoState s = DinoState.of(test(), reversed);
        assertEquals(DinoState.stateKeys(test()), new ArrayList<>(s.tensors().keySet()));
        for (String k : keys) assertSame(init.get(k), s.get(k));

        reversed.remove("center");
        reversed.put("loss", TensorData.scalarFloat(1));
        assertEquals("DinoState.of: missing key center (and 1 more problems)",
                assertThrows(IllegalArgumentException.class, () -> DinoState.of(test(), reversed)).getMessage());
    }

    @Test
    void keysAgreeWithTheTrainStepsStateKeys() {
        DinoConfig c = test();
        assertEquals(dinostream.model.dino.StateKeys.all(c), DinoState.stateKeys(c));
        c.normLastLayer = false;
        assertEquals(dinostream.model.dino.StateKeys.all(c), DinoState.stateKeys(c));
    }

    @Test
    void initDoesNotKeepTheCallersConfig() {
        DinoConfig c = test();
        DinoState s = DinoState.init(c, 0);
        c.dim = 64;
        s.config().dim = 128;
        assertEquals(32, s.config().dim);
    }

    @Test
    void bytesRoundTripAndValidation() {
        DinoState a = DinoState.init(test(), 11);
        byte[] bytes = a.toBytes();
        DinoState b = DinoState.fromBytes(bytes, "checkpoint");
        assertEquals(a.tensors(), b.tensors());
        assertEquals(a.config().toJson(), b.config().toJson());
        byte[] cut = java.util.Arrays.copyOf(bytes, bytes.length - 4);
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> DinoState.fromBytes(cut, "checkpoint"));
        org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().startsWith("checkpoint: "), e.getMessage());
    }
}
