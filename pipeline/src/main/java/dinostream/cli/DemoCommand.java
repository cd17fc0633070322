package dinostream.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.model.dino.DinoConfig;
import dinostream.pipeline.demo.RunProgress;
import dinostream.pipeline.demo.TopicTail;
import dinostream.pipeline.job.JobOptions;
import dinostream.pipeline.kafka.EmbeddedKafka;
import dinostream.pipeline.produce.FashionMnist;
import dinostream.pipeline.produce.FolderSource;
import dinostream.pipeline.produce.ImageProducer;
import dinostream.pipeline.produce.ImageSource;
import dinostream.pipeline.produce.Order;
import dinostream.pipeline.produce.SyntheticSource;
import dinostream.pipeline.snapshot.SnapshotStore;
import dinostream.schemas.EmbeddingRecord;
import dinostream.schemas.codec.AvroCodec;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.core.execution.SavepointFormatType;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.BufferedWriter;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"See dinostream learn from a stream in minutes: starts a Kafka broker in-process (127.0.0.1 only),",
                "streams images into it, and runs the train job on a local Flink MiniCluster with its web UI.",
                "Shows one live progress line; at the end (or Ctrl-C) stops cleanly and prints where everything is."})
final class DemoCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String MODEL = "demo";

    @Spec
    CommandSpec spec;

    @Option(names = "--duration", paramLabel = "D", defaultValue = "5m", description = "How long to run: 90s, 5m, 1h (default: ${DEFAULT-VALUE}).")
    String duration;

    @Option(names = "--source", paramLabel = "fmnist|DIR|synthetic",
            description = "Images: Fashion-MNIST when installed (else synthetic), a folder of JPEG/PNG, or synthetic shapes.")
    String source;

    @ArgGroup(exclusive = true)
    ModelOptions model;

    @Mixin
    PrecisionOption precision;

    @Mixin
    StartFromOptions startFrom;

    @Option(names = "--rate", paramLabel = "N", defaultValue = "200", description = "Images per second into Kafka, like a camera feed (default: ${DEFAULT-VALUE}).")
    double rate;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "64", description = "Images per train step (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--snapshot-every", paramLabel = "N", defaultValue = "10", description = "Steps between snapshots (default: ${DEFAULT-VALUE}).")
    int snapshotEvery;

    @Mixin
    ScheduleOptions scheduleOptions;

    @Mixin
    ProbeOptions probeOptions;

    @Option(names = "--no-embed", description = "Train only (all cores for the train step).")
    boolean noEmbed;

    @Option(names = "--out", paramLabel = "DIR", defaultValue = "dinostream-out", description = "Run folder (default: ${DEFAULT-VALUE}).")
    Path out;

    @Option(names = "--web-port", paramLabel = "P", defaultValue = "8081", description = "Flink web UI port on 127.0.0.1; another free one if taken (default: ${DEFAULT-VALUE}).")
    int webPort;

    @Option(names = "--json", description = "Print the final summary as JSON on stdout.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        Duration runFor = parseDuration(duration);
        if (!(rate > 0)) throw usage("--rate must be positive");
        PrintWriter err = spec.commandLine().getErr();
        // Before the run folder is cleared: a file that does not fit is a usage error.
        StartFromOptions.Resolved start = startFrom.resolve(precision.apply(ModelOptions.resolve(model, "fmnist-small", spec), spec),
                dinostream.pipeline.job.Deployment.LOCAL, false, 0, spec);
        DinoConfig cfg = start.config();
        Path dir = out.toAbsolutePath();
        freshRun(dir);
        // The progress line says what the INFO lines would; keep the console to it and to warnings.
        org.apache.logging.log4j.core.config.Configurator.setLevel("dinostream", org.apache.logging.log4j.Level.WARN);

        ImageSource images = images(cfg, err);
        int port = webPort(webPort);
        long started = System.nanoTime();
        try (EmbeddedKafka kafka = EmbeddedKafka.builder().dataDir(dir.resolve("kafka")).build().start()) {
            JobOptions o = LocalRun.options(kafka.bootstrap(), cfg, dir)
                    .modelId(MODEL)
                    .groupId("dinostream-demo")
                    .parallelism(1)
                    .checkpointInterval(Duration.ofSeconds(10))
                    .embed(!noEmbed)
                    .trainer(t -> t.batch(batch).initState(start.uri()).initImport(start.how()).snapshotEvery(snapshotEvery).broadcastEvery(10).schedule(scheduleOptions.toSchedule(spec)))
                    .probe(p -> probeOptions.applyTo(p, spec))
                    .embedder(e -> e.threads(1))
                    .build();
            LocalRun.createTopics(kafka, o, 1, Map.of());
            JobClient job = LocalRun.start(o, port, "dinostream demo");
            err.printf("dinostream demo: Kafka on %s, Flink web UI on http://127.0.0.1:%d, model %s (%s), for %s%n",
                    kafka.bootstrap(), port, MODEL, cfg.preset != null ? cfg.preset : "custom", duration);

            ImageProducer producer = ImageProducer.builder(o.bootstrap(), o.imagesTopic()).rate(rate).build();
            Thread feed = new Thread(() -> {
                try {
                    producer.run(images, Order.IID.indices(images, 0, -1));
                } catch (Exception e) {
                    err.println("dinostream demo: the image feed stopped: " + e.getMessage());
                }
            }, "demo-feed");
            feed.setDaemon(true);
            feed.start();

            AvroCodec<EmbeddingRecord> codec = AvroCodec.embeddingRecords();
            try (BufferedWriter embeddingsOut = Files.newBufferedWriter(dir.resolve("embeddings.jsonl"), StandardCharsets.UTF_8);
                 TopicTail embeddings = new TopicTail(o.bootstrap(), o.embeddingsTopic(), r -> writeEmbedding(codec, r.value(), embeddingsOut));
                 TopicTail deadLetters = new TopicTail(o.bootstrap(), o.deadLetterTopic(), null)) {
                RunProgress progress = new RunProgress(dir);
                boolean tty = System.console() != null;
                // Ctrl-C or SIGTERM ends the loop below, which then stops everything cleanly.
                AtomicBoolean stop = new AtomicBoolean();
                sun.misc.SignalHandler oldInt = sun.misc.Signal.handle(new sun.misc.Signal("INT"), s -> stop.set(true));
                sun.misc.SignalHandler oldTerm = sun.misc.Signal.handle(new sun.misc.Signal("TERM"), s -> stop.set(true));
                try {
                    long end = System.nanoTime() + runFor.toNanos(), nextLine = 0;
                    while (!stop.get() && System.nanoTime() < end && !job.getJobStatus().get().isTerminalState()) {
                        Thread.sleep(500);
                        JsonNode last = progress.poll();
                        if (tty || System.nanoTime() >= nextLine) {
                            String line = progressLine(producer, last, embeddings.count(), deadLetters.count(), probeTop1(dir));
                            if (tty) err.print("\r" + line + "   ");
                            else err.println(line);
                            err.flush();
                            nextLine = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                        }
                    }
                } finally {
                    sun.misc.Signal.handle(new sun.misc.Signal("INT"), oldInt);
                    sun.misc.Signal.handle(new sun.misc.Signal("TERM"), oldTerm);
                }
                if (tty) err.println();
                err.println("dinostream demo: stopping (the last checkpoint commits the pending embeddings)...");
                producer.stop();
                stopJob(job, dir, err);
                waitForQuiet(embeddings);
                JsonNode last = progress.poll();
                summary(dir, cfg, producer, last, embeddings.count(), deadLetters.count(), (System.nanoTime() - started) / 1e9, err);
            }
        }
        return 0;
    }

    private ImageSource images(DinoConfig cfg, PrintWriter err) throws Exception {
        String s = source;
        if (s == null) {
            if (Files.isDirectory(FashionMnist.DEFAULT_DIR)) s = "fmnist";
            else {
                err.println("dinostream demo: Fashion-MNIST is not installed, streaming synthetic shapes instead "
                        + "(for real images: apt-get install dataset-fashion-mnist)");
                s = "synthetic";
            }
        }
        return switch (s) {
            case "fmnist" -> FashionMnist.load(FashionMnist.DEFAULT_DIR, FashionMnist.Split.TRAIN);
            case "synthetic" -> new SyntheticSource(0, SyntheticSource.DEFAULT_COUNT, cfg.imgSize, cfg.inChans);
            default -> {
                Path p = Path.of(s);
                if (!Files.isDirectory(p)) throw usage("--source must be fmnist, synthetic or a folder of images: " + s);
                yield FolderSource.open(p);
            }
        };
    }

    /** The newest k-NN probe score in the run folder, or NaN. */
    private static double probeTop1(Path dir) {
        try {
            Path p = dir.resolve("probe.jsonl");
            if (!Files.exists(p)) return Double.NaN;
            List<String> lines = Files.readAllLines(p);
            return lines.isEmpty() ? Double.NaN : JSON.readTree(lines.get(lines.size() - 1)).path("top1").asDouble(Double.NaN);
        } catch (Exception e) {
            return Double.NaN;   // being written right now; the next poll reads it
        }
    }

    private static String progressLine(ImageProducer producer, JsonNode last, long embeddings, long dead, double knn) {
        ImageProducer.Stats s = producer.stats();
        if (last == null) {
            return String.format(Locale.ROOT, "images in %,d | waiting for the first train step... | embeddings out %,d | dead letters %,d",
                    s.sent(), embeddings, dead);
        }
        return String.format(Locale.ROOT, "images in %,d | train %.1f img/s | step %d | loss %.3f | teacher entropy %.2f%s%s | embeddings out %,d | dead letters %,d",
                s.sent(), last.path("images_per_s").asDouble(), last.path("step").asLong(), last.path("loss").asDouble(),
                last.path("teacher_entropy").asDouble(), Double.isNaN(knn) ? "" : String.format(Locale.ROOT, " | k-NN %.1f%%", knn),
                last.path("collapse_warnings").size() > 0 ? " | COLLAPSE? " + last.path("collapse_warnings") : "", embeddings, dead);
    }

    private static void writeEmbedding(AvroCodec<EmbeddingRecord> codec, byte[] value, BufferedWriter out) {
        try {
            EmbeddingRecord e = codec.decode(value);
            ObjectNode o = JSON.createObjectNode();
            o.put("image_id", e.getImageId());
            o.put("model_step", e.getModelStep());
            o.put("model_version", e.getSnapshotHash());
            var v = o.putArray("vector");
            for (Float f : e.getVector()) v.add(f);
            out.write(JSON.writeValueAsString(o));
            out.newLine();
        } catch (Exception ex) {
            throw new IllegalStateException("cannot record an embedding: " + ex.getMessage(), ex);
        }
    }

    /** A savepoint commits the Kafka transactions of everything processed so far, then the job stops. */
    private static void stopJob(JobClient job, Path dir, PrintWriter err) {
        try {
            if (!job.getJobStatus().get().isTerminalState()) {
                job.stopWithSavepoint(false, dir.resolve("savepoints").toUri().toString(), SavepointFormatType.CANONICAL)
                        .get(2, TimeUnit.MINUTES);
            }
        } catch (Exception e) {
            err.println("dinostream demo: the job did not stop with a savepoint (" + e.getMessage() + "); cancelling");
            try {
                job.cancel().get(30, TimeUnit.SECONDS);
            } catch (Exception ignored) {
                // it is going down with the process anyway
            }
        }
    }

    /** Until the committed embeddings stop growing (a checkpoint's transaction lands at once). */
    private static void waitForQuiet(TopicTail tail) throws InterruptedException {
        long before = -1;
        for (int i = 0; i < 10 && tail.count() != before; i++) {
            before = tail.count();
            Thread.sleep(700);
        }
    }

    private void summary(Path dir, DinoConfig cfg, ImageProducer producer, JsonNode last, long embeddings, long dead,
                         double seconds, PrintWriter err) throws Exception {
        SnapshotStore store = new SnapshotStore(dir.resolve("snapshots").toUri().toString(), 5);
        var snapshots = store.list(MODEL);
        long steps = last == null ? 0 : last.path("step").asLong();
        err.println();
        err.printf(Locale.ROOT, "dinostream demo finished after %.0f s%n", seconds);
        err.printf(Locale.ROOT, "  images in            %,d%n", producer.stats().sent());
        err.printf(Locale.ROOT, "  train steps          %,d (%,d images trained on)%n", steps, last == null ? 0 : last.path("images_seen").asLong());
        if (last != null) {
            err.printf(Locale.ROOT, "  last loss            %.4f (ln K = %.4f), teacher entropy %.3f%n", last.path("loss").asDouble(),
                    Math.log(cfg.outDim), last.path("teacher_entropy").asDouble());
        }
        err.printf(Locale.ROOT, "  embeddings committed %,d  -> %s%n", embeddings, dir.resolve("embeddings.jsonl"));
        err.printf(Locale.ROOT, "  dead letters         %,d%n", dead);
        err.printf(Locale.ROOT, "  snapshots            %d  -> %s%n", snapshots.size(), dir.resolve("snapshots").resolve(MODEL));
        err.printf(Locale.ROOT, "  metrics              %s%n", dir.resolve("metrics.jsonl"));
        Path report = dir.resolve("report.html");
        try {
            dinostream.pipeline.viz.Report.write(dir, report);
            err.printf(Locale.ROOT, "  report               %s%n", report);
        } catch (Exception e) {
            err.println("  report               not written: " + e.getMessage());
        }
        if (json) {
            ObjectNode o = Json.object();
            o.put("images_in", producer.stats().sent());
            o.put("train_steps", steps);
            o.put("embeddings_committed", embeddings);
            o.put("dead_letters", dead);
            o.put("snapshots", snapshots.size());
            o.put("out", dir.toString());
            o.put("seconds", seconds);
            Json.print(spec.commandLine().getOut(), o);
        }
    }

    /** A demo starts from an empty broker and run history; snapshots of earlier runs go too. */
    private static void freshRun(Path dir) throws Exception {
        Files.createDirectories(dir);
        for (String name : new String[]{"kafka", "checkpoints", "savepoints", "snapshots"}) {
            Path p = dir.resolve(name);
            if (Files.exists(p)) {
                try (var walk = Files.walk(p)) {
                    walk.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
                }
            }
        }
        for (String name : new String[]{"metrics.jsonl", "checkpoints.jsonl", "embeddings.jsonl", "probe.jsonl", "report.html"}) {
            Files.deleteIfExists(dir.resolve(name));
        }
    }

    private static int webPort(int wanted) throws Exception {
        try (ServerSocket s = new ServerSocket(wanted, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();   // wanted, or for 0 the free port picked, so that the line printed is the UI's
        } catch (java.io.IOException taken) {
            try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
                return s.getLocalPort();
            }
        }
    }

    private Duration parseDuration(String d) {
        Matcher m = Pattern.compile("(\\d+)\\s*(s|m|h)?").matcher(d.trim());
        if (!m.matches()) throw usage("--duration must look like 90s, 5m or 1h, not '" + d + "'");
        long n = Long.parseLong(m.group(1));
        String unit = m.group(2) == null ? "s" : m.group(2);
        Duration r = switch (unit) {
            case "h" -> Duration.ofHours(n);
            case "m" -> Duration.ofMinutes(n);
            default -> Duration.ofSeconds(n);
        };
        if (r.isZero()) throw usage("--duration must be positive");
        return r;
    }

    private ParameterException usage(String msg) {
        return new ParameterException(spec.commandLine(), msg);
    }
}
