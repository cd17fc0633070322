package dinostream.pipeline.viz;

import dinostream.model.dino.Presets;
import dinostream.model.io.DinoState;
import dinostream.pipeline.produce.FashionMnist;
import dinostream.pipeline.snapshot.Manifest;
import dinostream.pipeline.snapshot.SnapshotInfo;
import dinostream.pipeline.snapshot.SnapshotRef;
import dinostream.pipeline.snapshot.SnapshotStore;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The report of a tiny run folder: a "test" snapshot and synthetic metrics lines. */
class ReportTest {
    static final String IMG = "<img src=\"data:image/png;base64,";
    static final Pattern PICTURE = Pattern.compile("<img src=\"data:image/png;base64,([A-Za-z0-9+/=]+)\" alt=\"([^\"]*)\">"
            + "<figcaption>([^<]*)</figcaption>");
    static final List<String> CHARTS = List.of(Report.ALT_LOSS, Report.ALT_ENTROPY, Report.ALT_KL, Report.ALT_SCHEDULE);

    @TempDir
    static Path tmp;
    static Path run;
    static SnapshotRef snapshot;
    /** A folder without Fashion-MNIST: the report's samples come from the synthetic generator, on every machine. */
    static Path noFmnist;

    /** One metrics.jsonl line as the trainer writes it. */
    static String metricsLine(String model, long step, int batch) {
        double loss = Math.log(64) - 0.02 * step;
        return String.format(Locale.ROOT, "{\"time_ms\":%d,\"model_id\":\"%s\",\"step\":%d,\"images_seen\":%d,\"loss\":%s,"
                        + "\"teacher_entropy\":%s,\"kl\":%s,\"lr\":%s,\"weight_decay\":0.04,\"teacher_temp\":0.04,\"momentum\":0.996,"
                        + "\"last_layer_frozen\":%s,\"step_ms\":120.5,\"images_per_s\":%s}",
                1_700_000_000_000L + step * 500, model, step, step * batch, loss, 3.9 - 0.01 * step, 0.1 + 0.001 * step,
                1e-5 * Math.min(step, 5), step < 2, batch / 0.12);
    }

    static Path newRun(String name, int steps, boolean withSnapshot) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve(name));
        List<String> lines = new ArrayList<>();
        for (int s = 1; s <= steps; s++) lines.add(metricsLine("m", s, 16));
        Files.write(dir.resolve(Report.METRICS_FILE), lines);
        if (withSnapshot) {
            SnapshotInfo info = new SnapshotInfo(steps * 16L, Map.of(Manifest.LR, 5e-5, Manifest.WEIGHT_DECAY, 0.04,
                    Manifest.TEACHER_TEMP, 0.04, Manifest.MOMENTUM, 0.996), Map.of("loss", 4.0, "teacher_entropy", 3.8), Map.of());
            snapshot = new SnapshotStore(dir.resolve("snapshots").toUri().toString(), 5)
                    .write("m", DinoState.init(Presets.get("test"), 0), info);
        }
        return dir;
    }

    @BeforeAll
    static void setUp() throws Exception {
        run = newRun("run", 12, true);
        noFmnist = Files.createDirectories(tmp.resolve("no-fmnist"));
    }

    record Picture(String alt, String caption, BufferedImage image) {}

    static List<Picture> pictures(String html) throws Exception {
        List<Picture> out = new ArrayList<>();
        Matcher m = PICTURE.matcher(html);
        while (m.find()) {
            BufferedImage img = ImageIO.read(new ByteArrayInputStream(Base64.getDecoder().decode(m.group(1))));
            assertNotNull(img, "a PNG: " + m.group(2));
            out.add(new Picture(m.group(2), m.group(3), img));
        }
        return out;
    }

    static int count(String html, String s) {
        int n = 0;
        for (int i = html.indexOf(s); i >= 0; i = html.indexOf(s, i + 1)) n++;
        return n;
    }

    @Test
    void theReportHoldsEveryChartTheCropsTheAttentionAndTheConfiguration() throws Exception {
        Path out = tmp.resolve("out/report.html");
        Report.Written w = Report.write(run, null, out, noFmnist);
        String html = Files.readString(out, StandardCharsets.UTF_8);
        assertEquals(Files.size(out), w.bytes());
        assertEquals(snapshot.uri(), w.snapshot());

        List<Picture> pics = pictures(html);
        assertEquals(6, count(html, IMG), "4 charts, the crops, the attention maps");
        assertEquals(6, pics.size());
        assertEquals(6, w.pictures());
        List<String> alts = pics.stream().map(Picture::alt).toList();
        assertEquals(List.of(Report.ALT_LOSS, Report.ALT_ENTROPY, Report.ALT_KL, Report.ALT_SCHEDULE, Report.ALT_CROPS,
                Report.ALT_ATTENTION), alts);
        for (Picture p : pics) assertFalse(p.caption().isBlank(), "caption of " + p.alt());
        for (Picture p : pics.subList(0, 4)) {
            assertEquals(ReportCharts.WIDTH, p.image().getWidth());
            assertEquals(ReportCharts.HEIGHT, p.image().getHeight());
        }
        assertTrue(pics.get(0).caption().contains("ln K"), pics.get(0).caption());
        assertFalse(alts.contains(Report.ALT_PROBE), "no probe.jsonl, no k-NN chart");
        assertTrue(w.notes().stream().anyMatch(n -> n.contains("no probe.jsonl")), w.notes().toString());

        // Crops: one row per sample image, one column for the image and one per view (2 global + 2 local).
        BufferedImage crops = pics.get(4).image();
        int cell = 16 * 7;   // 112 / 16 = 7x
        assertEquals(ReportImages.GAP + 5 * (cell + ReportImages.GAP), crops.getWidth());
        assertEquals(ReportImages.HEADER + ReportImages.GAP + Report.SAMPLE_IMAGES * (cell + ReportImages.GAP), crops.getHeight());
        assertTrue(pics.get(4).caption().contains("synthetic"), pics.get(4).caption());
        // Attention: one row per sample image, the image and 2 heads.
        BufferedImage att = pics.get(5).image();
        int[] size = AttentionFigure.size(Report.SAMPLE_IMAGES, 2, 16, 16);
        assertEquals(size[0], att.getWidth());
        assertEquals(size[1], att.getHeight());

        // The configuration table: the snapshot, its hyperparameters and the whole model configuration.
        assertTrue(html.contains("<h2 id=\"config\">Configuration</h2>"));
        for (String s : List.of("<th>model version</th><td>" + snapshot.modelVersion() + "</td>", "<th>preset</th><td>test</td>",
                "<th>out_dim</th><td>64</td>", "<th>img_size</th><td>16</td>", "<th>heads</th><td>2</td>",
                "<th>lr</th><td>5.000e-05</td>", "<th>momentum</th><td>0.996</td>", "<th>step</th><td>0</td>",
                "<th>images seen</th><td>192</td>", "<th>teacher_entropy</th><td>3.8</td>")) {
            assertTrue(html.contains(s), "missing " + s);
        }
        assertTrue(html.contains("<th>steps recorded</th><td>12 (last step 12)</td>"), "run summary");
        assertFalse(html.contains("<script"), "self-contained, no scripts");
        for (String remote : List.of("src=\"http", "href=\"http", "src=\"//", "url(")) {
            assertFalse(html.contains(remote), "nothing fetched from elsewhere: " + remote);
        }
    }

    @Test
    void aProbeFileAddsTheKnnChart() throws Exception {
        Path dir = newRun("with-probe", 8, true);
        Files.write(dir.resolve(Report.PROBE_FILE), List.of(
                "{\"time_ms\":1,\"model_id\":\"m\",\"step\":4,\"images_seen\":64,\"top1\":31.5}",
                "{\"time_ms\":2,\"model_id\":\"m\",\"step\":8,\"images_seen\":128,\"top1\":42.0}"));
        Report.Written w = Report.write(dir, null, dir.resolve("r.html"), noFmnist);
        String html = Files.readString(dir.resolve("r.html"));
        assertEquals(7, count(html, IMG));
        assertEquals(7, w.pictures());
        assertTrue(pictures(html).stream().anyMatch(p -> p.alt().equals(Report.ALT_PROBE)));
    }

    @Test
    void withoutASnapshotTheChartsStayAndThePageSaysWhatIsMissing() throws Exception {
        Path dir = newRun("no-snapshot", 5, false);
        Report.Written w = Report.write(dir, dir.resolve("r.html"));
        String html = Files.readString(dir.resolve("r.html"));
        assertEquals(4, count(html, IMG));
        assertEquals(CHARTS, pictures(html).stream().map(Picture::alt).toList());
        assertNull(w.snapshot());
        assertTrue(html.contains("No snapshot yet"), "says why crops and attention are missing");
        assertTrue(w.notes().stream().anyMatch(n -> n.contains("no complete snapshot")), w.notes().toString());
    }

    @Test
    void fashionMnistSamplesWhenInstalled() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(FashionMnist.available(FashionMnist.DEFAULT_DIR, FashionMnist.Split.TEST),
                "Fashion-MNIST not installed");
        Path out = tmp.resolve("fmnist.html");
        Report.write(run, out);
        List<Picture> pics = pictures(Files.readString(out));
        assertTrue(pics.get(4).caption().contains("Fashion-MNIST test split"), pics.get(4).caption());
    }

    @Test
    void emptyAndDamagedHistories() throws Exception {
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        Files.writeString(empty.resolve(Report.METRICS_FILE), "");
        Report.Written w = Report.write(empty, empty.resolve("r.html"));
        assertEquals(0, w.pictures());
        assertTrue(Files.readString(empty.resolve("r.html")).contains("No train step recorded"));

        // A line cut short by a crash is skipped and noted; the rest is charted.
        Path cut = newRun("cut", 6, false);
        Files.writeString(cut.resolve(Report.METRICS_FILE), "{\"step\":7,\"model_id\":\"m\",\"loss\":", java.nio.file.StandardOpenOption.APPEND);
        w = Report.write(cut, cut.resolve("r.html"));
        assertEquals(4, w.pictures());
        assertTrue(w.notes().stream().anyMatch(n -> n.startsWith("1 unreadable line")), w.notes().toString());

        Path garbage = Files.createDirectories(tmp.resolve("garbage"));
        Files.writeString(garbage.resolve(Report.METRICS_FILE), "not json\nnor this\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Report.write(garbage, garbage.resolve("r.html")));
        assertTrue(e.getMessage().contains("none is a metrics record"), e.getMessage());
    }

    @Test
    void aRunFolderWithoutMetricsIsAnError() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("no-metrics"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Report.write(dir, dir.resolve("r.html")));
        assertTrue(e.getMessage().contains("has no metrics.jsonl"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Report.write(tmp.resolve("nowhere"), tmp.resolve("r.html")));
        assertTrue(e.getMessage().startsWith("no such run folder"), e.getMessage());
        assertFalse(Files.exists(tmp.resolve("r.html")));
    }

    @Test
    void metricsReadNonFiniteValuesAndThinLongHistories() throws Exception {
        Path f = tmp.resolve("m.jsonl");
        List<String> lines = new ArrayList<>();
        for (int s = 3000; s >= 1; s--) {   // out of order, as after a restore
            lines.add("{\"model_id\":\"a\",\"step\":" + s + ",\"images_seen\":" + s * 2 + ",\"loss\":" + (s == 5 ? "\"NaN\"" : s) + "}");
        }
        lines.add("{\"model_id\":\"b\",\"step\":1,\"images_seen\":2}");
        Files.write(f, lines);
        ReportMetrics.Read r = ReportMetrics.read(f, List.of("step", "images_seen", "loss"));
        assertEquals(3001, r.rows());
        assertEquals(List.of("a", "b"), r.models().stream().map(ReportMetrics.History::modelId).toList());
        ReportMetrics.History a = r.models().get(0);
        assertEquals(2.0, a.column("images_seen")[0], "sorted by images seen");
        assertTrue(Double.isNaN(a.column("loss")[4]), "\"NaN\" reads as NaN");
        assertTrue(Double.isNaN(r.models().get(1).column("loss")[0]), "a missing field reads as NaN");
        double[][] thin = ReportMetrics.downsample(a.column("images_seen"), a.column("loss"));
        assertEquals(ReportMetrics.MAX_POINTS, thin[0].length);
        assertEquals(6000, thin[0][thin[0].length - 1], "ends at the last point");
        assertEquals(1.5, thin[1][0], 1e-12, "bucket mean of 1 and 2");
        assertEquals(6, thin[1][2], 1e-12, "the NaN (step 5) is left out of its bucket's mean (steps 5 and 6)");
    }
}
