package dinostream.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dinostream.model.io.DinoState;
import dinostream.model.io.SafeTensors;
import dinostream.model.io.TensorData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code dinostream parity}: the GPU kit's first phase, run here on the CPU with both runtimes. */
class ParityCommandTest {
    static Path fixtures() {
        return Path.of(System.getProperty("basedir", ".")).resolve("../model/src/test/resources/fixtures").normalize();
    }

    static void copyFixture(String name, Path to) throws Exception {
        Files.createDirectories(to);
        for (String f : new String[]{"hparams.json", "in.safetensors", "crops.safetensors", "out.safetensors"}) {
            Files.copy(fixtures().resolve(name).resolve(f), to.resolve(f));
        }
    }

    /** Every fixture but the fp16 overflow (a skipped step has no update to compare) passes on both runtimes. */
    @Test
    void theReferenceFixturesPassOnBothRuntimes() throws Exception {
        for (String runtime : new String[]{"device", "host"}) {
            CliTest.Result r = CliTest.run("parity", "--fixtures", fixtures().toString(), "--runtime", runtime, "--json");
            assertEquals(0, r.rc(), r.toString());
            JsonNode o = CliTest.JSON.readTree(r.out());
            assertTrue(o.get("ok").asBoolean());
            assertEquals("cpu", o.get("device").asText());
            assertEquals(runtime, o.get("runtime").asText());
            Map<String, String> precisions = new LinkedHashMap<>();
            for (JsonNode f : o.get("fixtures")) {
                precisions.put(f.get("name").asText(), f.get("precision").asText());
                assertTrue(f.get("ok").asBoolean(), f.toString());
            }
            assertEquals("bf16", precisions.get("fx-bf16"));
            assertEquals("fp16", precisions.get("fx-fp16"));
            assertEquals("fp32", precisions.get("fx-drop-path"));
            assertFalse(precisions.containsKey("fx-fp16-overflow"), "an overflow step is not a parity case");
            assertFalse(precisions.containsKey("official-test"), "no crops, no out: not a step fixture");
        }
    }

    /** A reference state that is off (one weight moved by 1%) fails the check: exit 1, the fixture named. */
    @Test
    void aWrongReferenceFails(@TempDir Path dir) throws Exception {
        Path fx = dir.resolve("fx-basic");
        copyFixture("fx-basic", fx);
        Map<String, TensorData> out = new LinkedHashMap<>(SafeTensors.read(fx.resolve("out.safetensors")).tensors());
        String key = out.keySet().stream().filter(k -> k.startsWith("student/") && k.endsWith("weight")).findFirst().orElseThrow();
        float[] w = out.get(key).toFloatArray();
        for (int i = 0; i < w.length; i++) w[i] *= 1.01f;
        out.put(key, TensorData.ofFloats(out.get(key).shape(), w));
        SafeTensors.write(fx.resolve("out.safetensors"), out, Map.of(DinoState.CONFIG_KEY,
                DinoState.load(fx.resolve("in.safetensors")).config().toJson()));
        CliTest.Result r = CliTest.run("parity", "--fixtures", dir.toString(), "--runtime", "device", "--json");
        assertEquals(1, r.rc(), r.toString());
        JsonNode f = CliTest.JSON.readTree(r.out()).get("fixtures").get(0);
        assertFalse(f.get("ok").asBoolean());
        assertEquals(key, f.get("worst_tensor").asText());
        assertTrue(r.err().contains("fx-basic") && r.err().contains("FAIL"), r.err());
    }

    @Test
    void usageErrors(@TempDir Path dir) {
        CliTest.Result r = CliTest.run("parity", "--fixtures", fixtures().toString(), "--runtime", "gpu");
        assertEquals(2, r.rc(), r.toString());
        assertTrue(r.err().contains("--runtime must be auto, host or device"), r.err());
        r = CliTest.run("parity", "--fixtures", fixtures().toString(), "--device", "tpu");
        assertEquals(2, r.rc(), r.toString());
        assertTrue(r.err().contains("--device must be cpu, cuda or cuda:N"), r.err());
        r = CliTest.run("parity", "--fixtures", dir.toString());
        assertEquals(1, r.rc(), r.toString());
        assertTrue(r.err().contains("no runnable fixture"), r.err());
        // CUDA on the CPU build: the message says which build has it.
        r = CliTest.run("parity", "--fixtures", fixtures().toString(), "--device", "cuda");
        assertEquals(1, r.rc(), r.toString());
        assertTrue(r.err().contains("-Pgpu"), r.err());
    }
}
