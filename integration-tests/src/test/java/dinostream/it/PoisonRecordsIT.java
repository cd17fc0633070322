package dinostream.it;

import dinostream.cli.LocalRun;
import dinostream.pipeline.job.JobOptions;
import dinostream.pipeline.kafka.EmbeddedKafka;
import dinostream.pipeline.produce.ImageProducer;
import dinostream.pipeline.produce.SyntheticSource;
import dinostream.schemas.DeadLetter;
import dinostream.schemas.EmbeddingRecord;
import dinostream.schemas.codec.AvroCodec;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.core.execution.JobClient;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Records that used to stop the stream, against a real Kafka broker with the job's clients at their
 * default settings: for each, the good images before and after it are embedded exactly once, the
 * bad one leaves a dead letter (or a counted skip), and the job is still running.
 */
// Each job runs ~5 s alone on 2 cores; generous for a loaded CI machine.
@Timeout(value = 4, unit = TimeUnit.MINUTES)
class PoisonRecordsIT {
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
        return PipelineEndToEndIT.options(kafka, prefix, dir).parallelism(1)
                .trainer(t -> t.snapshotEvery(1000))
                .probe(p -> p.size(0));
    }

    static Set<String> produce(JobOptions o, String model, int count, long seed) throws Exception {
        ImageProducer.Builder b = ImageProducer.builder(o.bootstrap(), o.imagesTopic());
        if (model != null) b.modelId(model);
        SyntheticSource src = new SyntheticSource(seed, count, 28, 1);
        int[] order = new int[count];
        for (int i = 0; i < count; i++) order[i] = i;
        b.build().run(src, order);
        Set<String> ids = new HashSet<>();
        for (int i = 0; i < count; i++) ids.add(src.read(i).id());
        return ids;
    }

    static void sendRaw(JobOptions o, byte[] key, byte[] value) throws Exception {
        // The test's own producer may send big records; the job's clients keep their defaults.
        try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(Map.of("bootstrap.servers", o.bootstrap(), "max.request.size", 8 << 20),
                new ByteArraySerializer(), new ByteArraySerializer())) {
            p.send(new ProducerRecord<>(o.imagesTopic(), 0, key, value)).get();
        }
    }

    static Map<String, Integer> embeddingsById(JobOptions o, int atLeast) throws Exception {
        Map<String, Integer> n = new TreeMap<>();
        for (ConsumerRecord<byte[], byte[]> r : PipelineEndToEndIT.readCommitted(kafka.bootstrap(), o.embeddingsTopic(), atLeast, Duration.ofSeconds(120))) {
            EmbeddingRecord e = AvroCodec.embeddingRecords().decode(r.value());
            n.merge(e.getImageId(), 1, Integer::sum);
        }
        return n;
    }

    static List<DeadLetter> deadLetters(JobOptions o, int atLeast) throws Exception {
        List<DeadLetter> out = new ArrayList<>();
        for (ConsumerRecord<byte[], byte[]> r : PipelineEndToEndIT.readCommitted(kafka.bootstrap(), o.deadLetterTopic(), atLeast, Duration.ofSeconds(60))) {
            out.add(AvroCodec.deadLetters().decode(r.value()));
        }
        return out;
    }

    static JobClient start(JobOptions o) throws Exception {
        return LocalRun.start(o, 0, o.groupId());
    }

    @Test
    void bigCorruptRecordsBadModelIdsAndExcessModelsNeitherStopNorDoubleAnything(@TempDir Path dir) throws Exception {
        JobOptions o = options("poison", dir).trainer(t -> t.maxModels(1)).build();
        kafka.admin().incrementalAlterConfigs(Map.of(
                new org.apache.kafka.common.config.ConfigResource(org.apache.kafka.common.config.ConfigResource.Type.TOPIC, o.imagesTopic()),
                List.of(new org.apache.kafka.clients.admin.AlterConfigOp(new org.apache.kafka.clients.admin.ConfigEntry("max.message.bytes", Integer.toString(8 << 20)),
                        org.apache.kafka.clients.admin.AlterConfigOp.OpType.SET)))).all().get();

        Set<String> good = new HashSet<>(produce(o, "m1", 16, 11));
        byte[] big = new byte[3 << 20];   // 3 MiB that are not Avro: over a default producer's 1 MiB max.request.size
        new Random(3).nextBytes(big);
        sendRaw(o, "big".getBytes(), big);
        Set<String> badIds = new HashSet<>();
        for (String id : List.of("../../etc", "x".repeat(500), "a\nb")) badIds.addAll(produce(o, id, 1, 100 + id.length()));
        Set<String> excess = produce(o, "m2", 4, 13);   // a second model with --max-models 1
        good.addAll(produce(o, "m1", 16, 12));

        JobClient job = start(o);
        try {
            Map<String, Integer> emb = embeddingsById(o, good.size());
            assertEquals(good, emb.keySet(), "every good image embedded, nothing else");
            assertTrue(emb.values().stream().allMatch(n -> n == 1), "none twice: " + emb);
            List<DeadLetter> dead = deadLetters(o, 1 + 3 + 4);
            Map<String, Integer> reasons = new TreeMap<>();
            for (DeadLetter d : dead) reasons.merge(d.getReason().toString().split(":")[0], 1, Integer::sum);
            assertEquals(Map.of("BAD_ENCODING", 1, "INVALID_MODEL_ID", 3, "TOO_MANY_MODELS", 4), reasons);
            DeadLetter bigOne = dead.stream().filter(d -> d.getReason().toString().startsWith("BAD_ENCODING")).findFirst().orElseThrow();
            assertEquals((long) big.length, bigOne.getOriginalSize());
            assertEquals(dinostream.pipeline.decode.DecodeFunction.DEFAULT_DEAD_LETTER_VALUE_BYTES, bigOne.getValue().remaining());
            assertEquals(JobStatus.RUNNING, job.getJobStatus().get());
        } finally {
            job.cancel().get();
        }
    }

    /** A teacher temperature of 0 makes every step NaN: each is skipped, the model pauses, embeddings go on. */
    @Test
    void nonFiniteStepsAreSkippedAndTheStreamGoesOn(@TempDir Path dir) throws Exception {
        JobOptions o = options("nan", dir).trainer(t -> t.teacherTemp(0.0).maxSkippedSteps(2)).build();
        Set<String> good = produce(o, "m1", 40, 21);
        JobClient job = start(o);
        try {
            Map<String, Integer> emb = embeddingsById(o, good.size());
            assertEquals(good, emb.keySet());
            assertTrue(emb.values().stream().allMatch(n -> n == 1), "none twice: " + emb);
            assertEquals(JobStatus.RUNNING, job.getJobStatus().get());
            assertEquals(0, PipelineEndToEndIT.lines(dir.resolve("metrics.jsonl")), "no step was applied");
        } finally {
            job.cancel().get();
        }
    }
}
