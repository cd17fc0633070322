package dinostream.model.io;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.ParamSpec;
import dinostream.model.dino.Presets;
import dinostream.model.dino.ReferenceParityTest;
import dinostream.model.dino.StateComparison;
import dinostream.model.dino.StateKeys;
import dinostream.model.io.torch.TorchFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Official .pth files against the same state in our layout. The fixtures (src/test/resources/fixtures/official-*)
 * are written by torch itself with src/test/python/make_official_fixture.py: checkpoint.pth (main_dino.py's layout),
 * backbone.pth (a release file's), in.safetensors (the reference's state) and one step from it.
 */
class OfficialCheckpointTest {
    @TempDir
    Path tmp;

    static Path fixture(String name) throws Exception {
        return Paths.get(OfficialCheckpointTest.class.getResource("/fixtures/" + name + "/in.safetensors").toURI()).getParent();
    }

    /** Heads are not in any .pth; the fixtures' args.arch is vit_custom. */
    static int heads(String name) {
        return name.equals("official-test") ? 2 : 3;
    }

    static OfficialCheckpoint.Options opts(String name, DinoConfig base) {
        return new OfficialCheckpoint.Options(heads(name), null, null, 5, base);
    }

    static void assertSameTensors(Map<String, TensorData> want, Map<String, TensorData> got) {
        assertEquals(want.keySet(), got.keySet());
        for (String k : want.keySet()) assertEquals(want.get(k), got.get(k), k);
    }

    /** The reference's Cfg fields (what a checkpoint determines), without dinostream's additions. */
    static String cfgFields(DinoConfig c) {
        DinoConfig x = c.copy();
        x.localSize = 8;
        x.mean = null;
        x.std = null;
        x.preset = null;
        return x.toJson();
    }

    @ParameterizedTest
    @ValueSource(strings = {"official-test", "official-rgb", "official-rgb-frozen"})
    void fullCheckpointImportsExactlyAsTheReferenceState(String name) throws Exception {
        Path dir = fixture(name);
        DinoState want = DinoState.load(dir.resolve("in.safetensors"));
        DinoConfig base = name.equals("official-test") ? Presets.get("test") : null;
        DinoState got = OfficialCheckpoint.read(dir.resolve("checkpoint.pth"), opts(name, base));
        assertSameTensors(want.tensors(), got.tensors());
        assertEquals(cfgFields(want.config()), cfgFields(got.config()));
        assertEquals(8, got.config().localSize);
        // The configuration is the preset's in every field, so it keeps the preset's name.
        assertEquals(base != null ? "test" : null, got.config().preset);
    }

    @Test
    void perParameterStepsAndMissingEntriesMapThroughTheParamGroups() throws Exception {
        // official-rgb: the first prior step had the last layer frozen, so its step is one behind the others.
        DinoState rgb = OfficialCheckpoint.read(fixture("official-rgb").resolve("checkpoint.pth"), opts("official-rgb", null));
        assertEquals(3, rgb.step());
        assertEquals(2, rgb.get(StateKeys.optimStep("head.last_layer.weight_g")).longValue());
        assertEquals(3, rgb.get(StateKeys.optimStep("backbone.cls_token")).longValue());
        // official-rgb-frozen: the last layer never had a gradient, so torch has no entry for it.
        DinoState frozen = OfficialCheckpoint.read(fixture("official-rgb-frozen").resolve("checkpoint.pth"), opts("official-rgb-frozen", null));
        Map<?, ?> opt = (Map<?, ?>) ((Map<?, ?>) TorchFile.read(fixture("official-rgb-frozen").resolve("checkpoint.pth"))).get("optimizer");
        long entries = ParamSpec.of(frozen.config()).stream().filter(ParamSpec::trainable).count();
        assertEquals(entries - 2, ((Map<?, ?>) opt.get("state")).size());
        assertEquals(0, frozen.get(StateKeys.optimStep("head.last_layer.weight_v")).longValue());
        assertEquals(TensorData.zeros(DType.F32, new long[]{32, 8}), frozen.get(StateKeys.expAvg("head.last_layer.weight_v")));
        assertEquals(2, frozen.step());
    }

    @ParameterizedTest
    @ValueSource(strings = {"official-rgb", "official-rgb-frozen"})
    void aStepFromTheImportedStateMatchesTheReferenceStep(String name) throws Exception {
        Path dir = fixture(name);
        DinoState in = OfficialCheckpoint.read(dir.resolve("checkpoint.pth"), opts(name, null));
        Map<String, TensorData> want = SafeTensors.read(dir.resolve("out.safetensors")).tensors();
        StateComparison.Report r = StateComparison.compare(ReferenceParityTest.runFixture(dir, in, 1, null), want);
        System.out.println(name + " step from the imported state: " + r);
        assertTrue(r.ok(1e-4), name + ": " + r);
    }

    @ParameterizedTest
    @ValueSource(strings = {"official-test", "official-rgb"})
    void backboneOnlyFileGivesBothBackbonesAndAFreshHead(String name) throws Exception {
        Path dir = fixture(name);
        DinoState ref = DinoState.load(dir.resolve("in.safetensors"));
        DinoConfig base = ref.config();
        DinoState got = OfficialCheckpoint.read(dir.resolve("backbone.pth"), opts(name, base));
        DinoState fresh = DinoState.init(got.config(), 5);
        for (ParamSpec p : ParamSpec.of(got.config())) {
            TensorData s = got.get(StateKeys.student(p.name()));
            assertEquals(s, got.get(StateKeys.teacher(p.name())), p.name());
            if (p.name().startsWith("backbone.")) assertEquals(ref.get(StateKeys.teacher(p.name())), s, p.name());
            else assertEquals(fresh.get(StateKeys.student(p.name())), s, p.name());
        }
        for (String k : got.tensors().keySet()) {
            if (k.startsWith("optim/") || k.equals(StateKeys.CENTER) || k.equals(StateKeys.STEP)) {
                assertEquals(fresh.get(k), got.get(k), k);
            }
        }
        // --checkpoint-key teacher of the full checkpoint is the same backbone.
        DinoState viaKey = OfficialCheckpoint.read(dir.resolve("checkpoint.pth"),
                new OfficialCheckpoint.Options(heads(name), null, "teacher", 5, base));
        assertSameTensors(got.tensors(), viaKey.tensors());
    }

    @ParameterizedTest
    @ValueSource(strings = {"official-test", "official-rgb-frozen"})
    void exportWritesWhatTorchWrote(String name) throws Exception {
        Path dir = fixture(name);
        DinoConfig base = name.equals("official-test") ? Presets.get("test") : null;
        DinoState state = OfficialCheckpoint.read(dir.resolve("checkpoint.pth"), opts(name, base));
        Path out = tmp.resolve(name + ".pth");
        OfficialCheckpoint.write(state, out);

        Map<?, ?> torch = (Map<?, ?>) TorchFile.read(dir.resolve("checkpoint.pth"));
        Map<?, ?> ours = (Map<?, ?>) TorchFile.read(out);
        for (String k : List.of("student", "teacher", "dino_loss")) assertEquals(torch.get(k), ours.get(k), k);
        Map<?, ?> tOpt = (Map<?, ?>) torch.get("optimizer"), oOpt = (Map<?, ?>) ours.get("optimizer");
        assertEquals(tOpt.get("state"), oOpt.get("state"));
        List<?> tGroups = (List<?>) tOpt.get("param_groups"), oGroups = (List<?>) oOpt.get("param_groups");
        for (int g = 0; g < 2; g++) {
            Map<?, ?> t = (Map<?, ?>) tGroups.get(g), o = (Map<?, ?>) oGroups.get(g);
            assertEquals(t.keySet(), o.keySet());
            for (String k : List.of("params", "betas", "eps", "amsgrad", "maximize", "foreach", "capturable")) {
                assertEquals(String.valueOf(t.get(k)), String.valueOf(o.get(k)), k);
            }
        }
        Map<?, ?> args = (Map<?, ?>) ours.get("args");
        assertEquals("vit_custom", args.get("arch"));
        assertEquals((long) state.config().patch, args.get("patch_size"));

        // And back: the same state.
        DinoState again = OfficialCheckpoint.read(out, opts(name, base));
        assertSameTensors(state.tensors(), again.tensors());
    }

    /** An fp16 state writes GradScaler's state_dict (main_dino.py --use_fp16 resumes from it) and reads it back. */
    @Test
    void fp16LossScalerTravelsThroughTheCheckpoint() throws Exception {
        Path dir = fixture("official-test");
        DinoConfig fp16 = Presets.get("test").precision(DinoConfig.Precision.FP16);
        DinoState state = OfficialCheckpoint.read(dir.resolve("checkpoint.pth"), opts("official-test", fp16));
        assertEquals(dinostream.model.dino.LossScaler.INIT_SCALE, state.get(StateKeys.LOSS_SCALE).toFloatArray()[0],
                "a checkpoint without fp16_scaler starts a fresh scaler");
        state.put(StateKeys.LOSS_SCALE, TensorData.scalarFloat(512f));
        state.put(StateKeys.GROWTH_TRACKER, TensorData.scalarLong(37));
        Path out = tmp.resolve("fp16.pth");
        OfficialCheckpoint.write(state, out);
        Map<?, ?> ours = (Map<?, ?>) TorchFile.read(out);
        assertEquals(Map.of("scale", 512.0, "growth_factor", 2.0, "backoff_factor", 0.5, "growth_interval", 2000L, "_growth_tracker", 37L),
                ours.get("fp16_scaler"));
        assertEquals(true, ((Map<?, ?>) ours.get("args")).get("use_fp16"));
        DinoState again = OfficialCheckpoint.read(out, opts("official-test", fp16));
        assertSameTensors(state.tensors(), again.tensors());
        // An fp32 job reading it keeps the weights and drops the scaler.
        DinoState fp32 = OfficialCheckpoint.read(out, opts("official-test", Presets.get("test")));
        assertTrue(!fp32.tensors().containsKey(StateKeys.LOSS_SCALE));
        assertEquals(state.get(StateKeys.student("head.last_layer.weight_v")), fp32.get(StateKeys.student("head.last_layer.weight_v")));
    }

    @Test
    void archGivesTheHeadsAndMustMatchTheDim() throws Exception {
        DinoConfig c = Presets.get("test");
        c.dim = 192; c.heads = 3; c.depth = 1; c.patch = 8; c.imgSize = 16; c.inChans = 3; c.localSize = 8; c.preset = null;
        DinoState s = DinoState.init(c, 3);
        Path f = tmp.resolve("tiny.pth");
        OfficialCheckpoint.write(s, f);
        DinoState got = OfficialCheckpoint.read(f, new OfficialCheckpoint.Options(null, "vit_tiny", null, 0, null));
        assertEquals(3, got.config().heads);
        assertSameTensors(s.tensors(), got.tensors());
        String m = refusal(() -> OfficialCheckpoint.read(f, new OfficialCheckpoint.Options(null, "vit_small", null, 0, null)));
        assertTrue(m.contains("vit_small has dim 384 but the tensors have dim 192"), m);
    }

    // ------------------------------------------------------------------ refusals

    static String refusal(org.junit.jupiter.api.function.Executable e) {
        Exception x = assertThrows(Exception.class, e);
        assertTrue(x instanceof IllegalArgumentException || x instanceof IOException, x.toString());
        String m = x.getMessage();
        assertFalse(m.contains("\n"), "one line: " + m);
        return m;
    }

    static TensorData t(long... shape) {
        return TensorData.zeros(DType.F32, shape);
    }

    DinoState readDict(Map<String, Object> root, OfficialCheckpoint.Options o) throws IOException {
        return OfficialCheckpoint.read(TorchFile.toBytes(root, "x"), "x.pth", o);
    }

    static final OfficialCheckpoint.Options ANY = new OfficialCheckpoint.Options(2, null, null, 0, Presets.get("test"));

    @Test
    void refusesALinearEvaluationCheckpoint() {
        Map<String, Object> sd = new LinkedHashMap<>();
        sd.put("module.linear.weight", t(1000, 384));
        sd.put("module.linear.bias", t(1000));
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("epoch", 100L);
        root.put("state_dict", sd);
        root.put("best_acc", 77.0);
        String m = refusal(() -> readDict(root, ANY));
        assertTrue(m.startsWith("x.pth: is a linear-evaluation checkpoint"), m);
    }

    @Test
    void refusesResNetAndXCiT() {
        Map<String, Object> resnet = new LinkedHashMap<>();
        resnet.put("conv1.weight", t(64, 3, 7, 7));
        resnet.put("bn1.weight", t(64));
        resnet.put("layer1.0.conv1.weight", t(64, 64, 1, 1));
        assertTrue(refusal(() -> readDict(resnet, ANY)).contains("holds a ResNet"));
        Map<String, Object> xcit = new LinkedHashMap<>();
        xcit.put("cls_token", t(1, 1, 384));
        xcit.put("pos_embeder.token_projection.weight", t(384, 64, 1, 1));
        xcit.put("blocks.0.attn.temperature", t(8, 1, 1));
        assertTrue(refusal(() -> readDict(xcit, ANY)).contains("holds an XCiT"));
    }

    @Test
    void refusesMissingHeadsPartialAndTruncatedFiles() throws Exception {
        Path dir = fixture("official-test");
        String m = refusal(() -> OfficialCheckpoint.read(dir.resolve("checkpoint.pth"), new OfficialCheckpoint.Options(null, null, null, 0, null)));
        assertTrue(m.contains("the number of attention heads is not stored in the file (args.arch is 'vit_custom'); give --heads N or --arch"), m);
        m = refusal(() -> OfficialCheckpoint.read(dir.resolve("backbone.pth"), new OfficialCheckpoint.Options(2, null, null, 0, null)));
        assertTrue(m.contains("holds a backbone only"), m);

        Map<String, Object> root = new LinkedHashMap<>();
        Map<?, ?> full = (Map<?, ?>) TorchFile.read(dir.resolve("checkpoint.pth"));
        root.put("student", full.get("student"));
        root.put("teacher", full.get("teacher"));
        assertTrue(refusal(() -> readDict(root, ANY)).contains("no optimizer"));

        // A wrong shape in the teacher's head.
        Map<String, Object> copy = new LinkedHashMap<>();
        full.forEach((k, v) -> copy.put((String) k, v));
        Map<Object, Object> teacher = new LinkedHashMap<>((Map<?, ?>) full.get("teacher"));
        teacher.put("head.mlp.0.weight", t(47, 32));
        copy.put("teacher", teacher);
        m = refusal(() -> readDict(copy, ANY));
        assertTrue(m.contains("teacher: head.mlp.0.weight has shape [47, 32], expected [48, 32]"), m);

        byte[] bytes = Files.readAllBytes(dir.resolve("checkpoint.pth"));
        refusal(() -> OfficialCheckpoint.read(Arrays.copyOf(bytes, bytes.length / 2), "half.pth", ANY));
    }

    @Test
    void presetsForTheReleaseFiles() {
        assertEquals(8, Presets.get("vit-s8").patch);
        assertEquals(384, Presets.get("vit-s8").dim);
        assertEquals(8, Presets.get("vit-b8").patch);
        assertEquals(12, Presets.get("vit-b8").heads);
        assertEquals(3, Presets.get("vit-b8").mean.length);
    }
}
