package dinostream.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.model.dino.DinoConfig;
import dinostream.pipeline.job.JobOptions;
import dinostream.pipeline.kafka.EmbeddedKafka;
import dinostream.pipeline.produce.SyntheticSource;
import dinostream.schemas.ImageRecord;
import dinostream.schemas.codec.AvroCodec;
import org.apache.flink.core.execution.JobClient;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.net.http.HttpClient;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A bounded soak: the train job on a local MiniCluster with an in-process broker, fed at a steady
 * rate with good images mixed with every kind of bad record, reporting each minute what would show
 * a leak or a stall. Pass: RSS and heap after GC at the end within 10% of minute 10, consumer lag
 * not growing, and nothing lost (embeddings + dead letters = records in, each record once).
 */
@Command(name = "soak", mixinStandardHelpOptions = true,
        description = {"Run the job for --minutes on a steady mix of good and bad records and report, each minute,",
                "RSS, heap after GC, checkpoint size and duration, consumer lag and dead letters; then check",
                "that memory stayed flat, lag did not grow and every record came out once."})
final class BenchSoak implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Spec
    CommandSpec spec;

    @Option(names = "--minutes", paramLabel = "N", defaultValue = "30", description = "Minutes of traffic (default: ${DEFAULT-VALUE}).")
    int minutes;

    @Option(names = "--rate", paramLabel = "R", defaultValue = "40", description = "Records per second (default: ${DEFAULT-VALUE}).")
    double rate;

    @Option(names = "--bad-every", paramLabel = "K", defaultValue = "10", description = "One bad record in every K (default: ${DEFAULT-VALUE}).")
    int badEvery;

    @Option(names = "--preset", paramLabel = "P", defaultValue = "test", description = "Model preset (default: ${DEFAULT-VALUE}).")
    String preset;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "16", description = "Images per train step (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--checkpoint-interval", paramLabel = "SECONDS", defaultValue = "10", description = "Seconds between checkpoints (default: ${DEFAULT-VALUE}).")
    long checkpointSeconds;

    @Option(names = "--out", paramLabel = "DIR", description = "Run folder (default: a temporary one, deleted).")
    Path out;

    @Option(names = "--json", description = "Print one JSON object on stdout.")
    boolean json;

    /** The kinds of bad records mixed in, in turn. */
    private static final String[] BAD = {"junk", "corrupt-png", "invalid-model-id", "excess-model", "big"};

    @Override
    public Integer call() throws Exception {
        if (minutes < 1 || rate <= 0 || badEvery < 2) throw new ParameterException(spec.commandLine(), "--minutes >= 1, --rate > 0 and --bad-every >= 2");
        PrintWriter err = spec.commandLine().getErr();
        DinoConfig cfg = ModelOptions.preset(spec, preset);
        Path dir = out != null ? out : Files.createTempDirectory("dinostream-soak-");
        double[] loadBefore = Proc.loadAverage();
        try (EmbeddedKafka kafka = EmbeddedKafka.builder().dataDir(dir.resolve("kafka")).build().start()) {
            JobOptions o = LocalRun.options(kafka.bootstrap(), cfg, dir)
                    .groupId("dinostream-soak")
                    .parallelism(1)
                    .checkpointInterval(Duration.ofSeconds(checkpointSeconds))
                    // maxModels 1: every "excess-model" record names a model beyond it.
                    .trainer(t -> t.batch(batch).threads(1).maxModels(1).snapshotEvery(50))
                    .probe(p -> p.size(0))
                    .embedder(e -> e.threads(1))
                    .build();
            LocalRun.createTopics(kafka, o, 1, Map.of("max.message.bytes", Integer.toString(8 << 20)));
            int restPort = BenchPipeline.freePort();
            JobClient job = LocalRun.start(o, restPort, "dinostream bench soak");

            Feed feed = new Feed(o, cfg);
            Thread feeder = new Thread(feed, "soak-feed");
            feeder.setDaemon(true);
            feeder.start();
            Outputs outputs = new Outputs(o);
            HttpClient http = HttpClient.newHttpClient();
            ArrayNode perMinute = JSON.createArrayNode();
            err.println("minute  records_in  embeddings  dead_letters  lag  rss_mb  heap_after_gc_mb  checkpoint_mb  checkpoint_ms");
            long start = System.nanoTime();
            for (int m = 1; m <= minutes; m++) {
                sleepUntil(start + m * 60_000_000_000L);
                ObjectNode row = minute(m, feed, outputs, kafka, o, http, restPort, job);
                perMinute.add(row);
                err.printf("%6d  %10d  %10d  %12d  %4d  %6.0f  %16.1f  %13.2f  %13d%n", m, row.get("records_in").asLong(),
                        row.get("embeddings").asLong(), row.get("dead_letters").asLong(), row.get("lag").asLong(),
                        row.get("rss_mb").asDouble(), row.get("heap_after_gc_mb").asDouble(),
                        row.get("checkpoint_bytes").asLong() / 1e6, row.get("checkpoint_ms").asLong());
            }
            feed.stop.set(true);
            feeder.join();
            // Drain: every record comes out, once, as an embedding or a dead letter.
            long deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
            while (System.nanoTime() < deadline && outputs.poll() < feed.sent.get()) Thread.sleep(200);
            outputs.poll();
            String state = job.getJobStatus().get().toString();
            job.cancel().get();

            ObjectNode r = JSON.createObjectNode();
            r.put("minutes", minutes);
            r.put("rate", rate);
            r.put("bad_every", badEvery);
            r.put("preset", cfg.preset);
            r.put("batch", batch);
            r.put("records_in", feed.sent.get());
            r.put("good_in", feed.good.get());
            r.put("embeddings", outputs.embeddings);
            r.put("dead_letters", outputs.deadLetters);
            r.put("duplicates", outputs.duplicates);
            r.put("job_state_at_end", state);
            r.set("per_minute", perMinute);
            boolean nothingLost = outputs.embeddings + outputs.deadLetters == feed.sent.get() && outputs.duplicates == 0
                    && outputs.embedded.cardinality() == feed.good.get();
            r.put("nothing_lost", nothingLost);
            JsonNode ref = perMinute.get(Math.min(10, minutes) - 1), end = perMinute.get(minutes - 1);
            boolean rssFlat = end.get("rss_mb").asDouble() <= 1.10 * ref.get("rss_mb").asDouble();
            boolean heapFlat = end.get("heap_after_gc_mb").asDouble() <= 1.10 * ref.get("heap_after_gc_mb").asDouble();
            boolean lagFlat = end.get("lag").asLong() <= Math.max(2 * rate * checkpointSeconds, perMinute.get(0).get("lag").asLong());
            r.put("rss_within_10pct_of_minute_" + Math.min(10, minutes), rssFlat);
            r.put("heap_within_10pct_of_minute_" + Math.min(10, minutes), heapFlat);
            r.put("lag_not_growing", lagFlat);
            r.put("pass", nothingLost && rssFlat && heapFlat && lagFlat && state.equals("RUNNING"));
            r.set("loadavg_before", Json.array(loadBefore));
            r.set("loadavg_after", Json.array(Proc.loadAverage()));
            if (json) Json.print(spec.commandLine().getOut(), r);
            else err.println(r.toPrettyString());
            return r.get("pass").asBoolean() ? 0 : 1;
        } finally {
            if (out == null) BenchPipeline.deleteTree(dir);
        }
    }

    private ObjectNode minute(int m, Feed feed, Outputs outputs, EmbeddedKafka kafka, JobOptions o, HttpClient http, int restPort,
                              JobClient job) throws Exception {
        ObjectNode row = JSON.createObjectNode();
        row.put("minute", m);
        row.put("records_in", feed.sent.get());
        outputs.poll();
        row.put("embeddings", outputs.embeddings);
        row.put("dead_letters", outputs.deadLetters);
        row.put("lag", lag(kafka, o));
        row.put("rss_mb", rssMb());
        MemoryMXBean mem = ManagementFactory.getMemoryMXBean();
        System.gc();
        row.put("heap_after_gc_mb", mem.getHeapMemoryUsage().getUsed() / 1e6);
        row.put("heap_committed_mb", mem.getHeapMemoryUsage().getCommitted() / 1e6);
        row.put("direct_mb", dinostream.model.runtime.DirectMemory.used() / 1e6);
        JsonNode c = BenchPipeline.get(http, "http://127.0.0.1:" + restPort + "/jobs/" + job.getJobID() + "/checkpoints");
        JsonNode latest = c == null ? null : c.path("latest").path("completed");
        row.put("checkpoint_bytes", latest == null ? -1 : latest.path("checkpointed_size").asLong(-1));
        row.put("checkpoint_ms", latest == null ? -1 : latest.path("end_to_end_duration").asLong(-1));
        row.put("checkpoints_completed", c == null ? -1 : c.path("counts").path("completed").asLong(-1));
        return row;
    }

    /** Records the job has not committed yet: the log end minus the group's committed offset. */
    private static long lag(EmbeddedKafka kafka, JobOptions o) throws Exception {
        Admin admin = kafka.admin();
        TopicPartition tp = new TopicPartition(o.imagesTopic(), 0);
        long end = admin.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp).get().offset();
        var committed = admin.listConsumerGroupOffsets(o.groupId()).partitionsToOffsetAndMetadata().get().get(tp);
        return end - (committed == null ? 0 : committed.offset());
    }

    /** The producer of the soak: good images of the one model, every K-th record a bad one of the next kind. */
    final class Feed implements Runnable {
        final AtomicBoolean stop = new AtomicBoolean();
        final AtomicLong sent = new AtomicLong(), good = new AtomicLong();
        private final JobOptions o;
        private final DinoConfig cfg;

        Feed(JobOptions o, DinoConfig cfg) {
            this.o = o;
            this.cfg = cfg;
        }

        @Override
        public void run() {
            SyntheticSource src = new SyntheticSource(7, Integer.MAX_VALUE, cfg.imgSize, cfg.inChans);
            AvroCodec<ImageRecord> codec = AvroCodec.imageRecords();
            Random rnd = new Random(7);
            Properties p = new Properties();
            p.put("bootstrap.servers", o.bootstrap());
            p.put("max.request.size", Integer.toString(8 << 20));
            p.put("linger.ms", "5");
            long periodNanos = (long) (1e9 / rate), next = System.nanoTime();
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
                for (long i = 0; !stop.get(); i++) {
                    byte[] key = ("soak-" + i).getBytes(StandardCharsets.UTF_8), value;
                    if (i % badEvery == badEvery - 1) {
                        String kind = BAD[(int) (i / badEvery % BAD.length)];
                        value = switch (kind) {
                            case "junk" -> "not an image record".getBytes(StandardCharsets.UTF_8);
                            case "corrupt-png" -> codec.encode(record(src, i, null, true));
                            case "invalid-model-id" -> codec.encode(record(src, i, "../../etc/" + i, false));
                            case "excess-model" -> codec.encode(record(src, i, "extra-" + i, false));
                            default -> {
                                byte[] big = new byte[2 << 20];
                                rnd.nextBytes(big);
                                yield big;
                            }
                        };
                    } else {
                        value = codec.encode(record(src, i, null, false));
                        good.incrementAndGet();
                    }
                    producer.send(new ProducerRecord<>(o.imagesTopic(), 0, key, value)).get();
                    sent.incrementAndGet();
                    next += periodNanos;
                    long wait = next - System.nanoTime();
                    if (wait > 0) Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                }
            } catch (Exception e) {
                spec.commandLine().getErr().println("dinostream bench soak: the feed failed: " + Errors.describe(e));
            }
        }

        private ImageRecord record(SyntheticSource src, long i, String modelId, boolean corruptPng) throws Exception {
            var img = src.read((int) (i % 100_000));
            ImageRecord r = img.toRecord("soak", Instant.now(), modelId);
            r.setId("soak-" + i);
            if (corruptPng) {
                r.setEncoding(dinostream.schemas.ImageEncoding.PNG);
                r.setWidth(null);
                r.setHeight(null);
                r.setChannels(null);
                byte[] png = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R', 1, 2, 3};
                r.setBytes(java.nio.ByteBuffer.wrap(png));
            }
            return r;
        }
    }

    /**
     * What came out, read_committed: embeddings by the record number in their image id, dead letters
     * by their offset (one partition). Bit sets, so that the benchmark's own bookkeeping does not grow
     * the heap it measures by more than a bit per record.
     */
    static final class Outputs {
        final java.util.BitSet embedded = new java.util.BitSet(), deadLettered = new java.util.BitSet();
        long embeddings, deadLetters, duplicates;
        private final KafkaConsumer<byte[], byte[]> consumer;
        private final JobOptions o;

        Outputs(JobOptions o) {
            this.o = o;
            Properties p = new Properties();
            p.put("bootstrap.servers", o.bootstrap());
            p.put("isolation.level", "read_committed");
            p.put("auto.offset.reset", "earliest");
            p.put("group.id", "soak-reader");
            consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
            consumer.subscribe(List.of(o.embeddingsTopic(), o.deadLetterTopic()));
        }

        /** Reads what is there now (until a poll comes back empty); returns the records accounted for. */
        long poll() throws Exception {
            var batch = consumer.poll(Duration.ofMillis(500));
            while (!batch.isEmpty()) {
                take(batch);
                batch = consumer.poll(Duration.ofMillis(200));
            }
            return embeddings + deadLetters;
        }

        private void take(Iterable<ConsumerRecord<byte[], byte[]>> records) throws Exception {
            for (ConsumerRecord<byte[], byte[]> r : records) {
                java.util.BitSet seen;
                int n;
                if (r.topic().equals(o.embeddingsTopic())) {
                    String id = AvroCodec.embeddingRecords().decode(r.value()).getImageId().toString();   // "soak-<record number>"
                    seen = embedded;
                    n = Integer.parseInt(id.substring(id.indexOf('-') + 1));
                    embeddings++;
                } else {
                    seen = deadLettered;
                    n = Math.toIntExact(AvroCodec.deadLetters().decode(r.value()).getOffset());
                    deadLetters++;
                }
                if (seen.get(n)) duplicates++;
                seen.set(n);
            }
        }
    }

    private static double rssMb() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) return Long.parseLong(line.substring(6).trim().split("\\s+")[0]) / 1024.0;
            }
        } catch (Exception e) {
            // not Linux
        }
        return -1;
    }

    private static void sleepUntil(long nanoTime) throws InterruptedException {
        long wait;
        while ((wait = nanoTime - System.nanoTime()) > 0) Thread.sleep(Math.min(wait / 1_000_000 + 1, 1000));
    }
}
