package dinostream.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.pipeline.produce.FashionMnist;
import dinostream.pipeline.produce.FolderSource;
import dinostream.pipeline.produce.ImageProducer;
import dinostream.pipeline.produce.ImageSource;
import dinostream.pipeline.produce.Order;
import dinostream.pipeline.produce.SourceException;
import dinostream.pipeline.produce.SyntheticSource;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.config.ConfigException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

@Command(name = "produce", mixinStandardHelpOptions = true,
        description = {"Send images to a Kafka topic as Avro ImageRecords (single-object encoding, keyed by image id), "
                + "as a camera or web feed would: Fashion-MNIST, a folder of JPEG/PNG files, or synthetic shapes.",
                "Progress goes to stderr every few seconds; the topic must exist."})
final class ProduceCommand implements Callable<Integer> {
    static final Duration PROGRESS_EVERY = Duration.ofSeconds(5);

    @Spec
    CommandSpec spec;

    @Option(names = "--bootstrap", paramLabel = "HOST:PORT", required = true,
            description = "Kafka bootstrap servers (comma-separated).")
    String bootstrap;

    @Option(names = "--topic", paramLabel = "T", required = true, description = "The images topic.")
    String topic;

    @Option(names = "--source", paramLabel = "fmnist|DIR|synthetic", required = true,
            description = {"fmnist: Fashion-MNIST from --fmnist-dir (RAW_U8 28x28x1 with labels);",
                    "DIR: the *.jpg/*.jpeg/*.png files under DIR, recursively, sent undecoded (id: the relative path; "
                            + "event time: the file's mtime; label: the index of the top-level subfolder);",
                    "synthetic: seeded shapes of 10 classes (RAW_U8, gray 28x28 unless --size/--channels)."})
    String source;

    @Option(names = "--split", paramLabel = "train|test", description = "Fashion-MNIST split (default: train).")
    String split;

    @Option(names = "--fmnist-dir", paramLabel = "DIR", description = "Where the Fashion-MNIST IDX files are (default: ${DEFAULT-VALUE}).")
    Path fmnistDir = FashionMnist.DEFAULT_DIR;

    @Option(names = "--rate", paramLabel = "N", description = "Images per second (default: as fast as Kafka takes them).")
    Double rate;

    @Option(names = "--limit", paramLabel = "N",
            description = "Send at most N images (frames with --order camera), picked by the seeded shuffle (default: the whole source; "
                    + SyntheticSource.DEFAULT_COUNT + " for synthetic).")
    Long limit;

    @Mixin
    OrderOptions orderOptions;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "Seed of the shuffle and of the synthetic images (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--model-id", paramLabel = "ID", description = "Set the records' modelId (default: unset, the job's --model-id applies).")
    String modelId;

    @Option(names = "--source-name", paramLabel = "NAME",
            description = "The records' source field (default: fashion-mnist/SPLIT, synthetic/SEED, or the folder's absolute path).")
    String sourceName;

    @Option(names = "--size", paramLabel = "N", description = "Synthetic images: N x N pixels (default: 28).")
    Integer size;

    @Option(names = "--channels", paramLabel = "1|3", description = "Synthetic images: 1 gray or 3 RGB (default: 1).")
    Integer channels;

    @Option(names = "--compression", paramLabel = "lz4|none",
            description = "Producer compression (default: lz4 for raw pixels, none for a folder of JPEG/PNG files, which are compressed already).")
    String compression;

    @Option(names = "--kafka-property", paramLabel = "KEY=VALUE",
            description = "A Kafka producer setting (security, sizes, ...); repeatable; wins over dinostream's defaults.")
    List<String> kafkaProperties = new ArrayList<>();

    @Option(names = "--json", description = "Print a JSON summary on stdout.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        Map<String, String> props = kafkaProperties(kafkaProperties);
        checkBootstrap(bootstrap);
        if (topic.isBlank()) throw usage("--topic must not be empty");
        if (rate != null && !(rate > 0 && Double.isFinite(rate))) throw usage("--rate must be a positive number of images per second, not " + rate);
        if (limit != null && limit < 1) throw usage("--limit must be at least 1, not " + limit);
        if (compression != null && !compression.equals("lz4") && !compression.equals("none")) {
            throw usage("--compression must be lz4 or none, not '" + compression + "'");
        }
        Kind kind = kind(source);
        Order ord = orderOptions.parse(spec, kind == Kind.FOLDER);
        if (split != null && kind != Kind.FMNIST) throw usage("--split applies only to --source fmnist");
        if ((size != null || channels != null) && kind != Kind.SYNTHETIC) throw usage("--size and --channels apply only to --source synthetic");
        FashionMnist.Split sp;
        try {
            sp = FashionMnist.Split.parse(split != null ? split : "train");
        } catch (IllegalArgumentException e) {
            throw usage(e.getMessage());
        }
        if (channels != null && channels != 1 && channels != 3) throw usage("--channels must be 1 or 3, not " + channels);
        if (size != null && (size < 8 || size > 4096)) throw usage("--size must be 8 to 4096 pixels, not " + size);

        ImageProducer producer = ImageProducer.builder(bootstrap, topic)
                .kafkaProperties(props)
                .compression(compression != null ? compression : kind == Kind.FOLDER ? "none" : "lz4")
                .rate(rate != null ? rate : 0)
                .modelId(modelId)
                .sourceName(sourceName)
                .progress(PROGRESS_EVERY, s -> err().printf(Locale.ROOT, "produce: sent %,d images (%,.0f images/s), %s%n",
                        s.sent(), s.imagesPerSecond(), bytes(s.bytes())))
                .warnings(w -> err().println("produce: warning: " + w))
                .build();
        try {
            // Checked here, before the source is loaded, so that a bad value is a usage error.
            new ProducerConfig(new LinkedHashMap<>(producer.producerConfig()));
        } catch (ConfigException e) {
            throw usage("bad Kafka producer setting: " + e.getMessage());
        }

        ImageSource src;
        try {
            src = switch (kind) {
                case FMNIST -> FashionMnist.load(fmnistDir, sp);
                case SYNTHETIC -> new SyntheticSource(seed, limit != null ? (int) Math.min(limit, Integer.MAX_VALUE) : SyntheticSource.DEFAULT_COUNT,
                        size != null ? size : 28, channels != null ? channels : 1);
                case FOLDER -> FolderSource.open(Path.of(source));
            };
        } catch (SourceException e) {
            throw new CliFailure(e.getMessage(), e);
        }
        if (src instanceof FolderSource f && !f.notImages().isEmpty()) {
            List<String> n = f.notImages();
            err().printf(Locale.ROOT, "dinostream produce: %,d files under %s are not *.jpg, *.jpeg or *.png and are not produced: %s%s%n",
                    n.size(), source, String.join(", ", n.subList(0, Math.min(10, n.size()))), n.size() > 10 ? ", ..." : "");
        }
        Order.Feed feed = orderOptions.feed(ord, src, seed, limit != null ? limit : -1);

        // On Ctrl-C or SIGTERM: stop after the current image, flush, and print the summary before the
        // JVM exits (the hook waits for that, briefly).
        CountDownLatch done = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            producer.stop();
            try {
                done.await(15, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "produce-stop");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            ImageProducer.Stats stats = producer.run(feed.source(), feed.order());
            String name = sourceName != null ? sourceName : src.name();
            err().printf(Locale.ROOT, "produced %,d images from %s to topic %s on %s in %.2f s (%,.1f images/s, %s)%s%n",
                    stats.sent(), name, topic, bootstrap, stats.seconds(), stats.imagesPerSecond(), bytes(stats.bytes()),
                    stats.skipped() > 0 ? String.format(Locale.ROOT, "; skipped %,d files that are not JPEG or PNG", stats.skipped()) : "");
            if (json) {
                ObjectNode o = Json.object();
                o.put("bootstrap", bootstrap);
                o.put("topic", topic);
                o.put("source", name);
                orderOptions.describe(o, ord);
                o.put("seed", seed);
                o.put("sent", stats.sent());
                o.put("skipped", stats.skipped());
                o.put("bytes", stats.bytes());
                o.put("seconds", stats.seconds());
                o.put("imagesPerSecond", stats.imagesPerSecond());
                Json.print(spec.commandLine().getOut(), o);
            }
        } finally {
            done.countDown();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // The hook is running and returns now that done is counted down.
            }
        }
        return 0;
    }

    private enum Kind { FMNIST, SYNTHETIC, FOLDER }

    /** fmnist, synthetic, or an existing folder; anything else is a usage error. */
    private Kind kind(String s) {
        if (s.equals("fmnist")) return Kind.FMNIST;
        if (s.equals("synthetic")) return Kind.SYNTHETIC;
        Path p = Path.of(s);
        if (Files.isDirectory(p)) return Kind.FOLDER;
        if (Files.exists(p)) throw usage("--source " + s + " is not a directory");
        // A bare word is most likely a mistyped source name, a path a missing folder.
        boolean looksLikePath = s.contains("/") || s.contains(java.io.File.separator) || s.startsWith(".") || s.startsWith("~");
        if (looksLikePath) throw usage("no such directory: " + s);
        throw usage("unknown source '" + s + "' (expected fmnist, synthetic or a directory)");
    }

    /** key=value pairs, in order; the last of a repeated key wins. */
    private Map<String, String> kafkaProperties(List<String> kvs) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String kv : kvs) {
            int eq = kv.indexOf('=');
            if (eq <= 0 || kv.substring(0, eq).isBlank()) throw usage("bad --kafka-property '" + kv + "': expected KEY=VALUE");
            m.put(kv.substring(0, eq).strip(), kv.substring(eq + 1));
        }
        return m;
    }

    private void checkBootstrap(String b) {
        for (String hp : b.split(",", -1)) {
            String s = hp.strip();
            int colon = s.lastIndexOf(':');
            boolean ok = colon > 0 && colon < s.length() - 1;
            if (ok) {
                try {
                    int port = Integer.parseInt(s.substring(colon + 1));
                    ok = port > 0 && port <= 65535;
                } catch (NumberFormatException e) {
                    ok = false;
                }
            }
            if (!ok) throw usage("bad --bootstrap '" + b + "': expected HOST:PORT[,HOST:PORT...]");
        }
    }

    private ParameterException usage(String message) {
        return new ParameterException(spec.commandLine(), message);
    }

    private PrintWriter err() {
        return spec.commandLine().getErr();
    }

    static String bytes(long n) {
        if (n < 1024) return n + " B";
        if (n < 1024 * 1024) return String.format(Locale.ROOT, "%.1f KiB", n / 1024.0);
        if (n < 1024L * 1024 * 1024) return String.format(Locale.ROOT, "%.1f MiB", n / (1024.0 * 1024));
        return String.format(Locale.ROOT, "%.2f GiB", n / (1024.0 * 1024 * 1024));
    }
}
