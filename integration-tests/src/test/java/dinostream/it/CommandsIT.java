package dinostream.it;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dinostream.cli.Main;
import dinostream.pipeline.kafka.EmbeddedKafka;
import dinostream.schemas.EmbeddingRecord;
import dinostream.schemas.codec.AvroCodec;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The commands a user runs, as a user would check them: exit codes, records in topics, files, error lines. */
// The demo runs ~30 s alone on 2 cores; 10x for a loaded CI machine.
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class CommandsIT {
    static EmbeddedKafka kafka;

    record Run(int rc, String out, String err) {}

    static Run run(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int rc = Main.commandLine(new PrintWriter(out, true), new PrintWriter(err, true)).execute(args);
        return new Run(rc, out.toString(), err.toString());
    }

    static int freePort() throws java.io.IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    @BeforeAll
    static void startKafka(@TempDir Path dir) {
        kafka = EmbeddedKafka.builder().dataDir(dir.resolve("kafka")).build().start();
    }

    @AfterAll
    static void stopKafka() {
        if (kafka != null) kafka.close();
    }

    @Test
    void produceThenTrainThenExport(@TempDir Path dir) throws Exception {
        kafka.createTopic("cmd-images", 2);
        kafka.createTopic("cmd-embeddings", 1);
        kafka.createTopic("cmd-dead", 1);
        Run p = run("produce", "--bootstrap", kafka.bootstrap(), "--topic", "cmd-images", "--source", "synthetic", "--limit", "40", "--json");
        assertEquals(0, p.rc(), p.err());
        assertEquals(40, new ObjectMapper().readTree(p.out()).get("sent").asInt());

        Path out = dir.resolve("run");
        Run t = run("train", "--bootstrap", kafka.bootstrap(), "--images-topic", "cmd-images", "--embeddings-topic", "cmd-embeddings",
                "--dead-letter-topic", "cmd-dead", "--model-id", "cam", "--preset", "test", "--batch", "8", "--snapshot-every", "2",
                "--checkpoint-interval", "1", "--parallelism", "1", "--threads", "1", "--bounded", "--out", out.toString());
        assertEquals(0, t.rc(), t.err());
        Set<String> ids = new HashSet<>();
        for (ConsumerRecord<byte[], byte[]> r : PipelineEndToEndIT.readCommitted(kafka.bootstrap(), "cmd-embeddings", 40, Duration.ofSeconds(30))) {
            EmbeddingRecord e = AvroCodec.embeddingRecords().decode(r.value());
            assertEquals("cam", e.getModelId());
            ids.add(e.getImageId());
        }
        assertEquals(40, ids.size());
        assertEquals(5, Files.readAllLines(out.resolve("metrics.jsonl")).size());
        // Snapshots are written from completed checkpoints; the end of a bounded input makes the last step's due (step 5, not 4).
        var latest = new dinostream.pipeline.snapshot.SnapshotStore(out.resolve("snapshots").toUri().toString(), 5).latest("cam").orElseThrow();
        assertEquals(5, latest.manifest().step());
        Path snapshot = Path.of(java.net.URI.create(latest.uri()));
        assertTrue(Files.exists(snapshot.resolve("manifest.json")));

        Path exported = dir.resolve("export");
        Run x = run("export", "--state", snapshot.resolve("state.safetensors").toString(), "--out", exported.toString());
        assertEquals(0, x.rc(), x.err());
        assertTrue(Files.size(exported.resolve("teacher-backbone.onnx")) > 0);
        assertTrue(Files.size(exported.resolve("teacher-attention.onnx")) > 0);
    }

    @Test
    void demoCommitsEmbeddingsAndWritesSnapshots(@TempDir Path dir) throws Exception {
        int port = freePort();
        // Six images: a timed demo must send them again and again, as a camera keeps sending, not stop after one pass.
        Path images = Files.createDirectories(dir.resolve("images"));
        for (int i = 0; i < 6; i++) {
            java.awt.image.BufferedImage im = new java.awt.image.BufferedImage(16, 16, java.awt.image.BufferedImage.TYPE_BYTE_GRAY);
            for (int y = 0; y < 16; y++) for (int x = 0; x < 16; x++) im.getRaster().setSample(x, y, 0, (x * (i + 1) + y * 7) % 256);
            javax.imageio.ImageIO.write(im, "png", images.resolve("im" + i + ".png").toFile());
        }
        Path out = dir.resolve("run");
        Run d = run("demo", "--duration", "25s", "--source", images.toString(), "--preset", "test", "--batch", "8", "--snapshot-every", "2",
                "--rate", "100", "--web-port", Integer.toString(port), "--out", out.toString(), "--json");
        assertEquals(0, d.rc(), d.err());
        JsonNode summary = new ObjectMapper().readTree(d.out());
        assertTrue(summary.get("images_in").asLong() >= 60, "the six images went round again: " + d.out());
        assertTrue(summary.get("train_steps").asLong() > 0, d.out());
        assertTrue(summary.get("embeddings_committed").asLong() > 0, d.out());
        assertTrue(summary.get("snapshots").asInt() > 0, d.out());
        assertEquals(summary.get("embeddings_committed").asLong(), Files.readAllLines(out.resolve("embeddings.jsonl")).size());
        assertTrue(d.err().contains("Flink web UI on http://127.0.0.1:" + port), d.err());
    }

    /** A budget of images: exactly that many trained, then the job ends by itself with a snapshot of its last step. */
    @Test
    void demoWithImagesEndsWhenTheyAreTrained(@TempDir Path dir) throws Exception {
        int port = freePort();
        // 5 steps; 5 is not a multiple of --snapshot-every, yet the last step is the final snapshot.
        Run d = run("demo", "--images", "40", "--source", "synthetic", "--preset", "test", "--batch", "8", "--snapshot-every", "4",
                "--web-port", Integer.toString(port), "--out", dir.toString(), "--json");
        assertEquals(0, d.rc(), d.err());
        JsonNode summary = new ObjectMapper().readTree(d.out());
        assertEquals(40, summary.get("images_in").asLong(), d.out());
        assertEquals(40, summary.get("images_trained").asLong(), d.out());
        assertEquals(5, summary.get("train_steps").asLong(), d.out());
        var latest = new dinostream.pipeline.snapshot.SnapshotStore(dir.resolve("snapshots").toUri().toString(), 5).latest("demo").orElseThrow();
        assertEquals(5, latest.manifest().step());
    }

    /**
     * A camera feed (each image as 4 near-duplicate frames) through the filter and the replay buffer:
     * the frames the filter drops are not trained on, and after the first (all fresh) batch each step
     * takes half its images from the buffer.
     */
    @Test
    void demoOfACameraFeedWithReplayAndTheFilter(@TempDir Path dir) throws Exception {
        int port = freePort();
        Run d = run("demo", "--images", "160", "--order", "camera", "--run-length", "5", "--source", "fmnist", "--preset", "test",
                "--batch", "8", "--replay-size", "16", "--replay-ratio", "0.5", "--dedup", "--no-embed",
                "--web-port", Integer.toString(port), "--out", dir.toString(), "--json");
        assertEquals(0, d.rc(), d.err());
        JsonNode summary = new ObjectMapper().readTree(d.out());
        assertEquals(160, summary.get("images_in").asLong(), d.out());
        long trained = summary.get("images_trained").asLong(), steps = summary.get("train_steps").asLong();
        // 40 images in 160 frames: the filter keeps about one frame in four (on Fashion-MNIST; the
        // synthetic shapes' sharp edges and pixel noise keep 104 of 160 frames apart).
        assertTrue(trained >= 32 && trained <= 48, d.out());
        assertEquals(8 + 4 * (steps - 1), trained, "the first batch fresh, then 4 fresh and 4 replayed: " + d.out());
    }

    @Test
    void badArgumentsGiveOneLineAndExitCode2() {
        for (List<String> args : List.of(
                List.of("train", "--preset", "test"),
                List.of("train", "--bootstrap", "127.0.0.1:1", "--delivery", "twice"),
                List.of("embed", "--bootstrap", "127.0.0.1:1", "--images-topic", "i", "--embeddings-topic", "e", "--snapshot", "s",
                        "--from-offsets", "0:0", "--from-timestamp", "0"),
                List.of("embed", "--bootstrap", "127.0.0.1:1", "--images-topic", "i", "--embeddings-topic", "e", "--snapshot", "s",
                        "--from-offsets", "zero"),
                List.of("demo", "--duration", "5x"))) {
            Run r = run(args.toArray(new String[0]));
            assertEquals(2, r.rc(), args + ": " + r.err());
            assertTrue(r.err().startsWith("dinostream: error: "), args + ": " + r.err());
            assertEquals(1, r.err().strip().lines().count(), args + ": " + r.err());
        }
    }
}
