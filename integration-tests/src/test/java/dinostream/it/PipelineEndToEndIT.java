package dinostream.it;

import dinostream.model.dino.Presets;
import dinostream.pipeline.job.Checkpoints;
import dinostream.cli.LocalRun;
import dinostream.pipeline.job.JobOptions;
import dinostream.pipeline.kafka.EmbeddedKafka;
import dinostream.pipeline.produce.ImageProducer;
import dinostream.pipeline.produce.SyntheticSource;
import dinostream.pipeline.snapshot.Snapshot;
import dinostream.pipeline.snapshot.SnapshotStore;
import dinostream.schemas.DeadLetter;
import dinostream.schemas.EmbeddingRecord;
import dinostream.schemas.codec.AvroCodec;
import org.apache.flink.core.execution.JobClient;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The whole job against a real Kafka 4.2 broker (in-process, 127.0.0.1) on a local Flink MiniCluster. */
// Each job runs ~5 s alone on 2 cores; generous for a loaded CI machine.
@Timeout(value = 4, unit = TimeUnit.MINUTES)
class PipelineEndToEndIT {
    static EmbeddedKafka kafka;

    @BeforeAll
    static void startKafka(@TempDir Path dir) {
        kafka = EmbeddedKafka.builder().dataDir(dir.resolve("kafka")).build().start();
    }

    @AfterAll
    static void stopKafka() {
        if (kafka != null) kafka.close();
    }

    static JobOptions.Builder options(String prefix, Path dir) {
        return options(kafka, prefix, dir);
    }

    /** Options of a small job on {@code kafka} with its three topics created: the test preset, batch 8, fast checkpoints. */
    static JobOptions.Builder options(EmbeddedKafka kafka, String prefix, Path dir) {
        JobOptions.Builder b = LocalRun.options(kafka.bootstrap(), Presets.get("test"), dir)
                .topicPrefix(prefix)
                .modelId("m1")
                .parallelism(2)
                .checkpointInterval(Duration.ofMillis(500))
                .trainer(t -> t.batch(8).threads(1).snapshotEvery(2).broadcastEvery(1))
                .embedder(e -> e.threads(1));
        LocalRun.createTopics(kafka, b.build(), 2, Map.of());
        return b;
    }

    static void produce(JobOptions o, int count, long seed) throws Exception {
        ImageProducer p = ImageProducer.builder(o.bootstrap(), o.imagesTopic()).build();
        SyntheticSource src = new SyntheticSource(seed, count, 28, 1);
        int[] order = new int[count];
        for (int i = 0; i < count; i++) order[i] = i;
        p.run(src, order);
    }

    static List<ConsumerRecord<byte[], byte[]>> readCommitted(String topic, int atLeast, Duration timeout) {
        return readCommitted(kafka.bootstrap(), topic, atLeast, timeout);
    }

    /** What a read_committed consumer sees of a topic: at least {@code atLeast} records, then one more poll for extras. */
    static List<ConsumerRecord<byte[], byte[]>> readCommitted(String bootstrap, String topic, int atLeast, Duration timeout) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("isolation.level", "read_committed");
        p.put("auto.offset.reset", "earliest");
        p.put("group.id", "reader-" + System.nanoTime());
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            c.subscribe(List.of(topic));
            long end = System.nanoTime() + timeout.toNanos();
            while (System.nanoTime() < end && out.size() < atLeast) c.poll(Duration.ofMillis(200)).forEach(out::add);
            // One more poll: more than expected would be a duplicate.
            c.poll(Duration.ofMillis(500)).forEach(out::add);
        }
        return out;
    }

    @Test
    void imagesInEmbeddingsOutOnePerImageWithDeadLettersAndSnapshots(@TempDir Path dir) throws Exception {
        JobOptions o = options("e2e", dir).bounded(true).build();
        produce(o, 40, 1);
        try (KafkaProducer<byte[], byte[]> bad = new KafkaProducer<>(Map.of("bootstrap.servers", kafka.bootstrap()),
                new ByteArraySerializer(), new ByteArraySerializer())) {
            bad.send(new ProducerRecord<>(o.imagesTopic(), 0, "junk".getBytes(), "not avro".getBytes())).get();
        }

        LocalRun.start(o, 0, "e2e").getJobExecutionResult().get();

        AvroCodec<EmbeddingRecord> codec = AvroCodec.embeddingRecords();
        List<ConsumerRecord<byte[], byte[]>> out = readCommitted(o.embeddingsTopic(), 40, Duration.ofSeconds(30));
        Set<String> ids = new TreeSet<>();
        for (ConsumerRecord<byte[], byte[]> r : out) {
            EmbeddingRecord e = codec.decode(r.value());
            ids.add(e.getImageId());
            assertEquals(32, e.getVector().size());
            assertEquals("m1", e.getModelId());
            assertEquals(64, e.getSnapshotHash().length());
        }
        assertEquals(40, out.size(), "one embedding per image, none twice");
        assertEquals(40, ids.size());

        List<ConsumerRecord<byte[], byte[]>> dead = readCommitted(o.deadLetterTopic(), 1, Duration.ofSeconds(10));
        assertEquals(1, dead.size());
        DeadLetter d = AvroCodec.deadLetters().decode(dead.get(0).value());
        assertEquals("avro", d.getStage());
        assertEquals("not avro", new String(d.getValue().array()));

        // 40 images at batch 8: 5 steps. A snapshot is due every 2 steps and written from the first
        // checkpoint that completes after it (the last one: the final checkpoint of the bounded run).
        SnapshotStore store = new SnapshotStore(o.trainer().snapshotDir(), 5);
        assertFalse(store.list("m1").isEmpty());
        Snapshot s = SnapshotStore.load(store.latest("m1").orElseThrow().uri());
        assertTrue(s.manifest().step() >= 4, "the last snapshot: step " + s.manifest().step());
        assertEquals(8 * s.manifest().step(), s.manifest().imagesSeen());
        assertEquals(s.manifest().step(), s.state().step(), "the manifest describes the state it holds");
        assertTrue(Files.readAllLines(dir.resolve("metrics.jsonl")).size() == 5);
    }

    @Test
    void cancelAndRestoreContinuesWithNoImageLostOrCountedTwice(@TempDir Path dir) throws Exception {
        JobOptions.Builder b = options("restore", dir).embed(false);
        JobOptions o = b.build();
        produce(o, 24, 2);

        JobClient job = LocalRun.start(o, 0, "restore-1");
        Path metrics = dir.resolve("metrics.jsonl");
        waitFor(() -> lines(metrics) >= 3, Duration.ofSeconds(60), "3 train steps");
        // A checkpoint completed after the third step holds all 24 images.
        long after = System.currentTimeMillis();
        waitFor(() -> checkpointAfter(o.checkpointDir(), after), Duration.ofSeconds(30), "a checkpoint after step 3");
        job.cancel().get();
        String chk = Checkpoints.latest(o.checkpointDir()).orElseThrow();

        produce(o, 16, 3);
        JobClient job2 = LocalRun.start(b.restorePath(chk).build(), 0, "restore-2");
        waitFor(() -> lines(metrics) >= 5, Duration.ofSeconds(60), "5 train steps");
        Thread.sleep(1500);   // any duplicate would show as a sixth step
        job2.cancel().get();

        List<String> l = Files.readAllLines(metrics);
        assertEquals(5, l.size(), String.join("\n", l));
        Map<String, Object> last = new com.fasterxml.jackson.databind.ObjectMapper().readValue(l.get(4), HashMap.class);
        assertEquals(5, ((Number) last.get("step")).intValue());
        assertEquals(40, ((Number) last.get("images_seen")).intValue());
        assertFalse(l.get(3).isEmpty());
    }

    @Test
    void backfillWithAPinnedSnapshotGivesIdenticalVectorsTwice(@TempDir Path dir) throws Exception {
        JobOptions o = options("backfill", dir).build();
        produce(o, 20, 4);
        kafka.createTopic("backfill-out-1", 1, Map.of());
        kafka.createTopic("backfill-out-2", 1, Map.of());
        SnapshotStore store = new SnapshotStore(dir.resolve("pinned").toUri().toString(), 5);
        String snapshot = store.write("pinned", dinostream.model.io.DinoState.init(Presets.get("test"), 9),
                new dinostream.pipeline.snapshot.SnapshotInfo(0, Map.of(), Map.of(), Map.of())).uri();

        Map<String, List<Float>> first = null;
        for (String out : List.of("backfill-out-1", "backfill-out-2")) {
            java.io.StringWriter err = new java.io.StringWriter();
            int rc = dinostream.cli.Main.commandLine(new java.io.PrintWriter(new java.io.StringWriter()), new java.io.PrintWriter(err))
                    .execute("embed", "--bootstrap", kafka.bootstrap(), "--images-topic", o.imagesTopic(), "--embeddings-topic", out,
                            "--snapshot", snapshot, "--from-offsets", "0:0,1:0", "--batch", "7", "--out", dir.resolve("run").toString());
            assertEquals(0, rc, err.toString());
            Map<String, List<Float>> vectors = new HashMap<>();
            for (ConsumerRecord<byte[], byte[]> r : readCommitted(out, 20, Duration.ofSeconds(30))) {
                EmbeddingRecord e = AvroCodec.embeddingRecords().decode(r.value());
                assertEquals("pinned", e.getModelId());
                vectors.put(e.getImageId(), e.getVector());
            }
            assertEquals(20, vectors.size());
            if (first == null) first = vectors;
            else assertEquals(first, vectors, "a second backfill of the same range gave other vectors");
        }
    }

    static int lines(Path p) {
        try {
            return Files.exists(p) ? Files.readAllLines(p).size() : 0;
        } catch (Exception e) {
            return 0;
        }
    }

    static boolean checkpointAfter(String dir, long time) {
        try {
            var latest = Checkpoints.latest(dir);
            if (latest.isEmpty()) return false;
            Path meta = Path.of(java.net.URI.create(latest.get())).resolve("_metadata");
            return Files.getLastModifiedTime(meta).toMillis() > time;
        } catch (Exception e) {
            return false;
        }
    }

    interface Check {
        boolean ok() throws Exception;
    }

    static void waitFor(Check c, Duration timeout, String what) throws Exception {
        long end = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < end) {
            if (c.ok()) return;
            Thread.sleep(100);
        }
        throw new AssertionError("timed out waiting for " + what);
    }
}
