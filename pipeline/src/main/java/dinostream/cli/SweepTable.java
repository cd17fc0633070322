package dinostream.cli;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/** DIR/sweep.md: the sweep's results as a Markdown table, one row per setting, rewritten after each run. */
final class SweepTable {
    private SweepTable() {}

    static final String FILE = "sweep.md";

    static String markdown(SweepGrid grid, long images, List<Long> seeds, SweepLedger ledger, String commandLine) {
        StringBuilder b = new StringBuilder();
        b.append("# Sweep\n\n");
        b.append("```\n").append(commandLine).append("\n```\n\n");
        b.append(String.format(Locale.ROOT, "Each run: `dinostream demo %s <setting> --images %d --seed S --no-embed`, "
                + "then `dinostream knn` of its last snapshot (k-NN top-1 %%, teacher features).%n%n", CommandLineText.of(grid.base()), images));
        b.append("| setting | options | k-NN top-1 (mean) | per seed | top-5 (mean) | images/s | train img/s | wall s | step |\n");
        b.append("|---|---|---:|---|---:|---:|---:|---:|---:|\n");
        for (SweepGrid.Run r : grid.runs()) {
            List<Double> top1 = new ArrayList<>(), top5 = new ArrayList<>(), rate = new ArrayList<>(), trainRate = new ArrayList<>(), wall = new ArrayList<>();
            List<String> perSeed = new ArrayList<>();
            long step = -1;
            for (long s : seeds) {
                Optional<JsonNode> line = ledger.latest(r.name(), s);
                if (line.isEmpty()) {
                    perSeed.add("s" + s + " —");
                    continue;
                }
                JsonNode n = line.get();
                if (!n.path("ok").asBoolean()) {
                    String failed = n.path("failed").asText();
                    perSeed.add("s" + s + (failed.equals("budget") ? " stopped early" : " " + failed + " failed (rc " + n.path("exit_code").asInt() + ")"));
                    continue;
                }
                top1.add(n.path("knn_top1").asDouble());
                top5.add(n.path("knn_top5").asDouble());
                rate.add(n.path("images_per_s").asDouble());
                if (n.has("train_images_per_s")) trainRate.add(n.path("train_images_per_s").asDouble());
                wall.add(n.path("wall_s").asDouble());
                step = Math.max(step, n.path("final_step").asLong());
                perSeed.add(String.format(Locale.ROOT, "s%d %.2f", s, n.path("knn_top1").asDouble()));
            }
            b.append("| ").append(r.name())
                    .append(" | ").append(r.args().isEmpty() ? "(base)" : "`" + CommandLineText.of(r.args()) + "`")
                    .append(" | ").append(top1.isEmpty() ? "" : String.format(Locale.ROOT, "**%.2f**", mean(top1)))
                    .append(" | ").append(String.join(", ", perSeed))
                    .append(" | ").append(top5.isEmpty() ? "" : String.format(Locale.ROOT, "%.2f", mean(top5)))
                    .append(" | ").append(rate.isEmpty() ? "" : String.format(Locale.ROOT, "%.1f", mean(rate)))
                    .append(" | ").append(trainRate.isEmpty() ? "" : String.format(Locale.ROOT, "%.1f", mean(trainRate)))
                    .append(" | ").append(wall.isEmpty() ? "" : String.format(Locale.ROOT, "%.0f", mean(wall)))
                    .append(" | ").append(step < 0 ? "" : Long.toString(step))
                    .append(" |\n");
        }
        b.append("\nimages/s: images trained per second of the demo's wall time (Kafka and job start included); train img/s: "
                + "the trainer's own rate at its last metrics line; wall s: the demo's; "
                + "per-run details, the probe curve and the load averages are in sweep.jsonl.\n");
        return b.toString();
    }

    private static double mean(List<Double> xs) {
        double s = 0;
        for (double x : xs) s += x;
        return s / xs.size();
    }
}
