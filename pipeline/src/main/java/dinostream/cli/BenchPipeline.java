package dinostream.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.model.dino.DinoConfig;
import dinostream.pipeline.job.JobOptions;
import dinostream.pipeline.kafka.EmbeddedKafka;
import dinostream.pipeline.produce.FashionMnist;
import dinostream.pipeline.produce.ImageProducer;
import dinostream.pipeline.produce.ImageSource;
import dinostream.pipeline.produce.Order;
import dinostream.pipeline.produce.SyntheticSource;
import org.apache.flink.core.execution.JobClient;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "pipeline", mixinStandardHelpOptions = true,
        description = {"Time the whole job: an in-process Kafka broker is filled with images, then the train job",
                "(Kafka -> decode -> augment -> train, and the embedder unless --no-embed) runs over them on a",
                "local MiniCluster. Reports the training images/s once warm, checkpoint durations and sizes,",
                "and the cost of writing the model into keyed state per checkpoint."})
final class BenchPipeline implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Spec
    CommandSpec spec;

    @Option(names = "--preset", paramLabel = "P", defaultValue = "fmnist-tiny", description = "Model preset (default: ${DEFAULT-VALUE}).")
    String preset;

    @Option(names = "--images", paramLabel = "N", defaultValue = "1920", description = "Images to stream (default: ${DEFAULT-VALUE}).")
    int images;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "64", description = "Images per train step (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--warmup-steps", paramLabel = "W", defaultValue = "3", description = "Steps left out of the rate (default: ${DEFAULT-VALUE}).")
    int warmupSteps;

    @Option(names = "--source", paramLabel = "fmnist|synthetic", defaultValue = "fmnist",
            description = "Images: Fashion-MNIST train split (synthetic when it is not installed) (default: ${DEFAULT-VALUE}).")
    String source;

    @Option(names = "--no-embed", description = "Train only.")
    boolean noEmbed;

    @Option(names = "--checkpoint-interval", paramLabel = "SECONDS", defaultValue = "10", description = "Seconds between checkpoints (default: ${DEFAULT-VALUE}).")
    long checkpointSeconds;

    @Option(names = "--threads", paramLabel = "T", defaultValue = "0", description = "ONNX Runtime threads of the train step (default: all cores).")
    int threads;

    @Option(names = "--parallelism", paramLabel = "N", defaultValue = "1", description = "Parallelism of decode, augment and embed (default: ${DEFAULT-VALUE}).")
    int parallelism;

    @Option(names = "--snapshot-every", paramLabel = "N", defaultValue = "0",
            description = "Write snapshots as the job does (every N steps, from completed checkpoints, off the training thread); 0: none (default: ${DEFAULT-VALUE}).")
    int snapshotEvery;

    @Option(names = "--out", paramLabel = "DIR", description = "Run folder (default: a temporary one, deleted).")
    Path out;

    @Mixin
    CorrelatedStreamOptions correlated;

    @Option(names = "--json", description = "Print one JSON object on stdout.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        if (images < batch * (warmupSteps + 2)) throw new ParameterException(spec.commandLine(), "--images must cover at least --warmup-steps + 2 batches");
        PrintWriter err = spec.commandLine().getErr();
        DinoConfig cfg = ModelOptions.preset(spec, preset);
        Path dir = out != null ? out : Files.createTempDirectory("dinostream-bench-");
        double[] loadBefore = Proc.loadAverage();
        try (EmbeddedKafka kafka = EmbeddedKafka.builder().dataDir(dir.resolve("kafka")).build().start()) {
            JobOptions.Builder ob = LocalRun.options(kafka.bootstrap(), cfg, dir)
                    .bounded(true)
                    .embed(!noEmbed)
                    .parallelism(parallelism)
                    .checkpointInterval(Duration.ofSeconds(checkpointSeconds))
                    .trainer(t -> t.batch(batch).threads(threads)
                            .snapshotDir(snapshotEvery > 0 ? dir.resolve("snapshots").toUri().toString() : null)
                            .snapshotEvery(Math.max(1, snapshotEvery)))
                    .probe(p -> p.size(0));   // the training rate alone; the probe is an evaluation
            correlated.applyTo(ob, spec);
            JobOptions o = ob.build();
            LocalRun.createTopics(kafka, o, 1, Map.of());
            ImageSource src = source.equals("fmnist") && Files.isDirectory(FashionMnist.DEFAULT_DIR)
                    ? FashionMnist.load(FashionMnist.DEFAULT_DIR, FashionMnist.Split.TRAIN)
                    : new SyntheticSource(0, images, cfg.imgSize, cfg.inChans);
            ImageProducer.Stats sent = ImageProducer.builder(o.bootstrap(), o.imagesTopic()).build()
                    .run(src, Order.IID.indices(src, 0, images));
            err.printf("streamed %d %s images into Kafka in %.1f s%n", sent.sent(), src.name(), sent.seconds());

            int restPort = freePort();
            long t0 = System.nanoTime();
            JobClient job = LocalRun.start(o, restPort, "dinostream bench pipeline");
            JsonNode checkpoints = null;
            HttpClient http = HttpClient.newHttpClient();
            var result = job.getJobExecutionResult();
            while (!result.isDone()) {
                JsonNode c = get(http, "http://127.0.0.1:" + restPort + "/jobs/" + job.getJobID() + "/checkpoints");
                if (c != null) checkpoints = c;
                Thread.sleep(500);
            }
            result.get();
            double wall = (System.nanoTime() - t0) / 1e9;
            report(dir, cfg, wall, checkpoints, loadBefore, err);
        } finally {
            if (out == null) deleteTree(dir);
        }
        return 0;
    }

    private void report(Path dir, DinoConfig cfg, double wall, JsonNode checkpoints, double[] loadBefore, PrintWriter err) throws Exception {
        List<JsonNode> steps = new ArrayList<>();
        for (String line : Files.readAllLines(dir.resolve("metrics.jsonl"))) steps.add(JSON.readTree(line));
        JsonNode first = steps.get(warmupSteps - 1), last = steps.get(steps.size() - 1);
        double seconds = (last.get("time_ms").asLong() - first.get("time_ms").asLong()) / 1000.0;
        long trained = last.get("images_seen").asLong() - first.get("images_seen").asLong();
        List<Double> stepMs = new ArrayList<>();
        for (JsonNode s : steps.subList(warmupSteps, steps.size())) stepMs.add(s.get("step_ms").asDouble());
        stepMs.sort(Double::compare);

        ObjectNode o = Json.object();
        o.put("preset", cfg.preset);
        o.put("batch", batch);
        o.put("images", images);
        o.put("embed", !noEmbed);
        o.put("steps", steps.size());
        o.put("train_images_per_s", trained / seconds);
        // With replay a step trains on more images than arrive: the step's own rate, and what replay adds to it.
        o.put("batch_images_per_s", (double) (steps.size() - warmupSteps) * batch / seconds);
        if (last.has("replayed_images")) {
            o.put("replayed_images", last.get("replayed_images").asLong());
            List<Double> aug = new ArrayList<>();
            for (JsonNode s : steps.subList(warmupSteps, steps.size())) aug.add(s.get("replay_augment_ms").asDouble());
            aug.sort(Double::compare);
            o.put("replay_augment_ms_median", aug.get(aug.size() / 2));
        }
        o.put("step_ms_median", stepMs.get(stepMs.size() / 2));
        o.put("step_ms_max", stepMs.get(stepMs.size() - 1));
        o.put("snapshot_every", snapshotEvery);
        o.put("job_wall_s", wall);
        List<JsonNode> writes = new ArrayList<>();
        Path cps = dir.resolve("checkpoints.jsonl");
        if (Files.exists(cps)) for (String line : Files.readAllLines(cps)) writes.add(JSON.readTree(line));
        o.put("state_writes", writes.size());
        if (!writes.isEmpty()) {
            o.put("state_bytes", writes.get(writes.size() - 1).get("state_bytes").asLong());
            o.put("write_behind_ms_max", writes.stream().mapToDouble(w -> w.get("write_behind_ms").asDouble()).max().orElse(0));
            o.put("write_behind_ms_mean", writes.stream().mapToDouble(w -> w.get("write_behind_ms").asDouble()).average().orElse(0));
        }
        if (checkpoints != null) {
            JsonNode counts = checkpoints.path("counts"), summary = checkpoints.path("summary");
            o.put("checkpoints_completed", counts.path("completed").asLong());
            o.set("checkpoint_duration_ms", summary.path("end_to_end_duration"));
            o.set("checkpoint_size_bytes", summary.path("checkpointed_size"));
        }
        o.put("peak_rss_mb", Proc.peakRssMb());
        o.set("loadavg_before", Json.array(loadBefore));
        o.set("loadavg_after", Json.array(Proc.loadAverage()));
        if (json) Json.print(spec.commandLine().getOut(), o);
        else err.println(o.toPrettyString());
    }

    /** A GET of Flink's REST API as JSON; null while it is not up. */
    static JsonNode get(HttpClient http, String url) {
        try {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(2)).build(),
                    HttpResponse.BodyHandlers.ofString());
            return r.statusCode() == 200 ? JSON.readTree(r.body()) : null;
        } catch (Exception e) {
            return null;   // the REST endpoint comes up with the job; a miss is retried
        }
    }

    static int freePort() throws Exception {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    static void deleteTree(Path dir) throws Exception {
        try (var paths = Files.walk(dir)) {
            paths.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}
