package dinostream.it;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.zip.ZipFile;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The GPU check kit's slim jar (ops/gpu/) as the kit runs it: its own JVM, a class path of
 * dinostream-kit.jar and ONNX Runtime's natives only (no Flink, no Kafka), the CPU natives here.
 */
class KitJarIT {
    static final ObjectMapper JSON = new ObjectMapper();
    static final Path ROOT = Path.of(System.getProperty("dinostream.root", "..")).toAbsolutePath().normalize();

    record Run(int rc, String out, String err) {}

    static Run kit(Path dir, String... args) throws Exception {
        Path jar = ROOT.resolve("pipeline/target/dinostream-kit.jar");
        assertTrue(Files.isRegularFile(jar), "no " + jar + " (pipeline's package phase writes it)");
        // The natives jars this build resolved (on this test's class path): the kit packs the same ones.
        List<String> cp = new ArrayList<>(List.of(jar.toString()));
        for (String e : System.getProperty("java.class.path").split(File.pathSeparator)) {
            if (e.contains("org/bytedeco") && e.endsWith("-linux-x86_64.jar") && !e.contains("/onnx/")) cp.add(e);
        }
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Dorg.bytedeco.javacpp.cachedir=" + dir.resolve("javacpp"), "-cp", String.join(File.pathSeparator, cp),
                "dinostream.cli.KitMain"));
        cmd.addAll(Arrays.asList(args));
        Path out = dir.resolve("out.txt"), err = dir.resolve("err.txt");
        Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        assertTrue(p.waitFor(5, TimeUnit.MINUTES), "kit command timed out: " + cmd);
        return new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
    }

    @Test
    void theSlimJarHasNoFlinkOrKafka() throws Exception {
        try (ZipFile z = new ZipFile(ROOT.resolve("pipeline/target/dinostream-kit.jar").toFile())) {
            assertFalse(z.stream().anyMatch(e -> e.getName().startsWith("org/apache/flink/") || e.getName().startsWith("org/apache/kafka/")),
                    "Flink or Kafka classes in the kit jar");
            assertFalse(z.stream().anyMatch(e -> e.getName().endsWith(".so") || e.getName().contains(".so.")), "natives in the kit jar");
            assertTrue(z.getEntry("dinostream/cli/KitMain.class") != null);
        }
    }

    /** The kit's phases (a) and (b) on the CPU: parity on the device runtime, and the benchmark's JSON. */
    @Test
    void parityAndTheBenchmarkRunFromTheSlimJar(@TempDir Path dir) throws Exception {
        Run v = kit(dir, "--version");
        assertEquals(0, v.rc(), v.err());
        assertTrue(v.out().contains("ONNX Runtime 1.24.1"), v.out());

        Run parity = kit(dir, "parity", "--fixtures", ROOT.resolve("model/src/test/resources/fixtures").toString(),
                "--runtime", "device", "--json");
        assertEquals(0, parity.rc(), parity.err());
        JsonNode p = JSON.readTree(parity.out());
        assertTrue(p.get("ok").asBoolean());
        assertTrue(p.get("fixtures").size() >= 8, p.toString());

        Run bench = kit(dir, "bench", "train-step", "--preset", "test", "--batch", "2", "--steps", "2", "--warmup", "1",
                "--runtime", "device", "--peak-size", "0", "--json");
        assertEquals(0, bench.rc(), bench.err());
        JsonNode b = JSON.readTree(bench.out());
        assertEquals("device", b.get("runtime").asText());
        assertEquals("cpu", b.get("device").asText());
        assertTrue(b.get("images_per_s").asDouble() > 0);
        assertTrue(b.get("config").get("depth").asInt() > 0, "the configuration travels with the numbers (torch_step.py reads it)");

        // Flink's commands are not in the kit: a clear usage error, not a class-loading failure.
        Run train = kit(dir, "train", "--preset", "test");
        assertEquals(2, train.rc(), train.err());
        assertTrue(train.err().contains("dinostream: error:"), train.err());
    }
}
