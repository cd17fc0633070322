package dinostream.pipeline.produce;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dinostream.cli.Main;
import dinostream.pipeline.kafka.EmbeddedKafka;
import dinostream.schemas.ImageEncoding;
import dinostream.schemas.ImageRecord;
import dinostream.schemas.codec.AvroCodec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code dinostream produce} run in-process against one embedded broker for the whole class. */
// Each test takes one or two seconds against the in-process broker.
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class ProduceCommandIT {
    static final ObjectMapper JSON = new ObjectMapper();
    static final AvroCodec<ImageRecord> CODEC = AvroCodec.imageRecords();
    static EmbeddedKafka kafka;

    @TempDir
    static Path tmp;

    @BeforeAll
    static void startKafka() {
        kafka = EmbeddedKafka.builder().build().start();
        System.err.println("ProduceCommandIT: broker started in " + kafka.startMillis() + " ms on " + kafka.bootstrap());
    }

    @AfterAll
    static void stopKafka() {
        if (kafka != null) kafka.close();
    }

    record Result(int rc, String out, String err) {
        List<String> errLines() {
            return err.isEmpty() ? List.of() : List.of(err.split("\\R"));
        }

        JsonNode json() throws Exception {
            return JSON.readTree(out);
        }

        @Override
        public String toString() {
            return "rc=" + rc + "\n--- stdout\n" + out + "--- stderr\n" + err;
        }
    }

    static Result run(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int rc = Main.commandLine(new PrintWriter(out, true), new PrintWriter(err, true)).execute(args);
        return new Result(rc, out.toString(), err.toString());
    }

    @Test
    void syntheticImagesArriveAndDecode() throws Exception {
        kafka.createTopic("synthetic", 2, Map.of());
        Instant before = Instant.now();
        Result r = run("produce", "--bootstrap", kafka.bootstrap(), "--topic", "synthetic", "--source", "synthetic",
                "--limit", "50", "--seed", "7", "--model-id", "m1", "--json");
        assertEquals(0, r.rc(), r.toString());
        JsonNode j = r.json();
        assertEquals(50, j.get("sent").asInt());
        assertEquals("synthetic", j.get("topic").asText());
        assertEquals("synthetic/7", j.get("source").asText());
        assertTrue(r.err().contains("produced 50 images from synthetic/7 to topic synthetic"), r.toString());

        List<ConsumerRecord<String, byte[]>> got = consume("synthetic", 50);
        assertEquals(50, got.size());
        Set<String> ids = new HashSet<>();
        for (ConsumerRecord<String, byte[]> cr : got) {
            ImageRecord im = CODEC.decode(cr.value());
            assertEquals(cr.key(), im.getId(), "keyed by id");
            ids.add(im.getId());
            int n = Integer.parseInt(im.getId().substring("synthetic-7-".length()));
            assertEquals(ImageEncoding.RAW_U8, im.getEncoding());
            assertEquals(28, im.getWidth());
            assertEquals(28, im.getHeight());
            assertEquals(1, im.getChannels());
            assertEquals(784, im.getBytes().remaining());
            assertEquals(n % 10, im.getLabel());
            assertEquals("synthetic/7", im.getSource());
            assertEquals("m1", im.getModelId());
            assertTrue(!im.getEventTime().isBefore(before.minusMillis(1)) && !im.getEventTime().isAfter(Instant.now()), "event time = when sent");
            assertArrayEquals(new SyntheticSource(7, 50, 28, 1).render(n), bytes(im.getBytes()), "the generator's image " + n);
        }
        Set<String> expected = new HashSet<>();
        for (int i = 0; i < 50; i++) expected.add("synthetic-7-" + i);
        assertEquals(expected, ids);
    }

    @Test
    void classSortedStreamGoesClassByClass() throws Exception {
        kafka.createTopic("sorted", 1, Map.of());
        Result r = run("produce", "--bootstrap", kafka.bootstrap(), "--topic", "sorted", "--source", "synthetic",
                "--limit", "30", "--order", "class-sorted", "--size", "16", "--channels", "3");
        assertEquals(0, r.rc(), r.toString());
        assertEquals("", r.out(), "without --json nothing goes to stdout");
        List<Integer> labels = new ArrayList<>();
        for (ConsumerRecord<String, byte[]> cr : consume("sorted", 30)) {
            ImageRecord im = CODEC.decode(cr.value());
            assertEquals(16 * 16 * 3, im.getBytes().remaining());
            labels.add(im.getLabel());
        }
        assertEquals(30, labels.size());
        List<Integer> sorted = new ArrayList<>(labels);
        sorted.sort(null);
        assertEquals(sorted, labels, "one partition, class by class");
        assertTrue(new HashSet<>(labels).size() >= 7, "most classes present: " + labels);
    }

    @Test
    void cameraFeedSendsRunsOfJitteredFrames() throws Exception {
        kafka.createTopic("camera", 1, Map.of());
        Result r = run("produce", "--bootstrap", kafka.bootstrap(), "--topic", "camera", "--source", "synthetic",
                "--limit", "60", "--order", "camera", "--frames", "3", "--run-length", "5", "--seed", "4", "--json");
        assertEquals(0, r.rc(), r.toString());
        JsonNode j = r.json();
        assertEquals(60, j.get("sent").asInt(), "the limit counts frames");
        assertEquals("camera", j.get("order").asText());
        assertEquals(3, j.get("frames").asInt());
        assertEquals(5, j.get("run_length").asInt());
        List<ImageRecord> got = new ArrayList<>();
        for (ConsumerRecord<String, byte[]> cr : consume("camera", 60)) got.add(CODEC.decode(cr.value()));
        assertEquals(60, got.size());
        CameraFeed expected = CameraFeed.of(new SyntheticSource(4, 60, 28, 1), 4, 60, 3, 5);
        for (int i = 0; i < 60; i++) {
            ImageRecord im = got.get(i);
            SourceImage want = expected.read(i);
            assertEquals(want.id(), im.getId(), "one partition, in feed order");
            assertTrue(im.getId().endsWith("-f" + (i % 3)), im.getId());
            assertEquals(want.label(), im.getLabel());
            assertArrayEquals(want.bytes(), bytes(im.getBytes()));
        }
        expectError(2, "--order camera needs raw-pixel images", "produce", "--bootstrap", kafka.bootstrap(), "--topic", "camera",
                "--source", tmp.toString(), "--order", "camera");
    }

    @Test
    void folderImagesAreSentUndecodedWithTheirMtime() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("images"));
        FolderSourceTest.makeTree(dir);
        Instant mtime = Instant.parse("2023-01-02T03:04:05Z");
        Files.setLastModifiedTime(dir.resolve("dogs/deep/c.PNG"), java.nio.file.attribute.FileTime.from(mtime));
        kafka.createTopic("folder", 1, Map.of());
        Result r = run("produce", "--bootstrap", kafka.bootstrap(), "--topic", "folder", "--source", dir.toString(), "--json");
        assertEquals(0, r.rc(), r.toString());
        assertEquals(5, r.json().get("sent").asInt());
        assertEquals(1, r.json().get("skipped").asInt());
        assertTrue(r.err().contains("produce: warning: skipping image 4 of " + dir.toAbsolutePath().normalize()), r.toString());

        List<ConsumerRecord<String, byte[]>> got = consume("folder", 5);
        assertEquals(5, got.size());
        Set<String> ids = new HashSet<>();
        for (ConsumerRecord<String, byte[]> cr : got) {
            ImageRecord im = CODEC.decode(cr.value());
            ids.add(im.getId());
            assertArrayEquals(Files.readAllBytes(dir.resolve(im.getId())), bytes(im.getBytes()), im.getId());
            assertEquals(im.getId().endsWith(".png") && !im.getId().contains("actually") || im.getId().endsWith(".PNG")
                    ? ImageEncoding.PNG : ImageEncoding.JPEG, im.getEncoding(), im.getId());
            assertNull(im.getModelId());
            if (im.getId().equals("dogs/deep/c.PNG")) {
                assertEquals(mtime, im.getEventTime());
                assertEquals(1, im.getLabel());
                assertEquals("dogs", im.getAttributes().get("class"));
            }
            if (im.getId().equals("loose.jpeg")) assertNull(im.getLabel());
        }
        assertEquals(Set.of("cats/a.jpg", "cats/b.png", "dogs/actually-jpeg.png", "dogs/deep/c.PNG", "loose.jpeg"), ids);
    }

    @Test
    void fashionMnistGoesOutWithLabels() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(FashionMnist.available(FashionMnist.DEFAULT_DIR, FashionMnist.Split.TEST),
                "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist); the synthetic tests cover produce");
        kafka.createTopic("fmnist", 1, Map.of());
        Result r = run("produce", "--bootstrap", kafka.bootstrap(), "--topic", "fmnist", "--source", "fmnist", "--split", "test",
                "--limit", "20", "--seed", "3");
        assertEquals(0, r.rc(), r.toString());
        FashionMnist f = FashionMnist.load(FashionMnist.DEFAULT_DIR, FashionMnist.Split.TEST);
        List<ConsumerRecord<String, byte[]>> got = consume("fmnist", 20);
        assertEquals(20, got.size());
        for (ConsumerRecord<String, byte[]> cr : got) {
            ImageRecord im = CODEC.decode(cr.value());
            int i = Integer.parseInt(im.getId().substring("fmnist-test-".length()));
            assertEquals(f.label(i), im.getLabel());
            assertArrayEquals(f.pixels(i), bytes(im.getBytes()));
            assertEquals("fashion-mnist/test", im.getSource());
        }
    }

    @Test
    void rateIsHonoured() throws Exception {
        kafka.createTopic("paced", 1, Map.of());
        long t0 = System.nanoTime();
        Result r = run("produce", "--bootstrap", kafka.bootstrap(), "--topic", "paced", "--source", "synthetic",
                "--limit", "20", "--rate", "40", "--json");
        double wall = (System.nanoTime() - t0) / 1e9;
        assertEquals(0, r.rc(), r.toString());
        double seconds = r.json().get("seconds").asDouble();
        // 20 images at 40/s: the last one goes out 19/40 = 0.475 s after the first.
        assertTrue(seconds >= 0.47, "sent in " + seconds + " s");
        assertTrue(seconds < 5, "not much slower than asked: " + seconds + " s");
        assertTrue(wall >= seconds);
        assertEquals(20, r.json().get("sent").asInt());
    }

    @Test
    void errorsAreOneLineWithTheRightExitCode() {
        String b = kafka.bootstrap();
        expectError(2, "no such directory: " + tmp.resolve("missing"),
                "produce", "--bootstrap", b, "--topic", "x", "--source", tmp.resolve("missing").toString());
        expectError(2, "unknown source 'bogus' (expected fmnist, synthetic or a directory)",
                "produce", "--bootstrap", b, "--topic", "x", "--source", "bogus");
        expectError(2, "bad --kafka-property 'linger.ms': expected KEY=VALUE",
                "produce", "--bootstrap", b, "--topic", "x", "--source", "synthetic", "--kafka-property", "linger.ms");
        expectError(2, "bad Kafka producer setting: Invalid value maybe for configuration acks",
                "produce", "--bootstrap", b, "--topic", "x", "--source", "synthetic", "--kafka-property", "acks=maybe");
        expectError(2, "bad --bootstrap 'localhost': expected HOST:PORT",
                "produce", "--bootstrap", "localhost", "--topic", "x", "--source", "synthetic");
        expectError(2, "--split applies only to --source fmnist",
                "produce", "--bootstrap", b, "--topic", "x", "--source", "synthetic", "--split", "test");
        expectError(2, "unknown order 'random' (expected iid, class-sorted or camera)",
                "produce", "--bootstrap", b, "--topic", "x", "--source", "synthetic", "--order", "random");
        expectError(2, "--rate must be a positive number",
                "produce", "--bootstrap", b, "--topic", "x", "--source", "synthetic", "--rate", "0");
        expectError(2, "missing required option: '--topic=T'",
                "produce", "--bootstrap", b, "--source", "synthetic");
        expectError(1, "Fashion-MNIST not found at " + tmp.resolve("train-images-idx3-ubyte.gz") + ": apt-get install dataset-fashion-mnist",
                "produce", "--bootstrap", b, "--topic", "x", "--source", "fmnist", "--fmnist-dir", tmp.toString());
        expectError(1, "topic does-not-exist does not exist on " + b + " (create it first)",
                "produce", "--bootstrap", b, "--topic", "does-not-exist", "--source", "synthetic", "--limit", "1");
    }

    @Test
    void anUnreachableBrokerIsOneLineAtOnce() throws Exception {
        int closed;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
            closed = s.getLocalPort();
        }
        long t0 = System.nanoTime();
        expectError(1, "cannot reach Kafka at 127.0.0.1:" + closed + ": Connection refused",
                "produce", "--bootstrap", "127.0.0.1:" + closed, "--topic", "x", "--source", "synthetic", "--limit", "1");
        assertTrue(System.nanoTime() - t0 < 5_000_000_000L, "no waiting for a Kafka client timeout");
    }

    static void expectError(int rc, String message, String... args) {
        Result r = run(args);
        assertEquals(rc, r.rc(), r.toString());
        assertEquals(1, r.errLines().size(), "one line: " + r);
        assertTrue(r.errLines().get(0).startsWith("dinostream: error: " + message), r.toString());
        assertEquals("", r.out());
    }

    static byte[] bytes(ByteBuffer b) {
        byte[] a = new byte[b.remaining()];
        b.duplicate().get(a);
        return a;
    }

    static List<ConsumerRecord<String, byte[]>> consume(String topic, int n) {
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrap());
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        List<ConsumerRecord<String, byte[]>> out = new ArrayList<>();
        try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(c)) {
            List<TopicPartition> parts = consumer.partitionsFor(topic, Duration.ofSeconds(10)).stream()
                    .map(p -> new TopicPartition(topic, p.partition())).toList();
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (out.size() < n && System.nanoTime() < deadline) consumer.poll(Duration.ofMillis(200)).forEach(out::add);
            consumer.poll(Duration.ofMillis(200)).forEach(out::add);
        }
        return out;
    }
}
