package dinostream.it.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import dinostream.it.cluster.StandaloneFlinkCluster.ClientResult;
import dinostream.it.cluster.StandaloneFlinkCluster.Node;
import dinostream.pipeline.kafka.EmbeddedKafka;
import dinostream.pipeline.produce.ImageProducer;
import dinostream.pipeline.produce.SyntheticSource;
import dinostream.pipeline.snapshot.SnapshotRef;
import dinostream.pipeline.snapshot.SnapshotStore;
import dinostream.schemas.EmbeddingRecord;
import dinostream.schemas.codec.AvroCodec;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * dinostream on a real multi-process Flink 2.2 standalone session cluster (1 JobManager, 2
 * TaskManagers, separate JVMs; {@link StandaloneFlinkCluster}) with an in-process Kafka 4.2
 * broker: the job jar submitted detached through Flink's CliFrontend trains two models while a
 * TaskManager is killed with SIGKILL and replaced, and afterwards every image has exactly one
 * committed embedding, both models trained every image once, the k-NN probe scores both, the job
 * is still running, and a bad REST submission is refused without harming the JobManager or the job.
 *
 * <p>Runs in the integration-test phase of {@code mvn verify} (it needs
 * {@code pipeline/target/dinostream-job.jar} and the cluster jars that integration-tests'
 * pre-integration-test phase copies to {@code target/flink}):
 * <pre>
 * mvn -B verify -pl integration-tests -am -Dit.test=FlinkClusterIT -Dtest=none -Dsurefire.failIfNoSpecifiedTests=false
 * </pre>
 * It prints what it measured (submission, checkpoints, failover) in lines starting with {@code [numbers]}.
 */
class FlinkClusterIT {
    static final List<String> MODELS = List.of("a", "b");
    /** Images per model before the kill, and again after it. */
    static final int PER_MODEL_AND_PHASE = 96;
    static final int BATCH = 8;
    /** With the replay buffer (--replay-ratio 0.5): the first batch is all fresh, each later one half. */
    static final int FRESH = BATCH / 2, REPLAY_SIZE = 64;

    /** Fresh images trained on after {@code step} steps. */
    static long imagesAtStep(long step) {
        return step == 0 ? 0 : BATCH + (step - 1) * FRESH;
    }

    final Map<String, String> numbers = new LinkedHashMap<>();
    final long t0 = System.currentTimeMillis();

    @Test
    @Timeout(value = 15, unit = TimeUnit.MINUTES)
    void trainsTwoModelsThroughATaskManagerKillWithOneEmbeddingPerImage(@TempDir(cleanup = CleanupMode.ON_SUCCESS) Path dir) throws Exception {
        Path root = Path.of(System.getProperty("dinostream.root", "..")).toAbsolutePath().normalize();
        Path flinkHome = Path.of(System.getProperty("dinostream.flink.home", "target/flink"));
        Path jobJar = Path.of(System.getProperty("dinostream.job.jar", root.resolve("pipeline/target/dinostream-job.jar").toString()));
        assertTrue(Files.isRegularFile(jobJar), "no job jar at " + jobJar + " (pipeline's package phase writes it: run mvn verify from the root)");

        try (EmbeddedKafka kafka = EmbeddedKafka.builder().dataDir(dir.resolve("kafka")).build().start()) {
            kafka.createTopic("images", 2, Map.of());
            kafka.createTopic("embeddings", 1, Map.of());
            kafka.createTopic("dead-letters", 1, Map.of());

            StandaloneFlinkCluster.Builder b = StandaloneFlinkCluster.builder(flinkHome, dir.resolve("flink"))
                    .taskManagers(2)
                    .prometheusPorts(true)
                    // The project's own Flink settings, as a cluster would append them to its config.yaml.
                    .extraYaml(opsFile(root, "ops/flink/dinostream.yaml"))
                    .extraYaml(opsFile(root, "ops/prometheus/flink-metrics.yaml"))
                    // What this test needs on top of ops/: a small cluster for the tiny `test` preset
                    // (it needs 7 MB of task off-heap memory per slot at batch 8), the job over both
                    // TaskManagers, short checkpoints, and a fast, bounded failover.
                    .property("taskmanager.memory.process.size", "1400m")
                    .property("taskmanager.memory.task.off-heap.size", "128m")
                    .property("parallelism.default", "2")
                    .property("execution.checkpointing.interval", "2 s")
                    .property("execution.checkpointing.dir", dir.resolve("checkpoints").toUri().toString())
                    .property("execution.checkpointing.unaligned.enabled", "true")
                    .property("restart-strategy.type", "fixed-delay")
                    .property("restart-strategy.fixed-delay.attempts", "20")
                    .property("restart-strategy.fixed-delay.delay", "2 s")
                    // A SIGKILLed TaskManager is found by failed heartbeat RPCs (rpc-failure-threshold): every 2 s.
                    .property("heartbeat.interval", "2 s")
                    .property("heartbeat.timeout", "20 s")
                    .property("metrics.fetcher.update-interval", "1000");
            long clusterStart = System.nanoTime();
            try (StandaloneFlinkCluster cluster = b.start()) {
                put("cluster start (1 JM + 2 TMs registered)", secondsSince(clusterStart));
                try {
                    scenario(cluster, kafka, jobJar, dir);
                } catch (Throwable t) {
                    cluster.markFailed();
                    throw t;
                } finally {
                    // Flink's own harmless "Name collision" warnings of the Kafka sink's metrics left out.
                    List<String> errors = cluster.grepTaskManagerLogs(" ERROR | WARN  (dinostream|.*Exception)").stream()
                            .filter(l -> !l.contains("Name collision")).toList();
                    System.out.println("[numbers] ERROR lines, and WARN lines of dinostream or with an exception, in the TaskManager logs: " + errors.size());
                    errors.stream().limit(40).forEach(l -> System.out.println("[tm-log] " + l));
                    // Checkpoint failures by reason, ids and times left out.
                    Map<String, Integer> reasons = new TreeMap<>();
                    for (String l : StandaloneFlinkCluster.grep(cluster.jobManager(), "(?i)checkpoint.*(fail|declin|expired)")) {
                        String reason = l.replaceAll(".* - ", "").replaceAll("[0-9a-f]{32}", "<id>").replaceAll("\\d+", "N");
                        reasons.merge(abbreviate(reason, 300), 1, Integer::sum);
                    }
                    reasons.forEach((r, n) -> System.out.println("[jm-log] " + n + " x " + r));
                    numbers.forEach((k, v) -> System.out.println("[numbers] " + k + ": " + v));
                }
            }
        }
    }

    /**
     * Flink's real memory model with no task off-heap memory declared (the default): the trainer
     * fails when its model starts, with one line naming the setting and the size, and the job ends
     * with that cause after its bounded restarts; never an OutOfMemoryError at a failover.
     */
    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void aTaskManagerWithoutOffHeapMemoryFailsTheTrainerNamingTheSetting(@TempDir(cleanup = CleanupMode.ON_SUCCESS) Path dir) throws Exception {
        Path root = Path.of(System.getProperty("dinostream.root", "..")).toAbsolutePath().normalize();
        Path flinkHome = Path.of(System.getProperty("dinostream.flink.home", "target/flink"));
        Path jobJar = Path.of(System.getProperty("dinostream.job.jar", root.resolve("pipeline/target/dinostream-job.jar").toString()));
        try (EmbeddedKafka kafka = EmbeddedKafka.builder().dataDir(dir.resolve("kafka")).build().start()) {
            kafka.createTopic("images", 1, Map.of());
            kafka.createTopic("embeddings", 1, Map.of());
            kafka.createTopic("dead-letters", 1, Map.of());
            produce(kafka, "a", 1, new java.util.HashMap<>());
            StandaloneFlinkCluster.Builder b = StandaloneFlinkCluster.builder(flinkHome, dir.resolve("flink"))
                    .taskManagers(1)
                    .extraYaml(opsFile(root, "ops/flink/dinostream.yaml"))
                    .property("taskmanager.memory.process.size", "1400m")
                    .property("taskmanager.memory.task.off-heap.size", "0m")
                    .property("parallelism.default", "1")
                    .property("execution.checkpointing.interval", "2 s")
                    .property("execution.checkpointing.dir", dir.resolve("checkpoints").toUri().toString())
                    .property("restart-strategy.type", "fixed-delay")
                    .property("restart-strategy.fixed-delay.attempts", "2")
                    .property("restart-strategy.fixed-delay.delay", "1 s");
            try (StandaloneFlinkCluster cluster = b.start()) {
                try {
                    ClientResult submitted = cluster.submitDetached(jobJar, List.of("train", "--bootstrap", kafka.bootstrap(),
                            "--models", "a", "--preset", "test", "--batch", Integer.toString(BATCH), "--threads", "1",
                            "--snapshot-dir", dir.resolve("snapshots").toUri().toString(), "--shared-file-system"), Duration.ofSeconds(180));
                    assertEquals(0, submitted.exitCode(), "flink run -d failed:\n" + submitted);
                    String jobId = submitted.jobId();
                    FlinkRest rest = cluster.rest();
                    StandaloneFlinkCluster.Deadline d = new StandaloneFlinkCluster.Deadline(Duration.ofSeconds(180));
                    while (!rest.jobState(jobId).equals("FAILED")) {
                        assertTrue(cluster.isJobManagerAlive(), "the JobManager died");
                        if (d.expired()) throw cluster.failure("the job did not fail for want of off-heap memory: " + rest.jobState(jobId), null);
                        Thread.sleep(500);
                    }
                    String cause = rest.exceptions(jobId).toString();
                    java.util.regex.Matcher line = java.util.regex.Pattern.compile("model a [^\\\\\"]*?ops/flink/dinostream.yaml\\)").matcher(cause);
                    System.out.println("[numbers] job without task off-heap memory: FAILED with " + (line.find() ? line.group() : abbreviate(cause, 600)));
                    assertTrue(cause.contains("needs about") && cause.contains("taskmanager.memory.task.off-heap.size to at least"), cause);
                    assertTrue(!cause.contains("OutOfMemoryError"), cause);
                } catch (Throwable t) {
                    cluster.markFailed();
                    throw t;
                }
            }
        }
    }

    void scenario(StandaloneFlinkCluster cluster, EmbeddedKafka kafka, Path jobJar, Path dir) throws Exception {
        FlinkRest rest = cluster.rest();
        List<String> args = new ArrayList<>(List.of("train",
                "--bootstrap", kafka.bootstrap(),
                "--images-topic", "images", "--embeddings-topic", "embeddings", "--dead-letter-topic", "dead-letters",
                "--models", String.join(",", MODELS),
                "--preset", "test", "--batch", Integer.toString(BATCH),
                "--snapshot-dir", dir.resolve("snapshots").toUri().toString(), "--shared-file-system",
                "--probe-size", "64", "--probe-every", "1", "--broadcast-every", "1", "--snapshot-every", "5",
                "--threads", "1",
                // Replay buffers and the near-duplicate filter are keyed state of user-code classes: through the kill too.
                "--replay-size", Integer.toString(REPLAY_SIZE), "--replay-ratio", "0.5", "--replay-bytes", "4m", "--dedup",
                // The state held by the IoBinding runtime (a GPU TaskManager's), its CPU form: checkpointed through
                // its copy to host memory, restored through the kill.
                "--runtime", "device"));
        // 1. Submit detached through Flink's CliFrontend.
        ClientResult submitted = cluster.submitDetached(jobJar, args, Duration.ofSeconds(180));
        System.out.println("[cluster] flink run -d: " + submitted);
        assertEquals(0, submitted.exitCode(), "flink run -d failed:\n" + submitted);
        String jobId = submitted.jobId();
        put("submission (flink run -d, client JVM start to exit)", submitted.duration().toMillis() / 1e3 + " s");
        long submittedAt = System.currentTimeMillis();
        await(cluster, jobId, "the job RUNNING with all its tasks", Duration.ofSeconds(120), () -> rest.fullyRunning(jobId));
        put("submission to all tasks RUNNING", (allTasksRunningAt(rest, jobId) - submittedAt) / 1e3 + " s after the client's exit");
        // The job takes checkpointing from the cluster's configuration (ops/flink/dinostream.yaml and this test's).
        JsonNode cpConfig = rest.get("/jobs/" + jobId + "/checkpoints/config");
        put("job checkpoint config", cpConfig.toString());
        assertEquals(2000, cpConfig.path("interval").asLong(), "checkpoint interval (ms), from the cluster's configuration");
        assertTrue(cpConfig.path("unaligned_checkpoints").asBoolean(), "unaligned checkpoints");
        JsonNode job = rest.job(jobId);
        put("job", job.path("name").asText() + ", " + job.path("vertices").size() + " vertices, parallelism "
                + parallelisms(job));

        // 2. Images for both models before the kill.
        Map<String, String> expected = new TreeMap<>();   // image id -> model
        long p0 = System.nanoTime();
        for (String m : MODELS) produce(kafka, m, 100 + m.charAt(0), expected);
        put("produced before the kill", expected.size() + " images in " + secondsSince(p0));
        String trainer = rest.vertexId(jobId, "DinoTrainer");
        await(cluster, jobId, "both models trained on half their first images", Duration.ofSeconds(180), () -> {
            for (String m : MODELS) if (!(modelMetric(rest, jobId, trainer, m, "images_seen") >= PER_MODEL_AND_PHASE / 2.0)) return false;
            return true;
        });
        long trainedAt = System.currentTimeMillis();
        await(cluster, jobId, "a checkpoint completed after training began", Duration.ofSeconds(60),
                () -> rest.checkpoints(jobId).path("latest").path("completed").path("latest_ack_timestamp").asLong() > trainedAt);
        JsonNode before = rest.checkpoints(jobId);
        put("checkpoints completed before the kill", before.path("counts").path("completed").asText());

        // 3. kill -9 the TaskManager that runs trainer subtask 0, then a replacement, while more images arrive.
        String victimId = rest.vertex(jobId, trainer).path("subtasks").get(0).path("taskmanager-id").asText();
        int victim = cluster.taskManagerIndex(victimId);
        List<Long> pidsBefore = cluster.taskManagerPids();
        Node killed = cluster.killTaskManager(victim);
        long killedAt = killed.killedMillis();
        assertTrue(!ProcessHandle.of(killed.pid()).map(ProcessHandle::isAlive).orElse(false), "pid " + killed.pid() + " still alive");
        put("killed", killed.name() + " (pid " + killed.pid() + " of " + pidsBefore + ", exit status 137 = SIGKILL)");

        long p1 = System.nanoTime();
        for (String m : MODELS) produce(kafka, m, 200 + m.charAt(0), expected);
        put("produced after the kill", (expected.size() - MODELS.size() * PER_MODEL_AND_PHASE) + " images in " + secondsSince(p1));
        Node replacement = cluster.startTaskManager(Duration.ofSeconds(120));
        put("replacement TaskManager registered", replacement.name() + " at kill + " + (System.currentTimeMillis() - killedAt) / 1e3 + " s");

        // 4. The failover: restarted, every task RUNNING again, then a first new checkpoint.
        await(cluster, jobId, "the job restarted after the kill and RUNNING again", Duration.ofSeconds(180), () -> {
            JsonNode j = rest.job(jobId);
            return j.path("timestamps").path("RESTARTING").asLong() >= killedAt && rest.fullyRunning(jobId);
        });
        long runningSeen = System.currentTimeMillis();
        JsonNode afterJob = rest.job(jobId);
        long runningTs = afterJob.path("timestamps").path("RUNNING").asLong();
        put("failover: kill to job RESTARTING", (afterJob.path("timestamps").path("RESTARTING").asLong() - killedAt) / 1e3 + " s");
        put("failover: kill to job status RUNNING", (runningTs - killedAt) / 1e3 + " s");
        put("failover: kill to all tasks RUNNING", (allTasksRunningAt(rest, jobId) - killedAt) / 1e3 + " s (seen by the test at "
                + (runningSeen - killedAt) / 1e3 + " s)");
        await(cluster, jobId, "a checkpoint completed after the restart", Duration.ofSeconds(120),
                () -> rest.checkpoints(jobId).path("latest").path("completed").path("latest_ack_timestamp").asLong() > runningTs);
        JsonNode cp = rest.checkpoints(jobId);
        JsonNode first = cp.path("latest").path("completed");
        put("failover: kill to first new checkpoint completed", (first.path("latest_ack_timestamp").asLong() - killedAt) / 1e3
                + " s (checkpoint " + first.path("id").asText() + ")");
        JsonNode restored = cp.path("latest").path("restored");
        put("restored from", "checkpoint " + restored.path("id").asText() + " (" + restored.path("external_path").asText() + ")");
        put("root cause of the failover", rootCauses(rest.exceptions(jobId)));
        put("numRestarts", rest.jobMetrics(jobId, List.of("numRestarts")).toString());

        // 5. Exactly once: every image one embedding, from its own model, read_committed.
        List<EmbeddingRecord> out = readCommitted(kafka.bootstrap(), "embeddings", expected.size(), Duration.ofSeconds(240));
        Map<String, Integer> counts = new HashMap<>();
        Map<String, String> models = new TreeMap<>();
        for (EmbeddingRecord e : out) {
            counts.merge(e.getImageId(), 1, Integer::sum);
            models.put(e.getImageId(), e.getModelId());
        }
        List<String> twice = counts.entrySet().stream().filter(e -> e.getValue() > 1).map(Map.Entry::getKey).sorted().toList();
        Set<String> missing = new TreeSet<>(expected.keySet());
        missing.removeAll(counts.keySet());
        Set<String> unknown = new TreeSet<>(counts.keySet());
        unknown.removeAll(expected.keySet());
        put("embeddings committed", out.size() + " for " + expected.size() + " images (" + twice.size() + " twice, "
                + missing.size() + " missing, " + unknown.size() + " unknown)");
        assertTrue(twice.isEmpty(), twice.size() + " images have more than one embedding, e.g. " + twice.stream().limit(5).toList());
        assertTrue(missing.isEmpty(), missing.size() + " images have no embedding, e.g. " + missing.stream().limit(5).toList());
        assertEquals(expected.keySet(), counts.keySet());
        assertEquals(expected.size(), out.size(), "one embedding per image, none twice");
        assertEquals(expected, models, "each embedding made by its image's model");

        // 6. Both models trained on every fresh image exactly once (Flink metrics through the REST API); the
        // synthetic images are all unlike each other, so the filter keeps them all.
        int perModel = 2 * PER_MODEL_AND_PHASE;
        long steps = 1 + (perModel - BATCH) / FRESH;
        await(cluster, jobId, "both models trained on all " + perModel + " of their images", Duration.ofSeconds(180), () -> {
            for (String m : MODELS) if (modelMetric(rest, jobId, trainer, m, "images_seen") < perModel) return false;
            return true;
        });
        Thread.sleep(2500);   // two metric fetches: a count above perModel would show now
        for (String m : MODELS) {
            double seen = modelMetric(rest, jobId, trainer, m, "images_seen"), step = modelMetric(rest, jobId, trainer, m, "step");
            double replayed = modelMetric(rest, jobId, trainer, m, "replayed_images"), kept = modelMetric(rest, jobId, trainer, m, "replay_images");
            put("model " + m, "images_seen " + (long) seen + ", step " + (long) step + ", replayed " + (long) replayed + ", in its buffer "
                    + (long) kept + ", loss " + modelMetric(rest, jobId, trainer, m, "loss"));
            assertEquals(perModel, seen, "model " + m + ": images seen");
            assertEquals(steps, step, "model " + m + ": steps");
            assertEquals((steps - 1) * (BATCH - FRESH), replayed, "model " + m + ": replayed images");
            assertEquals(REPLAY_SIZE, kept, "model " + m + ": images in the replay buffer");
        }

        // Snapshots on the shared file system, of committed state only: one is due every 5 steps and
        // written from the first checkpoint that completes after it, so the newest is of a step
        // between the last multiple of 5 and the last step; loadable, with its own images seen.
        SnapshotStore store = new SnapshotStore(dir.resolve("snapshots").toUri().toString(), SnapshotStore.DEFAULT_KEEP);
        long lastSteps = steps, lastDue = lastSteps / 5 * 5;
        for (String m : MODELS) {
            await(cluster, jobId, "model " + m + "'s snapshot of step " + lastDue + " or later", Duration.ofSeconds(60),
                    () -> store.latest(m).map(r -> r.step() >= lastDue).orElse(false));
            List<SnapshotRef> snaps = store.list(m);
            SnapshotRef latest = store.latest(m).orElseThrow(() -> new AssertionError("no snapshot of model " + m));
            put("snapshots of " + m, snaps.stream().map(SnapshotRef::step).toList() + ", newest " + latest.uri());
            assertTrue(latest.step() >= lastDue && latest.step() <= lastSteps, "model " + m + ": newest snapshot's step " + latest.step());
            assertEquals(imagesAtStep(latest.step()), latest.manifest().imagesSeen(), "model " + m + ": newest snapshot's images seen");
            assertEquals(m, SnapshotStore.load(latest.uri()).manifest().modelId());
        }

        // 7. The k-NN probe scored both models after the failover: on the live TaskManagers' Prometheus endpoints.
        String probe = rest.vertexId(jobId, "k-NN probe");
        Map<String, Double> knn = new TreeMap<>();
        await(cluster, jobId, "knn_top1 of both models on a live TaskManager's Prometheus endpoint", Duration.ofSeconds(120), () -> {
            knn.clear();
            for (Node tm : cluster.taskManagers()) {
                if (tm.isAlive()) scrape(tm.prometheusPort(), "knn_top1").forEach((model, v) -> {
                    if (Double.isFinite(v)) knn.put(model, v);
                });
            }
            return knn.keySet().containsAll(MODELS);
        });
        put("knn_top1 (Prometheus, after the failover)", knn.toString());
        for (String m : MODELS) {
            double v = modelMetric(rest, jobId, probe, m, "knn_top1");
            put("knn_top1 of " + m + " (REST)", Double.toString(v));
            assertTrue(Double.isFinite(v), "knn_top1 of " + m + " through REST: " + v);
        }
        put("dinostream metric names on Prometheus", prometheusNames(cluster).toString());

        // Every query of the Grafana dashboard against a real Prometheus scraping the live cluster (Debian's prometheus).
        dashboard(cluster);

        // 8. Still running.
        assertTrue(rest.fullyRunning(jobId), "job " + jobId + ": " + rest.jobState(jobId));

        // 9. A REST submission with bad arguments: an error naming the problem, nothing else harmed.
        FlinkRest.Response upload = rest.uploadJar(jobJar);
        String jarId = FlinkRest.jarId(upload);
        long r0 = System.nanoTime();
        FlinkRest.Response bad = rest.runJar(jarId, List.of("train", "--bootstrap", "x", "--batch", "0"), Duration.ofSeconds(120));
        String errorLine = null;
        if (bad.body().startsWith("{")) {
            for (JsonNode e : bad.json().path("errors")) {
                for (String l : e.asText().split("\\R")) if (errorLine == null && l.contains("dinostream: error:")) errorLine = l.strip();
            }
        }
        put("bad REST submission", "HTTP " + bad.status() + " in " + secondsSince(r0) + ": "
                + (errorLine != null ? errorLine : abbreviate(bad.body(), 400)));
        assertTrue(bad.status() >= 400, "a bad submission must fail: HTTP " + bad.status() + " " + bad.body());
        assertTrue(bad.body().contains("dinostream: error:"), "no 'dinostream: error:' in the answer: " + bad.body());
        Thread.sleep(1000);
        assertTrue(cluster.isJobManagerAlive(), "the JobManager died after a bad submission");
        JsonNode overview = rest.jobsOverview();
        long running = 0;
        for (JsonNode j : overview.path("jobs")) if ("RUNNING".equals(j.path("state").asText())) running++;
        assertEquals(1, running, "running jobs after the bad submission: " + overview);
        assertTrue(rest.fullyRunning(jobId), "the first job after the bad submission: " + rest.jobState(jobId));

        // 10. Numbers: checkpoints, and who listens where.
        JsonNode c = rest.checkpoints(jobId);
        JsonNode s = c.path("summary");
        put("checkpoints", c.path("counts").toString());
        put("checkpointed size (bytes) min/avg/max", s.path("checkpointed_size").path("min").asText() + " / "
                + s.path("checkpointed_size").path("avg").asText() + " / " + s.path("checkpointed_size").path("max").asText());
        put("state size (bytes) min/avg/max", s.path("state_size").path("min").asText() + " / "
                + s.path("state_size").path("avg").asText() + " / " + s.path("state_size").path("max").asText());
        put("checkpoint end-to-end duration (ms) min/avg/max/p99", s.path("end_to_end_duration").path("min").asText() + " / "
                + s.path("end_to_end_duration").path("avg").asText() + " / " + s.path("end_to_end_duration").path("max").asText()
                + " / " + s.path("end_to_end_duration").path("p99").asText());
        put("checkpoints persisted data (bytes) max", s.path("persisted_data").path("max").asText());
        Map<String, Integer> failures = new TreeMap<>();
        for (JsonNode h : c.path("history")) {
            if ("FAILED".equals(h.path("status").asText())) failures.merge(h.path("failure_message").asText(), 1, Integer::sum);
        }
        put("failed checkpoints (in the history's last entries), by message", failures.toString());
        List<String> runtimes = cluster.grepTaskManagerLogs("model \\S+: train step on ");
        put("trainer runtimes (TaskManager logs)", runtimes.stream().map(l -> l.replaceAll("^.* - ", "")).distinct().toList().toString());
        assertTrue(!runtimes.isEmpty() && runtimes.stream().allMatch(l -> l.contains("(BoundTrainSession)")),
                "every model opened the IoBinding runtime: " + runtimes);
        put("trainer model starts (TaskManager logs)", cluster.grepTaskManagerLogs("model \\S+: (restored at step|initialized from seed)").stream()
                .map(l -> l.replaceAll("^(\\S+): \\S+ (\\S+) .* - ", "$1 $2 ")).toList().toString());
        checkListeners(cluster);

        // 11. ONNX Runtime came in the job jar: JavaCPP unpacked its natives into a folder named after the
        // TaskManagers' copy of the jar (the same blob name on every TaskManager: one folder in this cluster's
        // shared cache); when the job ends Flink releases the job's class loader and the hook deletes it.
        List<String> unpacked = unpackedJobJars(cluster);
        put("natives unpacked per job jar while running", unpacked.toString());
        assertFalse(unpacked.isEmpty(), "the running TaskManagers unpacked ONNX Runtime into " + cluster.javacppCache());
        assertTrue(rest.cancel(jobId).status() < 300, "cancel");
        // Polled here, not with await(): that one stops at a job in a final state, and CANCELED comes first.
        long cancelled = System.nanoTime(), limit = cancelled + Duration.ofSeconds(60).toNanos();
        while (!("CANCELED".equals(rest.jobState(jobId)) && unpackedJobJars(cluster).isEmpty()) && System.nanoTime() < limit) {
            Thread.sleep(200);
        }
        put("cancel to natives removed", secondsSince(cancelled));
        assertEquals("CANCELED", rest.jobState(jobId));
        assertEquals(List.of(), unpackedJobJars(cluster), "the job jar's natives are removed when the job ends");
        put("natives left after the job ended", unpackedJobJars(cluster).toString());
        put("test total", (System.currentTimeMillis() - t0) / 1e3 + " s");
    }

    // ------------------------------------------------------------------------------------------

    /** The folders of JavaCPP's cache holding natives unpacked from a job jar (Flink's blob copies). */
    static List<String> unpackedJobJars(StandaloneFlinkCluster cluster) throws IOException {
        Path cache = cluster.javacppCache();
        if (!Files.isDirectory(cache)) return List.of();
        try (java.util.stream.Stream<Path> s = Files.list(cache)) {
            return s.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("blob_")).sorted().toList();
        }
    }

    void put(String k, String v) {
        numbers.put(k, v);
        System.out.println("[numbers] " + k + ": " + v);
    }

    static String secondsSince(long nanos) {
        return String.format("%.1f s", (System.nanoTime() - nanos) / 1e9);
    }

    static String abbreviate(String s, int n) {
        return s.length() <= n ? s : s.substring(0, n) + "...";
    }

    interface Check {
        boolean ok() throws Exception;
    }

    /** Waits for {@code check}; fails at once when the JobManager dies or the job ends, with the job's exceptions and the logs. */
    static void await(StandaloneFlinkCluster cluster, String jobId, String what, Duration timeout, Check check) throws Exception {
        StandaloneFlinkCluster.Deadline d = new StandaloneFlinkCluster.Deadline(timeout);
        long start = System.nanoTime();
        Exception last = null;
        while (true) {
            if (!cluster.isJobManagerAlive()) throw cluster.failure("the JobManager died while waiting for " + what, null);
            try {
                if (check.ok()) {
                    System.out.printf("[cluster] %s: after %.1f s%n", what, (System.nanoTime() - start) / 1e9);
                    return;
                }
                last = null;
                String state = cluster.rest().jobState(jobId);
                if (state.equals("FAILED") || state.equals("CANCELED") || state.equals("FINISHED")) {
                    throw cluster.failure("the job is " + state + " while waiting for " + what + "; its exceptions: "
                            + rootCauses(cluster.rest().exceptions(jobId)), null);
                }
            } catch (IOException e) {
                last = e;   // the REST API may be busy during a failover: retry
            }
            if (d.expired()) {
                String exceptions;
                try {
                    exceptions = rootCauses(cluster.rest().exceptions(jobId));
                } catch (IOException e) {
                    exceptions = e.toString();
                }
                throw cluster.failure("timed out after " + timeout.toSeconds() + " s waiting for " + what
                        + (last != null ? " (last error: " + last + ")" : "") + "; job exceptions: " + exceptions, null);
            }
            Thread.sleep(250);
        }
    }

    static String rootCauses(JsonNode exceptions) {
        List<String> out = new ArrayList<>();
        for (JsonNode e : exceptions.path("exceptionHistory").path("entries")) {
            String trace = e.path("stacktrace").asText();
            out.add(e.path("exceptionName").asText() + " in " + e.path("taskName").asText("?") + " on "
                    + e.path("taskManagerId").asText("?") + ": " + trace.lines().findFirst().orElse(""));
        }
        return out.isEmpty() ? "(none)" : String.join(" | ", out);
    }

    /** When the last of the job's tasks (current attempts) switched to RUNNING, from {@code .../subtasktimes}. */
    static long allTasksRunningAt(FlinkRest rest, String jobId) throws IOException {
        long last = 0;
        for (JsonNode v : rest.job(jobId).path("vertices")) {
            for (JsonNode st : rest.get("/jobs/" + jobId + "/vertices/" + v.path("id").asText() + "/subtasktimes").path("subtasks")) {
                last = Math.max(last, st.path("timestamps").path("RUNNING").asLong());
            }
        }
        return last;
    }

    static String parallelisms(JsonNode job) {
        Map<String, Integer> p = new LinkedHashMap<>();
        for (JsonNode v : job.path("vertices")) p.put(v.path("name").asText(), v.path("parallelism").asInt());
        return p.toString();
    }

    /** A metric of the trainer's (or probe's) per-model group, max over the vertex's subtasks; NaN when not (yet) there. */
    static double modelMetric(FlinkRest rest, String jobId, String vertexId, String model, String metric) throws IOException {
        String suffix = "model." + model + "." + metric;
        for (String id : rest.subtaskMetricIds(jobId, vertexId)) {
            if (id.equals(suffix) || id.endsWith("." + suffix)) {
                JsonNode v = rest.subtaskMetrics(jobId, vertexId, List.of(id)).get(id);
                return v == null ? Double.NaN : v.path("max").asDouble(Double.NaN);
            }
        }
        return Double.NaN;
    }

    /** The values of a dinostream per-model metric on one Prometheus endpoint: model -> value. */
    static Map<String, Double> scrape(int port, String metric) throws IOException {
        Map<String, Double> out = new TreeMap<>();
        Pattern line = Pattern.compile("^(flink_\\w*?_" + metric + ")\\{([^}]*)\\}\\s+(\\S+)");
        Pattern model = Pattern.compile("(?:^|,)model=\"([^\"]*)\"");
        for (String l : prometheus(port).split("\n")) {
            Matcher m = line.matcher(l);
            if (!m.find()) continue;
            Matcher mm = model.matcher(m.group(2));
            if (mm.find()) out.put(mm.group(1), Double.parseDouble(m.group(3)));
        }
        return out;
    }

    static String prometheus(int port) throws IOException {
        try {
            HttpResponse<String> r = HttpClient.newHttpClient().send(
                    HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics")).timeout(Duration.ofSeconds(10)).build(),
                    HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 200) throw new IOException("Prometheus endpoint :" + port + ": HTTP " + r.statusCode());
            return r.body();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
    }

    /** The names of the per-model metrics the live TaskManagers export (what a dashboard queries). */
    static Set<String> prometheusNames(StandaloneFlinkCluster cluster) throws IOException {
        Set<String> names = new TreeSet<>();
        Pattern p = Pattern.compile("^(flink_\\w+)\\{[^}]*model=\"");
        for (Node tm : cluster.taskManagers()) {
            if (!tm.isAlive()) continue;
            for (String l : prometheus(tm.prometheusPort()).split("\n")) {
                Matcher m = p.matcher(l);
                if (m.find()) names.add(m.group(1));
            }
        }
        return names;
    }

    /**
     * Debian's {@code prometheus} scraping the JobManager and the live TaskManagers every second, then
     * every panel query of ops/grafana/dinostream-dashboard.json: each must run and return a series.
     * Skipped (and said so) where prometheus is not installed.
     */
    void dashboard(StandaloneFlinkCluster cluster) throws Exception {
        if (!PrometheusServer.isAvailable()) {
            put("Grafana dashboard check", "SKIPPED: no prometheus binary (apt-get install prometheus)");
            return;
        }
        List<String> tms = new ArrayList<>();
        for (Node tm : cluster.taskManagers()) if (tm.isAlive()) tms.add("127.0.0.1:" + tm.prometheusPort());
        try (PrometheusServer prom = PrometheusServer.builder()
                .scrape("flink-jobmanager", List.of("127.0.0.1:" + cluster.jobManager().prometheusPort()))
                .scrape("flink-taskmanagers", tms)
                .start()) {
            prom.awaitScraped(Duration.ofSeconds(60));
            // rate() needs two samples in its window: a few scrapes, then until every panel has data (bounded).
            Thread.sleep(3 * prom.interval().toMillis());
            List<DashboardCheck.Row> rows = DashboardCheck.run(prom);
            StandaloneFlinkCluster.Deadline d = new StandaloneFlinkCluster.Deadline(Duration.ofSeconds(30));
            while (rows.stream().anyMatch(r -> !r.ok() || r.series() == 0) && !d.expired()) {
                Thread.sleep(prom.interval().toMillis());
                rows = DashboardCheck.run(prom);
            }
            System.out.println("[cluster] Grafana dashboard against live metrics:\n" + DashboardCheck.report(rows));
            List<String> bad = rows.stream().filter(r -> !r.ok() || r.series() == 0)
                    .map(r -> r.panel() + ": " + (r.ok() ? "no series" : r.error()) + " (" + (r.query() != null ? r.query() : r.expr()) + ")")
                    .toList();
            put("Grafana dashboard check", rows.size() + " queries, " + bad.size() + " without data or failing" + (bad.isEmpty() ? "" : ": " + bad));
            assertTrue(bad.isEmpty(), "dashboard panels without data or failing against the live job:\n" + String.join("\n", bad));
        }
    }

    /** Every socket the cluster's JVMs listen on must be loopback, except Flink's Prometheus reporter (it has no bind option). */
    void checkListeners(StandaloneFlinkCluster cluster) {
        List<String> wide = new ArrayList<>();
        Map<String, List<ListeningSockets.Socket>> all = new LinkedHashMap<>();
        List<Node> nodes = new ArrayList<>();
        nodes.add(cluster.jobManager());
        nodes.addAll(cluster.taskManagers());
        for (Node n : nodes) {
            if (!n.isAlive()) continue;
            List<ListeningSockets.Socket> socks = ListeningSockets.of(n.pid());
            all.put(n.name() + (n.prometheusPort() > 0 ? " (Prometheus reporter :" + n.prometheusPort() + ")" : ""), socks);
            for (ListeningSockets.Socket s : socks) {
                if (!s.loopback() && s.port() != n.prometheusPort()) wide.add(n.name() + " " + s);
            }
        }
        put("listening sockets", all.toString());
        assertTrue(wide.isEmpty(), "cluster JVMs listening beyond loopback: " + wide);
    }

    static void produce(EmbeddedKafka kafka, String model, long seed, Map<String, String> expected) throws Exception {
        SyntheticSource src = new SyntheticSource(seed, PER_MODEL_AND_PHASE, 28, 1);
        int[] order = new int[PER_MODEL_AND_PHASE];
        for (int i = 0; i < order.length; i++) order[i] = i;
        ImageProducer.Stats st = ImageProducer.builder(kafka.bootstrap(), "images").modelId(model).build().run(src, order);
        assertEquals(PER_MODEL_AND_PHASE, st.sent());
        for (int i = 0; i < PER_MODEL_AND_PHASE; i++) {
            if (expected.put(src.id(i), model) != null) throw new IllegalStateException("image id " + src.id(i) + " twice");
        }
    }

    /** What a read_committed consumer sees: at least {@code atLeast} records, then a further 3 s for any extra (a duplicate). */
    static List<EmbeddingRecord> readCommitted(String bootstrap, String topic, int atLeast, Duration timeout) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("isolation.level", "read_committed");
        p.put("auto.offset.reset", "earliest");
        p.put("enable.auto.commit", "false");
        p.put("group.id", "cluster-it-reader-" + System.nanoTime());
        AvroCodec<EmbeddingRecord> codec = AvroCodec.embeddingRecords();
        List<EmbeddingRecord> out = new ArrayList<>();
        long start = System.nanoTime();
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            c.subscribe(List.of(topic));
            long end = start + timeout.toNanos();
            while (System.nanoTime() < end && out.size() < atLeast) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) out.add(codec.decode(r.value()));
            }
            long extra = System.nanoTime() + Duration.ofSeconds(3).toNanos();
            while (System.nanoTime() < extra) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) out.add(codec.decode(r.value()));
            }
        }
        System.out.printf("[cluster] read_committed: %d embeddings (%d wanted) in %.1f s%n", out.size(), atLeast, (System.nanoTime() - start) / 1e9);
        return out;
    }

    /** A configuration file of the project's ops/ folder. */
    static String opsFile(Path root, String name) throws IOException {
        Path f = root.resolve(name);
        assertTrue(Files.isRegularFile(f), "no " + f + " (set -Ddinostream.root to the repository's root)");
        System.out.println("[cluster] configuration from " + f);
        return Files.readString(f);
    }
}
