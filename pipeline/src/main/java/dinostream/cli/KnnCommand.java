package dinostream.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.model.dino.DinoConfig;
import dinostream.model.eval.Features;
import dinostream.model.eval.Knn;
import dinostream.model.runtime.RuntimeOptions;
import dinostream.model.runtime.TeacherInference;
import dinostream.pipeline.decode.DecodedPixels;
import dinostream.pipeline.embed.EmbedInput;
import dinostream.pipeline.produce.FashionMnist;
import dinostream.pipeline.produce.LabelledImages;
import dinostream.pipeline.produce.LabelledImages.Split;
import dinostream.pipeline.produce.SourceException;
import dinostream.pipeline.snapshot.Manifest;
import dinostream.pipeline.snapshot.SnapshotStore;
import dinostream.pipeline.snapshot.TeacherSnapshot;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "knn", mixinStandardHelpOptions = true,
        description = {"DINO's weighted k-NN evaluation (eval_knn.py): L2-normalized features, cosine similarity, the k nearest "
                + "train images vote for their class with weight exp(sim/T); prints top-1 and top-5 accuracy in percent on the test split.",
                "Features: the CLS embedding of a snapshot's teacher backbone (teacher-backbone.onnx; images through DINO's "
                        + "eval transform and the model's normalization), or the raw pixels x/255 flattened (a baseline; no --snapshot).",
                "Datasets: 'fmnist' (Fashion-MNIST from /usr/share/datasets/fashion-mnist: 60,000 train, 10,000 test), or a folder "
                        + "with train/ and test/ subfolders, each holding one folder per class (class = folder name).",
                "Subsets: --train-limit N / --test-limit N take the first N of numpy's RandomState(0).permutation of that split "
                        + "(bit-exact: --train-limit 10000 on fmnist is the 10k memory bank of the PyTorch reference's k-NN baseline); a limit "
                        + "at or above the split's size, or none, takes the whole split in its order."})
final class KnnCommand implements Callable<Integer> {
    static final String FMNIST = "fmnist";
    static final long SUBSET_SEED = 0;
    /** Seconds between progress lines. */
    static final double PROGRESS_EVERY_S = 2.0;

    @Spec
    CommandSpec spec;

    @Option(names = "--snapshot", paramLabel = "DIR", description = "A snapshot folder (step-*, a path or URI) whose teacher gives the features.")
    String snapshot;

    @Option(names = "--dataset", paramLabel = "fmnist|DIR", required = true,
            description = "fmnist, or a folder with train/<class>/ and test/<class>/ images (JPEG, PNG).")
    String dataset;

    @Option(names = "--k", paramLabel = "K", defaultValue = "20", description = "Neighbours that vote (default: ${DEFAULT-VALUE}).")
    int k;

    @Option(names = "--temperature", paramLabel = "T", defaultValue = "0.07", description = "Vote weight exp(sim/T) (default: ${DEFAULT-VALUE}).")
    double temperature;

    @Option(names = "--features", paramLabel = "teacher|pixels", defaultValue = "teacher",
            description = "teacher: the snapshot's teacher CLS embedding; pixels: x/255 flattened (default: ${DEFAULT-VALUE}).")
    String features;

    @Option(names = "--train-limit", paramLabel = "N", description = "Memory bank: the first N of RandomState(0).permutation of the train split (default: all).")
    Integer trainLimit;

    @Option(names = "--test-limit", paramLabel = "N", description = "Score the first N of RandomState(0).permutation of the test split (default: all).")
    Integer testLimit;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "256", description = "Images per teacher inference call (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--threads", paramLabel = "T", defaultValue = "0", description = "ONNX Runtime intra-op threads (default: all cores).")
    int threads;

    @Option(names = "--json", description = "Print one JSON object on stdout instead of a summary.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        checkOptions();
        try {
            return evaluate();
        } catch (SourceException e) {
            // The dataset's messages are already the line for the user.
            throw new CliFailure(e.getMessage(), e);
        }
    }

    private int evaluate() throws IOException {
        boolean teacher = features.equals("teacher");
        PrintWriter err = spec.commandLine().getErr();
        double[] loadBefore = Proc.loadAverage();
        long t0 = System.nanoTime();

        // Both inputs are checked before anything is printed, so a bad one fails with one line.
        boolean fmnist = datasetIsFmnist();
        TeacherSnapshot ts = teacher ? SnapshotStore.loadTeacher(snapshot) : null;
        LabelledImages ds = fmnist ? LabelledImages.fashionMnist(FashionMnist.DEFAULT_DIR, trainLimit, testLimit, SUBSET_SEED)
                : LabelledImages.folder(Path.of(dataset), trainLimit, testLimit, SUBSET_SEED);
        RuntimeOptions runtime = RuntimeOptions.cpu().withThreads(threads);
        DinoConfig cfg = ts == null ? null : ts.manifest().dinoConfig();
        if (teacher) {
            Manifest m = ts.manifest();
            err.printf("[knn] teacher of %s step %d (version %s, %s) on %d thread%s%n", m.modelId(), m.step(),
                    m.modelVersion().substring(0, 12), cfg.preset != null ? cfg.preset : "custom config",
                    runtime.effectiveThreads(), runtime.effectiveThreads() == 1 ? "" : "s");
        }

        long f0 = System.nanoTime();
        float[][] train, test;
        if (teacher) {
            try (TeacherInference t = new TeacherInference(ts.onnx(), runtime)) {
                train = teacherFeatures(ds.train(), cfg, t, err);
                test = teacherFeatures(ds.test(), cfg, t, err);
            }
        } else {
            train = pixelFeatures(ds.train(), ds.pixelChannels(), err);
            test = pixelFeatures(ds.test(), ds.pixelChannels(), err);
        }
        double featureS = (System.nanoTime() - f0) / 1e9;

        int kUsed = k;
        if (k > train.length) {
            kUsed = train.length;
            err.printf("[knn] --k %d is more than the %d train images: using k = %d%n", k, train.length, kUsed);
        }
        err.printf("[knn] scoring %,d test images against %,d train images (k %d, T %s, %d classes)...%n",
                test.length, train.length, kUsed, temperature, ds.classes());
        long k0 = System.nanoTime();
        Knn.Result r = Knn.evaluate(train, ds.train().labels(), test, ds.test().labels(), kUsed, temperature, ds.classes(), runtime);
        double knnS = (System.nanoTime() - k0) / 1e9;
        double seconds = (System.nanoTime() - t0) / 1e9;
        err.printf("[knn] k-NN done in %.1f s%n", knnS);

        ObjectNode o = Json.object();
        o.put("top1", r.top1());
        o.put("top5", r.top5());
        o.put("k", kUsed);
        o.put("temperature", temperature);
        o.put("features", features);
        o.put("feature_dim", train[0].length);
        o.put("dataset", fmnist ? FMNIST : Path.of(dataset).toAbsolutePath().normalize().toString());
        o.put("classes", ds.classes());
        o.put("n_train", train.length);
        o.put("n_test", test.length);
        o.put("train_subset", subsetText(trainLimit, ds.train().source().size()));
        o.put("test_subset", subsetText(testLimit, ds.test().source().size()));
        if (teacher) {
            Manifest m = ts.manifest();
            o.put("snapshot", snapshot);
            o.put("model_id", m.modelId());
            o.put("step", m.step());
            o.put("images_seen", m.imagesSeen());
            o.put("model_version", m.modelVersion());
            o.put("preset", cfg.preset);
        } else {
            for (String f : List.of("snapshot", "model_id", "step", "images_seen", "model_version", "preset")) o.putNull(f);
        }
        o.put("threads", runtime.effectiveThreads());
        o.put("seconds", Json.round(seconds, 3));
        o.put("feature_seconds", Json.round(featureS, 3));
        o.put("features_per_s", Json.round((train.length + test.length) / featureS, 1));
        o.put("knn_seconds", Json.round(knnS, 3));
        o.set("loadavg_before", Json.array(loadBefore));
        o.set("loadavg", Json.array(Proc.loadAverage()));
        if (json) Json.print(spec.commandLine().getOut(), o);
        else printSummary(spec.commandLine().getOut(), o);
        return 0;
    }

    private void checkOptions() {
        if (!features.equals("teacher") && !features.equals("pixels")) usage("--features must be teacher or pixels, got '" + features + "'");
        if (features.equals("teacher") && snapshot == null) usage("--features teacher needs --snapshot DIR (or use --features pixels)");
        if (k < 1) usage("--k must be at least 1, got " + k);
        if (!(temperature > 0) || !Double.isFinite(temperature)) usage("--temperature must be positive, got " + temperature);
        if (trainLimit != null && trainLimit < 1) usage("--train-limit must be at least 1, got " + trainLimit);
        if (testLimit != null && testLimit < 1) usage("--test-limit must be at least 1, got " + testLimit);
        if (batch < 1) usage("--batch must be at least 1, got " + batch);
        if (threads < 0) usage("--threads must be >= 0 (0: all cores), got " + threads);
    }

    /** fmnist, or an existing folder (checked further when it is opened); anything else is a usage error. */
    private boolean datasetIsFmnist() {
        if (dataset.equals(FMNIST)) return true;
        Path p = Path.of(dataset);
        if (Files.isDirectory(p)) return false;
        if (Files.exists(p)) usage("--dataset " + dataset + " is not a directory");
        boolean looksLikePath = dataset.contains("/") || dataset.contains(java.io.File.separator) || dataset.startsWith(".");
        usage(looksLikePath ? "no such directory: " + dataset : "unknown dataset '" + dataset + "' (expected fmnist or a directory)");
        return false;
    }

    private static String subsetText(Integer limit, int size) {
        return limit == null || limit >= size ? "all " + size
                : "first " + limit + " of " + size + " in numpy RandomState(" + SUBSET_SEED + ").permutation order";
    }

    /** x/255 flattened (HWC), as the reference's raw-pixel baseline; every image must have the first one's size. */
    private static float[][] pixelFeatures(Split s, int channels, PrintWriter err) throws IOException {
        Progress p = new Progress(err, s.name() + " pixels", s.size());
        float[][] out = new float[s.size()][];
        DecodedPixels first = null;
        for (int j = 0; j < s.size(); j++) {
            DecodedPixels px = s.decode(j, channels);
            if (first == null) first = px;
            else if (px.width() != first.width() || px.height() != first.height()) {
                throw new CliFailure("pixel features need images of one size: " + s.name() + " image " + s.imageName(j) + " is "
                        + px.width() + "x" + px.height() + ", the first was " + first.width() + "x" + first.height() + " (--features teacher resizes)");
            }
            out[j] = Features.pixels(px.pixels());
            p.add(1);
        }
        p.done();
        return out;
    }

    /** The teacher's embeddings, in batches of --batch images prepared with DINO's eval transform. */
    private float[][] teacherFeatures(Split s, DinoConfig cfg, TeacherInference teacher, PrintWriter err) throws IOException {
        Progress p = new Progress(err, s.name() + " features", s.size());
        try {
            float[][] out = Features.extract(teacher, s.size(), cfg.imgSize, batch,
                    (j, dst, offset) -> EmbedInput.write(s.decode(j, cfg.inChans), cfg, dst, offset), p::add);
            p.done();
            return out;
        } catch (Features.NotFiniteException e) {
            throw new CliFailure("the teacher's embedding of " + s.name() + " image " + s.imageName(e.image())
                    + " is not finite (" + e.value() + "): the snapshot's weights have diverged", e);
        }
    }

    /** Progress on stderr: a line every few seconds and one at the end, with the rate. */
    private static final class Progress {
        private final PrintWriter err;
        private final String what;
        private final int total;
        private final long t0 = System.nanoTime();
        private long last = t0;
        private int done;

        Progress(PrintWriter err, String what, int total) {
            this.err = err;
            this.what = what;
            this.total = total;
        }

        void add(int n) {
            done += n;
            long now = System.nanoTime();
            if ((now - last) / 1e9 >= PROGRESS_EVERY_S && done < total) {
                last = now;
                err.printf(Locale.ROOT, "[knn] %s: %,d/%,d (%,.0f/s)%n", what, done, total, done / ((now - t0) / 1e9));
            }
        }

        void done() {
            double s = (System.nanoTime() - t0) / 1e9;
            err.printf(Locale.ROOT, "[knn] %s: %,d in %.1f s (%,.0f/s)%n", what, done, s, done / Math.max(s, 1e-9));
        }
    }

    private void usage(String msg) {
        throw new ParameterException(spec.commandLine(), msg);
    }

    private static void printSummary(PrintWriter out, ObjectNode o) {
        out.printf(Locale.ROOT, "k-NN on %s, %s features (dim %d), k %d, T %s%n", o.get("dataset").asText(),
                o.get("features").asText(), o.get("feature_dim").asInt(), o.get("k").asInt(), o.get("temperature").asText());
        if (!o.get("snapshot").isNull()) {
            out.printf(Locale.ROOT, "  snapshot   %s (model %s, step %d, version %s)%n", o.get("snapshot").asText(),
                    o.get("model_id").asText(), o.get("step").asLong(), o.get("model_version").asText().substring(0, 12));
        }
        out.printf(Locale.ROOT, "  bank       %,d train images (%s), %d classes%n", o.get("n_train").asInt(),
                o.get("train_subset").asText(), o.get("classes").asInt());
        out.printf(Locale.ROOT, "  scored     %,d test images (%s)%n", o.get("n_test").asInt(), o.get("test_subset").asText());
        out.printf(Locale.ROOT, "  top-1      %.2f %%%n", o.get("top1").asDouble());
        out.printf(Locale.ROOT, "  top-5      %.2f %%%n", o.get("top5").asDouble());
        out.printf(Locale.ROOT, "  time       %.1f s (features %.1f s, %,.0f/s; k-NN %.1f s), load %s -> %s%n",
                o.get("seconds").asDouble(), o.get("feature_seconds").asDouble(), o.get("features_per_s").asDouble(),
                o.get("knn_seconds").asDouble(), o.get("loadavg_before"), o.get("loadavg"));
        out.flush();
    }
}
