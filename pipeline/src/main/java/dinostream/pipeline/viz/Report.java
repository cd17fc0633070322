package dinostream.pipeline.viz;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.model.dino.DinoConfig;
import dinostream.model.runtime.RuntimeOptions;
import dinostream.pipeline.produce.FashionMnist;
import dinostream.pipeline.records.DecodedImage;
import dinostream.pipeline.snapshot.Manifest;
import dinostream.pipeline.snapshot.Snapshot;
import dinostream.pipeline.snapshot.SnapshotRef;
import dinostream.pipeline.snapshot.SnapshotStore;
import org.apache.flink.core.fs.FileStatus;
import org.apache.flink.core.fs.FileSystem;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.stream.Collectors;

/**
 * The report of a run folder ({@code --out} of {@code demo} and {@code train}): one self-contained
 * HTML file, every picture a PNG inside it as a {@code data:} URI, so it can be mailed or archived
 * as it is.
 *
 * <ul>
 *   <li>Training curves from {@code metrics.jsonl} over the images seen (JFreeChart): loss and
 *       teacher entropy with ln K (the loss of a uniform prediction and the largest entropy: a run
 *       stuck on that line has collapsed), student–teacher KL, learning rate with EMA momentum,
 *       and the k-NN probe's top-1 when {@code probe.jsonl} exists.</li>
 *   <li>The multi-crop views of a few sample images as the augmentation makes them for the run's
 *       configuration.</li>
 *   <li>The attention maps of the newest snapshot's teacher on the same images.</li>
 *   <li>The configuration, hyperparameters and metrics of that snapshot.</li>
 * </ul>
 *
 * <p>The parts that need a snapshot (configuration, crops, attention) say so in the page when the
 * run has none yet; only a missing run folder or {@code metrics.jsonl} is an error.
 */
public final class Report {
    private Report() {}

    public static final String METRICS_FILE = "metrics.jsonl";
    public static final String PROBE_FILE = "probe.jsonl";
    public static final String CHECKPOINTS_FILE = "checkpoints.jsonl";
    /** Where {@code dinostream report} writes without {@code --out}: inside the run folder. */
    public static final String DEFAULT_FILE = "report.html";
    /** The run folder's snapshot base when the job was not given another one. */
    public static final String SNAPSHOTS_DIR = "snapshots";

    static final int SAMPLE_IMAGES = 4;
    /** The trainer's default {@code --seed}: the crops shown are those a default run draws for the sample ids. */
    static final long CROP_SEED = 0;

    static final List<String> METRIC_COLUMNS = List.of("step", "images_seen", "loss", "teacher_entropy", "kl", "lr",
            "weight_decay", "teacher_temp", "momentum", "last_layer_frozen", "step_ms", "images_per_s");
    static final List<String> PROBE_COLUMNS = List.of("step", "images_seen", "top1");
    static final List<String> CHECKPOINT_COLUMNS = List.of("step", "state_bytes", "write_behind_ms");

    /** Alt texts of the pictures, also their identity in tests. */
    static final String ALT_LOSS = "loss chart", ALT_ENTROPY = "teacher entropy chart", ALT_KL = "KL chart",
            ALT_SCHEDULE = "learning rate and momentum chart", ALT_PROBE = "k-NN accuracy chart",
            ALT_CROPS = "multi-crop views", ALT_ATTENTION = "attention maps";

    /**
     * What was written.
     *
     * @param pictures the number of embedded PNGs
     * @param snapshot the snapshot used for configuration, crops and attention, or null
     * @param notes    parts left out and why (no snapshot yet, no probe, unreadable lines)
     */
    public record Written(Path file, long bytes, int pictures, String snapshot, List<String> notes) {}

    /** The report of {@code runDir}, its snapshots looked up under {@code runDir/snapshots}. */
    public static Written write(Path runDir, Path outFile) throws IOException {
        return write(runDir, null, outFile);
    }

    /**
     * The report of {@code runDir} with its snapshots under {@code snapshotDir} (a path or Flink
     * file system URI, as {@code train --snapshot-dir}; null for {@code runDir/snapshots}),
     * written to {@code outFile} atomically (a browser never sees half a file).
     *
     * @throws IllegalArgumentException when {@code runDir} is not a folder or has no {@code metrics.jsonl}
     */
    public static Written write(Path runDir, String snapshotDir, Path outFile) throws IOException {
        return write(runDir, snapshotDir, outFile, FashionMnist.DEFAULT_DIR);
    }

    /** As {@link #write(Path, String, Path)}, sample images from Fashion-MNIST in {@code fmnistDir} when it is there. */
    static Written write(Path runDir, String snapshotDir, Path outFile, Path fmnistDir) throws IOException {
        Png.headless();
        if (!Files.isDirectory(runDir)) {
            throw new IllegalArgumentException(Files.exists(runDir) ? runDir + " is not a folder (expected a run folder: the --out of demo or train)"
                    : "no such run folder: " + runDir);
        }
        Path metricsFile = runDir.resolve(METRICS_FILE);
        if (!Files.isRegularFile(metricsFile)) {
            throw new IllegalArgumentException("run folder " + runDir + " has no " + METRICS_FILE
                    + " (the --out folder of demo or train has one once the first train step is done)");
        }
        List<String> notes = new ArrayList<>();
        ReportMetrics.Read metrics = ReportMetrics.read(metricsFile, METRIC_COLUMNS);
        if (metrics.skipped() > 0) notes.add(metrics.skipped() + " unreadable line(s) of " + METRICS_FILE + " skipped");
        Path probeFile = runDir.resolve(PROBE_FILE);
        ReportMetrics.Read probe = null;
        if (Files.isRegularFile(probeFile)) {
            probe = ReportMetrics.read(probeFile, PROBE_COLUMNS);
            if (probe.skipped() > 0) notes.add(probe.skipped() + " unreadable line(s) of " + PROBE_FILE + " skipped");
        } else {
            notes.add("no " + PROBE_FILE + " in the run folder: no k-NN accuracy chart");
        }
        ReportMetrics.Read checkpoints = null;
        if (Files.isRegularFile(runDir.resolve(CHECKPOINTS_FILE))) {
            try {
                checkpoints = ReportMetrics.read(runDir.resolve(CHECKPOINTS_FILE), CHECKPOINT_COLUMNS);
            } catch (IllegalArgumentException e) {
                notes.add(e.getMessage());   // only a summary line depends on it
            }
        }

        String base = snapshotDir != null ? snapshotDir : runDir.resolve(SNAPSHOTS_DIR).toAbsolutePath().toUri().toString();
        Snapshot snap = null;
        SnapshotRef ref = null;
        try {
            ref = newestSnapshot(base, metrics.models().stream().map(ReportMetrics.History::modelId).collect(Collectors.toSet())).orElse(null);
            if (ref == null) notes.add("no complete snapshot under " + base + " yet: no configuration, crops or attention maps");
            else snap = SnapshotStore.load(ref.uri());
        } catch (IOException | RuntimeException e) {
            notes.add("the snapshot " + (ref != null ? ref.uri() : "under " + base) + " could not be read: " + e.getMessage());
            snap = null;
        }

        Html h = new Html();
        h.head("dinostream report \u2014 " + runDir.toAbsolutePath().normalize().getFileName());
        h.raw("<h1>dinostream run report</h1>\n");
        h.raw("<p class=\"sub\">").text(runDir.toAbsolutePath().normalize().toString()).raw(" \u00b7 written ")
                .text(DateTimeFormatter.ISO_INSTANT.format(Instant.now().truncatedTo(java.time.temporal.ChronoUnit.SECONDS))).raw("</p>\n");
        h.raw("<nav><a href=\"#training\">Training</a> \u00b7 <a href=\"#crops\">Augmentation</a> \u00b7 "
                + "<a href=\"#attention\">Attention</a> \u00b7 <a href=\"#config\">Configuration</a></nav>\n");
        runSummary(h, metrics, checkpoints, snap);

        DinoConfig cfg = snap != null ? snap.manifest().dinoConfig() : null;
        h.raw("<h2 id=\"training\">Training</h2>\n");
        charts(h, metrics, probe, cfg);

        h.raw("<h2 id=\"crops\">Augmentation</h2>\n");
        ReportImages.Samples samples = cfg != null ? ReportImages.samples(cfg, SAMPLE_IMAGES, fmnistDir) : null;
        if (cfg == null) {
            h.note("No snapshot yet: the crops depend on the run's configuration, which the first snapshot records.");
        } else {
            int f = Math.max(1, Math.round((float) ReportImages.GLOBAL_DISPLAY / cfg.imgSize));
            h.figure(Png.encode(ReportImages.cropsGrid(cfg, samples, CROP_SEED)), ALT_CROPS, String.format(Locale.ROOT,
                    "DINO's multi-crop views of %d images (%s) as the augmentation makes them for this configuration: "
                            + "2 global views of %d px and %d local views of %d px (seed %d, as a run with --seed %d draws them "
                            + "for these image ids), enlarged %d\u00d7 with nearest-neighbour.",
                    samples.images().size(), samples.source(), cfg.imgSize, cfg.nLocal, cfg.localSize, CROP_SEED, CROP_SEED, f), "wide");
        }

        h.raw("<h2 id=\"attention\">Attention</h2>\n");
        if (snap == null) {
            h.note("No snapshot yet: attention maps need a teacher.");
        } else {
            attention(h, snap, samples);
        }

        h.raw("<h2 id=\"config\">Configuration</h2>\n");
        if (snap == null) h.note("No snapshot yet: the configuration is recorded in each snapshot's manifest.");
        else configTables(h, snap.manifest(), ref.uri());

        if (!notes.isEmpty()) {
            h.raw("<h2 id=\"notes\">Notes</h2>\n<ul class=\"notes\">\n");
            for (String n : notes) h.raw("<li>").text(n).raw("</li>\n");
            h.raw("</ul>\n");
        }
        h.raw("</body>\n</html>\n");

        byte[] bytes = h.toString().getBytes(StandardCharsets.UTF_8);
        writeAtomically(outFile, bytes);
        return new Written(outFile, bytes.length, h.pictures, ref != null && snap != null ? ref.uri() : null, List.copyOf(notes));
    }

    // ------------------------------------------------------------------ sections

    private static void runSummary(Html h, ReportMetrics.Read m, ReportMetrics.Read checkpoints, Snapshot snap) {
        Map<String, String> rows = new LinkedHashMap<>();
        if (m.empty()) {
            rows.put("train steps", "none recorded yet");
        } else {
            for (ReportMetrics.History hist : m.models()) {
                String who = m.models().size() > 1 ? " (" + hist.modelId() + ")" : "";
                rows.put("model" + who, hist.modelId().isEmpty() ? "(unnamed)" : hist.modelId());
                rows.put("steps recorded" + who, String.format(Locale.ROOT, "%,d (last step %,d)", hist.size(), (long) hist.last("step")));
                rows.put("images seen" + who, String.format(Locale.ROOT, "%,d", (long) hist.last("images_seen")));
                rows.put("last loss / teacher entropy / KL" + who, String.format(Locale.ROOT, "%s / %s / %s",
                        num(hist.last("loss")), num(hist.last("teacher_entropy")), num(hist.last("kl"))));
                rows.put("train throughput" + who, String.format(Locale.ROOT, "%s images/s (median over steps), %s ms per step",
                        num(ReportMetrics.median(hist.column("images_per_s"))), num(ReportMetrics.median(hist.column("step_ms")))));
            }
            Duration span = Duration.ofMillis(Math.max(0, m.lastTimeMs() - m.firstTimeMs()));
            rows.put("first to last step", String.format(Locale.ROOT, "%s \u2192 %s (%s)",
                    time(m.firstTimeMs()), time(m.lastTimeMs()), human(span)));
        }
        if (checkpoints != null && !checkpoints.empty()) {
            double[] bytes = checkpoints.models().stream().flatMapToDouble(x -> java.util.Arrays.stream(x.column("state_bytes"))).toArray();
            double[] ms = checkpoints.models().stream().flatMapToDouble(x -> java.util.Arrays.stream(x.column("write_behind_ms"))).toArray();
            rows.put("checkpoints", String.format(Locale.ROOT, "%,d; model state %s MB, written behind in %s ms (medians)",
                    checkpoints.rows(), num(ReportMetrics.median(bytes) / 1e6), num(ReportMetrics.median(ms))));
        }
        if (snap != null) {
            Manifest mf = snap.manifest();
            rows.put("newest snapshot", String.format(Locale.ROOT, "step %,d, %,d images seen, model version %s",
                    mf.step(), mf.imagesSeen(), mf.modelVersion().substring(0, 12)));
        }
        h.table("summary", rows);
    }

    private static void charts(Html h, ReportMetrics.Read m, ReportMetrics.Read probe, DinoConfig cfg) {
        if (m.empty()) {
            h.note("No train step recorded in " + METRICS_FILE + " yet: no charts.");
            return;
        }
        ReportCharts.Reference lnK = cfg == null ? null : new ReportCharts.Reference(Math.log(cfg.outDim), ReportCharts.lnK(cfg.outDim));
        String kNote = cfg == null ? " (no snapshot: K, hence ln K, unknown)" : "";
        h.raw("<div class=\"charts\">\n");
        h.figure(ReportCharts.png("DINO loss", "loss", curves(m, "loss"), lnK, null, null), ALT_LOSS,
                "Cross-entropy between the teacher's and the student's outputs, per train step. The dashed line is ln K, "
                        + "the loss of a uniform student: a run that settles on it has collapsed" + kNote + ".", null);
        h.figure(ReportCharts.png("Teacher entropy", "entropy (nats)", curves(m, "teacher_entropy"), lnK, null, null), ALT_ENTROPY,
                "Entropy of the teacher's centred, sharpened output. Pinned at ln K: collapse to uniform; "
                        + "pinned at 0: collapse to one dimension" + kNote + ".", null);
        h.figure(ReportCharts.png("Student\u2013teacher KL", "KL (nats)", curves(m, "kl"), null, null, null), ALT_KL,
                "KL divergence of the student's from the teacher's distribution: near 0 for long means nothing is left to learn, "
                        + "or both have collapsed alike.", null);
        h.figure(ReportCharts.png("Learning rate and EMA momentum", "learning rate", curves(m, "lr", "learning rate"), null,
                "teacher momentum", curves(m, "momentum", "momentum"), 1.0), ALT_SCHEDULE, "The schedules as applied at each step: learning rate (left axis) and the "
                + "teacher's EMA momentum (right axis).", null);
        if (probe != null && !probe.empty()) {
            List<ReportCharts.Curve> top1 = new ArrayList<>();
            boolean fraction = probe.models().stream().allMatch(x -> java.util.Arrays.stream(x.column("top1")).filter(Double::isFinite).allMatch(v -> v <= 1));
            for (ReportMetrics.History x : probe.models()) {
                double[] y = x.column("top1").clone();
                // k-NN accuracy is printed in percent (as DINO does); a file of fractions is shown in percent too.
                if (fraction) for (int i = 0; i < y.length; i++) y[i] *= 100;
                top1.add(new ReportCharts.Curve(label(x), x.column("images_seen"), y));
            }
            h.figure(ReportCharts.png("k-NN top-1 (online probe)", "top-1 (%)", top1, null, null, null), ALT_PROBE,
                    "Weighted k-NN accuracy of the current teacher on the labelled probe set, over the images seen.", null);
        }
        h.raw("</div>\n");
    }

    private static List<ReportCharts.Curve> curves(ReportMetrics.Read m, String column) {
        return curves(m, column, null);
    }

    /** One curve per model; with {@code what}, legend entries name the quantity (and the model when there are several). */
    private static List<ReportCharts.Curve> curves(ReportMetrics.Read m, String column, String what) {
        List<ReportCharts.Curve> out = new ArrayList<>();
        for (ReportMetrics.History x : m.models()) {
            String name = what == null ? label(x) : m.models().size() == 1 ? what : what + " (" + label(x) + ")";
            out.add(new ReportCharts.Curve(name, x.column("images_seen"), x.column(column)));
        }
        return out;
    }

    private static String label(ReportMetrics.History x) {
        return x.modelId().isEmpty() ? "(unnamed)" : x.modelId();
    }

    private static void attention(Html h, Snapshot snap, ReportImages.Samples samples) {
        List<Attention.Maps> maps = new ArrayList<>();
        // One thread: a handful of small images, and the machine may still be busy with the job's shutdown.
        try (Attention a = new Attention(snap.state(), RuntimeOptions.cpu().withThreads(1))) {
            for (DecodedImage img : samples.images()) maps.add(a.run(img, null));
        }
        Attention.Maps first = maps.get(0);
        int patches = first.gridH() * first.gridW();
        Manifest m = snap.manifest();
        h.figure(Png.encode(AttentionFigure.render(maps, samples.names(), AttentionFigure.Upsample.BILINEAR)), ALT_ATTENTION,
                String.format(Locale.ROOT, "The teacher at step %,d (%,d images seen, model version %s): its last block's CLS "
                                + "attention per head over the %d\u00d7%d patches (CLS column dropped), upsampled bilinearly and "
                                + "overlaid on the image; each head scaled to its own range. 'max' is the largest share of "
                                + "attention on one patch (uniform: 1/%d = %.3g). Images: %s.",
                        m.step(), m.imagesSeen(), m.modelVersion().substring(0, 12), first.gridW(), first.gridH(), patches,
                        1.0 / patches, samples.source()), "wide");
    }

    private static void configTables(Html h, Manifest m, String uri) {
        Map<String, String> snap = new LinkedHashMap<>();
        snap.put("snapshot", uri);
        snap.put("model id", m.modelId());
        snap.put("step", String.format(Locale.ROOT, "%,d", m.step()));
        snap.put("images seen", String.format(Locale.ROOT, "%,d", m.imagesSeen()));
        snap.put("model version", m.modelVersion());
        snap.put("created", DateTimeFormatter.ISO_INSTANT.format(m.created().truncatedTo(java.time.temporal.ChronoUnit.SECONDS)));
        snap.put("preset", m.preset() == null ? "(custom configuration)" : m.preset());
        if (!m.kafkaOffsets().isEmpty()) {
            snap.put("Kafka offsets", m.kafkaOffsets().entrySet().stream().map(e -> e.getKey() + ": " + e.getValue())
                    .collect(Collectors.joining(", ")));
        }
        h.raw("<div class=\"tables\">\n<div>\n<h3>Snapshot</h3>\n");
        h.table("config", snap);
        Map<String, String> hyper = new LinkedHashMap<>();
        m.hyperparameters().forEach((k, v) -> hyper.put(k, num(v)));
        h.raw("<h3>Hyperparameters at that step</h3>\n");
        if (hyper.isEmpty()) h.note("none recorded");
        else h.table("config", hyper);
        Map<String, String> metrics = new LinkedHashMap<>();
        m.metrics().forEach((k, v) -> metrics.put(k, num(v)));
        h.raw("<h3>Metrics at that step</h3>\n");
        if (metrics.isEmpty()) h.note("none recorded");
        else h.table("config", metrics);
        h.raw("</div>\n<div>\n<h3>Model and training configuration</h3>\n");
        Map<String, String> cfg = new LinkedHashMap<>();
        ObjectNode c = m.config();
        for (Map.Entry<String, JsonNode> e : c.properties()) {
            JsonNode v = e.getValue();
            cfg.put(e.getKey(), v.isTextual() ? v.textValue() : v.toString());
        }
        h.table("config", cfg);
        h.raw("</div>\n</div>\n");
    }

    // ------------------------------------------------------------------ snapshots

    /**
     * The newest complete snapshot under {@code base}: among the models of the metrics when any of
     * them has one (a shared snapshot folder may hold other runs' models), the latest created.
     */
    static Optional<SnapshotRef> newestSnapshot(String base, Set<String> runModels) throws IOException {
        SnapshotStore store = new SnapshotStore(base);
        org.apache.flink.core.fs.Path dir = new org.apache.flink.core.fs.Path(store.baseUri());
        FileSystem fs = dir.getFileSystem();
        if (!fs.exists(dir)) return Optional.empty();
        FileStatus[] entries = fs.listStatus(dir);
        List<SnapshotRef> latest = new ArrayList<>();
        if (entries != null) {
            for (FileStatus s : entries) {
                String name = s.getPath().getName();
                if (!s.isDir() || !Manifest.MODEL_ID.matcher(name).matches()) continue;
                store.latest(name).ifPresent(latest::add);
            }
        }
        List<SnapshotRef> ofRun = latest.stream().filter(r -> runModels.contains(r.manifest().modelId())).toList();
        List<SnapshotRef> pool = ofRun.isEmpty() ? latest : ofRun;
        return pool.stream().max(Comparator.comparing((SnapshotRef r) -> r.manifest().created()).thenComparingLong(SnapshotRef::step));
    }

    // ------------------------------------------------------------------ output

    private static void writeAtomically(Path target, byte[] bytes) throws IOException {
        Path abs = target.toAbsolutePath();
        Files.createDirectories(abs.getParent());
        // Not createTempFile: its owner-only permissions would stay with the report after the rename.
        Path tmp = abs.resolveSibling("." + abs.getFileName() + "." + UUID.randomUUID() + ".tmp");
        try {
            Files.write(tmp, bytes);
            try {
                Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    static String num(double v) {
        if (Double.isNaN(v)) return "n/a";
        if (Double.isInfinite(v)) return v > 0 ? "\u221e" : "-\u221e";
        if (v == Math.rint(v) && Math.abs(v) < 1e15) return String.format(Locale.ROOT, "%,d", (long) v);
        double a = Math.abs(v);
        if (a >= 1e-3 && a < 1e6) return String.format(Locale.ROOT, "%.4g", v).replaceAll("(\\.\\d*?)0+$", "$1").replaceAll("\\.$", "");
        return String.format(Locale.ROOT, "%.3e", v);
    }

    private static String time(long ms) {
        return DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss 'UTC'", Locale.ROOT).withZone(ZoneOffset.UTC).format(Instant.ofEpochMilli(ms));
    }

    private static String human(Duration d) {
        long s = d.toSeconds();
        if (s < 120) return s + " s";
        if (s < 7200) return String.format(Locale.ROOT, "%d min %d s", s / 60, s % 60);
        return String.format(Locale.ROOT, "%d h %d min", s / 3600, (s % 3600) / 60);
    }

    /** A small HTML writer: everything from data goes through {@link #text}, which escapes it. */
    private static final class Html {
        private final StringBuilder b = new StringBuilder(1 << 16);
        int pictures;

        void head(String title) {
            raw("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>").text(title).raw("</title>\n<style>\n")
                    .raw(CSS).raw("</style>\n</head>\n<body>\n");
        }

        Html raw(String s) {
            b.append(s);
            return this;
        }

        Html text(String s) {
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '<' -> b.append("&lt;");
                    case '>' -> b.append("&gt;");
                    case '&' -> b.append("&amp;");
                    case '"' -> b.append("&quot;");
                    case '\'' -> b.append("&#39;");
                    default -> b.append(c);
                }
            }
            return this;
        }

        void note(String s) {
            raw("<p class=\"note\">").text(s).raw("</p>\n");
        }

        /** A PNG with its alt text and caption; {@code cls} a CSS class (e.g. "wide") or null. */
        void figure(byte[] png, String alt, String caption, String cls) {
            raw(cls == null ? "<figure>" : "<figure class=\"" + cls + "\">");
            raw("<img src=\"").raw(Png.dataUri(png)).raw("\" alt=\"").text(alt).raw("\">");
            raw("<figcaption>").text(caption).raw("</figcaption></figure>\n");
            pictures++;
        }

        void table(String cls, Map<String, String> rows) {
            raw("<table class=\"" + cls + "\">\n");
            rows.forEach((k, v) -> raw("<tr><th>").text(k).raw("</th><td>").text(v).raw("</td></tr>\n"));
            raw("</table>\n");
        }

        @Override
        public String toString() {
            return b.toString();
        }
    }

    private static final String CSS = """
            body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: #222; margin: 24px auto; max-width: 1180px; padding: 0 16px; line-height: 1.4; }
            h1 { font-size: 24px; margin: 0 0 4px; }
            h2 { font-size: 19px; margin: 28px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
            h3 { font-size: 15px; margin: 16px 0 6px; }
            .sub { color: #666; margin: 0 0 8px; font-size: 13px; overflow-wrap: anywhere; }
            nav { font-size: 14px; margin-bottom: 12px; }
            nav a { color: #1f77b4; text-decoration: none; }
            .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 16px; }
            figure { margin: 0; }
            figure img { display: block; max-width: 100%; height: auto; border: 1px solid #eee; }
            figcaption { font-size: 13px; color: #555; margin-top: 4px; max-width: 560px; }
            figure.wide figcaption { max-width: 900px; }
            table { border-collapse: collapse; font-size: 13px; margin-bottom: 8px; }
            th, td { text-align: left; padding: 3px 10px 3px 0; border-bottom: 1px solid #eee; vertical-align: top; }
            th { font-weight: 600; white-space: nowrap; }
            table.config td { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; overflow-wrap: anywhere; }
            .tables { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 24px; }
            .tables table { width: 100%; }
            .tables th { width: 1%; padding-right: 16px; }
            .note { color: #8a5a00; background: #fff8e6; border: 1px solid #f0dca8; padding: 6px 10px; font-size: 13px; }
            ul.notes { font-size: 13px; color: #555; }
            """;
}
