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
                "Shows one live progress line; at the end (or Ctrl-C) stops cleanly and prints where everything is.",
                "--images N instead of --duration: a fixed budget of images trained (for learning experiments), not of wall time."})
final class DemoCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** The model id of a demo run (its snapshots: OUT/snapshots/demo). */
    static final String MODEL = "demo";

    @Spec
    CommandSpec spec;

    /** The online probe turns up after about 500 steps, 8 to 9 minutes here (README, "Learning within minutes"). */
    static final String DEFAULT_DURATION = "10m";

    @Option(names = "--duration", paramLabel = "D", description = "How long to run: 90s, 5m, 1h (default: " + DEFAULT_DURATION + ", long enough for the k-NN probe to rise; not with --images).")
    String duration;

    @Option(names = "--images", paramLabel = "N",
            description = "Train on exactly N images, then stop: N images (frames with --order camera; the source in --order, "
                    + "picked from all classes and cycled as often as needed) go into Kafka "
                    + "as fast as it takes them, then the job runs bounded (as train --bounded) and ends when the trainer has trained on "
                    + "all of them, with a final snapshot. A multiple of --batch; not with --duration or --rate.")
    Long images;

    @Option(names = "--source", paramLabel = "fmnist|DIR|synthetic",
            description = "Images: Fashion-MNIST when installed (else synthetic), a folder of JPEG/PNG, or synthetic shapes; "
                    + "sent again, in the same order, each time the source ends.")
    String source;

    @Mixin
    OrderOptions orderOptions;

    @ArgGroup(exclusive = true)
    ModelOptions model;

    @Mixin
    PrecisionOption precision;

    @Mixin
    StartFromOptions startFrom;

    @Option(names = "--rate", paramLabel = "N", description = "Images per second into Kafka, like a camera feed (default: 200; with --images as fast as Kafka takes them).")
    Double rate;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "64", description = "Images per train step (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "Seeds the initial weights and the augmentation, as train's, and the images' --order (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--snapshot-every", paramLabel = "N", defaultValue = "10", description = "Steps between snapshots (default: ${DEFAULT-VALUE}).")
    int snapshotEvery;

    @Mixin
    ScheduleOptions scheduleOptions;

    @Mixin
    RecipeOptions recipe;

    @Mixin
    ProbeOptions probeOptions;

    @Mixin
    CorrelatedStreamOptions correlated;

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
        // A budget of images must not end early on a clock or wait on a pace: the two are the timed run's.
        if (images != null) {
            if (duration != null) throw usage("--images and --duration do not go together: a run with --images ends when its images are trained");
            if (rate != null) throw usage("--images and --rate do not go together: with --images the images go into Kafka as fast as it takes them");
            if (images < 1) throw usage("--images must be positive");
            if (images % batch != 0) throw usage("--images must be a multiple of --batch (" + batch + "): the images of an incomplete batch are not trained on");
        }
        String durationText = duration != null ? duration : DEFAULT_DURATION;
        Duration runFor = images != null ? null : parseDuration(durationText);
        if (rate != null && !(rate > 0)) throw usage("--rate must be positive");
        Order ord = orderOptions.parse(spec, source != null && !source.equals("fmnist") && !source.equals("synthetic"));
        PrintWriter err = spec.commandLine().getErr();
        // Before the run folder is cleared: a file that does not fit is a usage error.
        DinoConfig named = ModelOptions.resolve(model, "fmnist-small", spec);
        StartFromOptions.Resolved start = startFrom.resolve(recipe.apply(precision.apply(named, spec), spec),
                dinostream.pipeline.job.Deployment.LOCAL, false, seed, recipe.outDim, spec);
        DinoConfig cfg = start.config();
        var augment = recipe.augment(cfg, spec);
        var schedule = scheduleOptions.toSchedule(spec, named);
        Path dir = out.toAbsolutePath();
        freshRun(dir);
        // The progress line says what the INFO lines would; keep the console to it and to warnings.
        org.apache.logging.log4j.core.config.Configurator.setLevel("dinostream", org.apache.logging.log4j.Level.WARN);

        ImageSource imageSource = images(cfg, err);
        int port = webPort(webPort);
        long started = System.nanoTime();
        try (EmbeddedKafka kafka = EmbeddedKafka.builder().dataDir(dir.resolve("kafka")).build().start()) {
            JobOptions.Builder ob = LocalRun.options(kafka.bootstrap(), cfg, dir)
                    .modelId(MODEL)
                    .groupId("dinostream-demo")
                    .parallelism(1)
                    .checkpointInterval(Duration.ofSeconds(10))
                    .embed(!noEmbed)
                    // The images are all in Kafka before the job starts: it stops at those offsets, as train --bounded.
                    .bounded(images != null)
                    .augment(augment)
                    .trainer(t -> t.batch(batch).seed(seed).initState(start.uri()).initImport(start.how()).snapshotEvery(snapshotEvery).broadcastEvery(10).schedule(schedule))
                    .probe(p -> probeOptions.applyTo(p, spec))
                    .embedder(e -> e.threads(1));
            correlated.applyTo(ob, spec);
            JobOptions o = ob.build();
            // The settings a result came from, beside it.
            RunSettings.write(dir, "demo", spec, o, images, stream(ord));
            LocalRun.createTopics(kafka, o, 1, Map.of());
            // A budget picks its images from the whole source (every class, in a class-sorted or camera
            // order, even when it is smaller than the source); for iid that is the first N of the shuffle, as cycled takes.
            Order.Feed toSend = orderOptions.feed(ord, imageSource, seed, images != null ? images : -1);
            ImageSource feedSource = toSend.source();
            int[] order = toSend.order();
            ImageProducer producer;
            if (images != null) {
                producer = ImageProducer.builder(o.bootstrap(), o.imagesTopic()).build();
                err.printf(Locale.ROOT, "dinostream demo: sending %,d images into Kafka...%n", images);
                ImageProducer.Stats sent = producer.run(feedSource, cycled(order, images));
                if (sent.sent() != images) {
                    throw new CliFailure("only " + sent.sent() + " of the " + images + " images went into Kafka ("
                            + sent.skipped() + " of the source's files are not images)");
                }
            } else {
                producer = ImageProducer.builder(o.bootstrap(), o.imagesTopic()).rate(rate != null ? rate : 200).build();
            }
            JobClient job = LocalRun.start(o, port, "dinostream demo");
            // Done when the job is: its MiniCluster shuts down with a job that ends by itself (--images), and asking its status then fails.
            var ended = job.getJobExecutionResult();
            err.printf("dinostream demo: Kafka on %s, Flink web UI on http://127.0.0.1:%d, model %s (%s), %s%n",
                    kafka.bootstrap(), port, MODEL, cfg.preset != null ? cfg.preset : "custom",
                    images != null ? String.format(Locale.ROOT, "until %,d images are trained", images) : "for " + durationText);

            if (images == null) {
                Thread feed = new Thread(() -> {
                    try {
                        // Like a camera, the feed does not end after one pass: the source goes out again, in the
                        // same order, until the run ends (a pass that sent nothing ends it: no images in the source).
                        long before;
                        do {
                            before = producer.stats().sent();
                            producer.run(feedSource, order);
                        } while (!producer.stopped() && producer.stats().sent() > before);
                    } catch (Exception e) {
                        err.println("dinostream demo: the image feed stopped: " + e.getMessage());
                    }
                }, "demo-feed");
                feed.setDaemon(true);
                feed.start();
            }

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
                    // A bounded run (--images) ends with its job.
                    long end = runFor == null ? 0 : System.nanoTime() + runFor.toNanos(), nextLine = 0;
                    while (!stop.get() && (runFor == null || System.nanoTime() < end) && !ended.isDone()) {
                        Thread.sleep(500);
                        JsonNode last = progress.poll();
                        if (tty || System.nanoTime() >= nextLine) {
                            String line = progressLine(producer.stats(), last, embeddings.count(), deadLetters.count(), probeTop1(dir));
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
                Throwable failed = ended.isCompletedExceptionally() ? ended.handle((r, e) -> e).join() : null;
                err.println(ended.isDone() ? "dinostream demo: the job ended" + (failed != null ? " with a failure" : "")
                        : "dinostream demo: stopping (the last checkpoint commits the pending embeddings)...");
                producer.stop();
                stopJob(job, ended, dir, err);
                waitForQuiet(embeddings);
                JsonNode last = progress.poll();
                summary(dir, cfg, producer, last, embeddings.count(), deadLetters.count(), (System.nanoTime() - started) / 1e9, err);
                // A job that failed by itself (its restarts used up) is the run's result, after what it left.
                if (failed != null) throw new CliFailure("the job failed: " + Errors.describe(failed), failed);
            }
        }
        return 0;
    }

    /** How the images went in, for run.json. */
    private ObjectNode stream(Order ord) {
        ObjectNode n = Json.object();
        orderOptions.describe(n, ord);
        n.put("seed", seed);
        return n;
    }

    /** The first {@code n} of {@code order} repeated: a budget larger than the source goes through it again, in the same order. */
    static int[] cycled(int[] order, long n) {
        if (order.length == 0) throw new CliFailure("the image source is empty");
        if (n > Integer.MAX_VALUE - 8) throw new CliFailure("--images " + n + " is more than one run can send (" + (Integer.MAX_VALUE - 8) + ")");
        int[] r = new int[(int) n];
        for (int i = 0; i < r.length; i++) r[i] = order[i % order.length];
        return r;
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

    /** The first and the newest k-NN probe top-1 of the run folder ({NaN, NaN} before the first). */
    private static double[] probeTop1(Path dir) {
        List<JsonNode> p = probes(dir);
        return p.isEmpty() ? new double[]{Double.NaN, Double.NaN}
                : new double[]{p.get(0).path("top1").asDouble(Double.NaN), p.get(p.size() - 1).path("top1").asDouble(Double.NaN)};
    }

    /** The newest line of the run folder's probe.jsonl, or null. */
    private static JsonNode lastProbe(Path dir) {
        List<JsonNode> p = probes(dir);
        return p.isEmpty() ? null : p.get(p.size() - 1);
    }

    /** The lines of the run folder's probe.jsonl; none while it is missing or being written (the next poll reads it). */
    private static List<JsonNode> probes(Path dir) {
        try {
            Path p = dir.resolve("probe.jsonl");
            if (!Files.exists(p)) return List.of();
            List<JsonNode> out = new java.util.ArrayList<>();
            for (String line : Files.readAllLines(p)) out.add(JSON.readTree(line));
            return out;
        } catch (Exception e) {
            return List.of();
        }
    }

    /** The demo's one line; {@code knn}: the first and the newest probe top-1, so that the line shows what was learnt. */
    static String progressLine(ImageProducer.Stats s, JsonNode last, long embeddings, long dead, double[] knn) {
        if (last == null) {
            return String.format(Locale.ROOT, "images in %,d | waiting for the first train step... | embeddings out %,d | dead letters %,d",
                    s.sent(), embeddings, dead);
        }
        String probe = Double.isNaN(knn[1]) ? ""
                : String.format(Locale.ROOT, " | k-NN %.1f%%", knn[1]) + (knn[0] == knn[1] ? "" : String.format(Locale.ROOT, " (from %.1f%%)", knn[0]));
        return String.format(Locale.ROOT, "images in %,d | train %.1f img/s | step %d | loss %.3f | teacher entropy %.2f%s%s | embeddings out %,d | dead letters %,d",
                s.sent(), last.path("images_per_s").asDouble(), last.path("step").asLong(), last.path("loss").asDouble(),
                last.path("teacher_entropy").asDouble(), probe,
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
    private static void stopJob(JobClient job, java.util.concurrent.Future<?> ended, Path dir, PrintWriter err) {
        try {
            if (!ended.isDone()) {
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
        err.printf(Locale.ROOT, "  train steps          %,d (%,d images trained on%s)%n", steps, last == null ? 0 : last.path("images_seen").asLong(),
                last != null && last.has("replayed_images") ? String.format(Locale.ROOT, ", and %,d replayed", last.path("replayed_images").asLong()) : "");
        if (last != null) {
            err.printf(Locale.ROOT, "  last loss            %.4f (ln K = %.4f), teacher entropy %.3f%n", last.path("loss").asDouble(),
                    Math.log(cfg.outDim), last.path("teacher_entropy").asDouble());
        }
        JsonNode probe = lastProbe(dir);
        if (probe != null) {
            err.printf(Locale.ROOT, "  last k-NN probe      top-1 %.2f %%, top-5 %.2f %% at step %d (%s)%n", probe.path("top1").asDouble(),
                    probe.path("top5").asDouble(), probe.path("step").asLong(), dir.resolve("probe.jsonl"));
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
            o.put("images_trained", last == null ? 0 : last.path("images_seen").asLong());
            if (last != null && last.has("replayed_images")) o.put("images_replayed", last.path("replayed_images").asLong());
            if (probe != null) {
                o.put("probe_step", probe.path("step").asLong());
                o.put("probe_top1", probe.path("top1").asDouble());
                o.put("probe_top5", probe.path("top5").asDouble());
            }
            o.put("embeddings_committed", embeddings);
            o.put("dead_letters", dead);
            o.put("snapshots", snapshots.size());
            o.put("out", dir.toString());
            o.put("settings", dir.resolve(RunSettings.FILE).toString());
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
        for (String name : new String[]{"metrics.jsonl", "checkpoints.jsonl", "embeddings.jsonl", "probe.jsonl", "report.html", RunSettings.FILE}) {
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
