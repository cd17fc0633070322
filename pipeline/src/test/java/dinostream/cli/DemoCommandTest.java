package dinostream.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dinostream.pipeline.produce.ImageProducer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The demo's progress line: what a newcomer reads to see the model learn; its order options. */
class DemoCommandTest {
    private static final ImageProducer.Stats SENT = new ImageProducer.Stats(12_800, 0, 0, 0);

    @Test
    void theLineShowsTheProbeAgainstItsFirstScore() throws Exception {
        JsonNode m = new ObjectMapper().readTree("{\"step\": 200, \"images_per_s\": 98.5, \"loss\": 7.9, \"teacher_entropy\": 7.5}");
        assertEquals("images in 12,800 | train 98.5 img/s | step 200 | loss 7.900 | teacher entropy 7.50 | k-NN 47.0% (from 41.8%)"
                + " | embeddings out 3 | dead letters 1", DemoCommand.progressLine(SENT, m, 3, 1, new double[]{41.8, 47.0}));
        assertTrue(DemoCommand.progressLine(SENT, m, 3, 1, new double[]{41.8, 41.8}).contains("| k-NN 41.8% |"), "one score: nothing to compare");
        assertFalse(DemoCommand.progressLine(SENT, m, 3, 1, new double[]{Double.NaN, Double.NaN}).contains("k-NN"), "no score yet");
        assertTrue(DemoCommand.progressLine(SENT, null, 0, 0, new double[]{Double.NaN, Double.NaN}).contains("waiting for the first train step"));
    }

    /** --order and the camera's options are checked before the run folder is made. */
    @Test
    void orderOptionsAreValidatedFirst(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("demo");
        Files.createDirectories(dir.resolve("pictures"));
        String[] base = {"demo", "--out", out.toString()};
        usageError(base, "unknown order 'random' (expected iid, class-sorted or camera)", "--order", "random");
        usageError(base, "--frames and --run-length apply only to --order camera", "--frames", "2");
        usageError(base, "--frames and --run-length apply only to --order camera", "--order", "class-sorted", "--run-length", "16");
        usageError(base, "--frames must be at least 1, not 0", "--order", "camera", "--frames", "0");
        usageError(base, "--run-length must be at least 1, not 0", "--order", "camera", "--run-length", "0");
        usageError(base, "--order camera needs raw-pixel images", "--order", "camera", "--source", dir.resolve("pictures").toString());
        assertFalse(Files.exists(out), "refused before the run folder is made");
    }

    private static void usageError(String[] base, String message, String... args) {
        ProduceCommandTest.usageError(base, message, args);
    }
}
