package dinostream.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dinostream.model.dino.ParamSpec;
import dinostream.model.dino.Presets;
import dinostream.model.dino.StateKeys;
import dinostream.model.io.DinoState;
import dinostream.model.io.torch.TorchFile;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

import static dinostream.cli.CliTest.JSON;
import static dinostream.cli.CliTest.assertOneLineError;
import static dinostream.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** {@code dinostream export --format pth} and {@code dinostream import}: a round trip and the one-line refusals. */
class ImportCommandTest {
    @TempDir
    static Path dir;
    static Path state, pth;

    @BeforeAll
    static void exportAState() {
        state = dir.resolve("in.safetensors");
        assertEquals(0, run("init", "--preset", "test", "--seed", "4", "--out", state.toString()).rc());
        pth = dir.resolve("official/checkpoint.pth");
        CliTest.Result r = run("export", "--format", "pth", "--state", state.toString(), "--out", pth.toString(), "--json");
        assertEquals(0, r.rc(), r.toString());
    }

    @Test
    void exportThenImportGivesTheSameState() throws Exception {
        Path out = dir.resolve("imported.safetensors");
        CliTest.Result r = run("import", "--checkpoint", pth.toString(), "--heads", "2", "--preset", "test", "--out", out.toString(), "--json");
        assertEquals(0, r.rc(), r.toString());
        JsonNode j = JSON.readTree(r.out());
        assertEquals("test", j.get("preset").asText());
        assertEquals(0, j.get("step").asInt());
        assertEquals(2, j.get("config").get("heads").asInt());
        DinoState a = DinoState.load(state), b = DinoState.load(out);
        assertEquals(a.tensors().keySet(), b.tensors().keySet());
        for (String k : a.tensors().keySet()) assertEquals(a.get(k), b.get(k), k);
    }

    @Test
    void backboneOnlyFileNeedsAPresetForItsHead() throws Exception {
        DinoState s = DinoState.load(state);
        Map<String, Object> bb = new LinkedHashMap<>();
        for (ParamSpec p : ParamSpec.of(s.config())) {
            if (p.name().startsWith("backbone.")) bb.put(p.name().substring("backbone.".length()), s.get(StateKeys.teacher(p.name())));
        }
        Path f = dir.resolve("release.pth");
        TorchFile.write(f, bb);
        Path out = dir.resolve("from-release.safetensors");
        assertEquals(0, run("import", "--checkpoint", f.toString(), "--heads", "2", "--preset", "test", "--seed", "9", "--out", out.toString()).rc());
        DinoState got = DinoState.load(out), fresh = DinoState.init(Presets.get("test"), 9);
        assertEquals(s.get("teacher/backbone.norm.weight"), got.get("student/backbone.norm.weight"));
        assertEquals(fresh.get("student/head.mlp.0.weight"), got.get("teacher/head.mlp.0.weight"));
        assertOneLineError(run("import", "--checkpoint", f.toString(), "--heads", "2", "--out", out.toString()),
                1, "holds a backbone only", "--preset");
    }

    @Test
    void refusalsAreOneLine() throws Exception {
        Path out = dir.resolve("never.safetensors");
        assertOneLineError(run("import", "--checkpoint", pth.toString(), "--out", out.toString()),
                1, "the number of attention heads is not stored in the file", "--heads N");
        assertOneLineError(run("import", "--checkpoint", pth.toString(), "--arch", "vit_huge", "--out", out.toString()),
                2, "--arch must be vit_tiny, vit_small or vit_base");
        assertOneLineError(run("import", "--checkpoint", pth.toString(), "--arch", "vit_small", "--out", out.toString()),
                1, "--arch vit_small has dim 384 but the tensors have dim 32");
        Path missing = dir.resolve("missing.pth");
        assertOneLineError(run("import", "--checkpoint", missing.toString(), "--heads", "2", "--out", out.toString()),
                1, "no such file", missing.toString());
        byte[] b = Files.readAllBytes(pth);
        Path half = dir.resolve("half.pth");
        Files.write(half, Arrays.copyOf(b, b.length / 2));
        assertOneLineError(run("import", "--checkpoint", half.toString(), "--heads", "2", "--out", out.toString()), 1, "half.pth");
        assertEquals(false, Files.exists(out));
        assertOneLineError(run("export", "--format", "pth", "--state", state.toString(), "--out", dir.toString()),
                1, "is a directory");
    }
}
