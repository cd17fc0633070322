package dinostream.it;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dinostream.cli.Main;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * `dinostream sweep` for real, once and small: a child demo trains the test preset on 64 images, a
 * child knn scores its last snapshot on a small bank; then the same command resumes and runs nothing.
 */
// ~25 s on 2 idle cores (two child JVMs); 10x for a loaded machine.
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class SweepIT {
    @Test
    void oneRunTrainsScoresAndIsNotRunAgain(@TempDir Path dir) throws Exception {
        assumeTrue(Files.isDirectory(Path.of("/usr/share/datasets/fashion-mnist")), "knn scores on Fashion-MNIST");
        Path grid = dir.resolve("grid.json");
        Files.writeString(grid, "{\"base\": [\"--preset\", \"test\", \"--batch\", \"16\", \"--probe-size\", \"0\", \"--snapshot-every\", \"2\", "
                + "\"--source\", \"fmnist\"], \"images\": 64, \"runs\": [{\"name\": \"lr-2e-3\", \"args\": [\"--lr\", \"2e-3\"]}]}");
        String[] args = {"sweep", "--grid", grid.toString(), "--out", dir.resolve("sweep").toString(),
                "--knn-train-limit", "200", "--knn-test-limit", "100"};
        StringWriter out = new StringWriter(), err = new StringWriter();
        int rc = Main.commandLine(new PrintWriter(out, true), new PrintWriter(err, true)).execute(args);
        assertEquals(0, rc, err.toString());

        List<String> lines = Files.readAllLines(dir.resolve("sweep/sweep.jsonl"));
        assertEquals(1, lines.size());
        JsonNode line = new ObjectMapper().readTree(lines.get(0));
        assertTrue(line.path("ok").asBoolean(), line.toString());
        assertEquals(4, line.path("final_step").asLong(), "64 images in batches of 16");
        assertEquals(100, line.path("knn_n_test").asInt());
        double top1 = line.path("knn_top1").asDouble();
        assertTrue(top1 > 0 && top1 <= 100, line.toString());
        JsonNode settings = new ObjectMapper().readTree(dir.resolve("sweep/lr-2e-3-s0/run.json").toFile());
        assertEquals(2e-3, settings.path("schedule").path("lr").asDouble(), "the knob reached the run");
        assertTrue(Files.readString(dir.resolve("sweep/sweep.md")).contains("| lr-2e-3 | `--lr 2e-3` |"));

        StringWriter again = new StringWriter();
        assertEquals(0, Main.commandLine(new PrintWriter(new StringWriter(), true), new PrintWriter(again, true)).execute(args));
        assertTrue(again.toString().contains("1 done, 0 to go"), again.toString());
    }
}
