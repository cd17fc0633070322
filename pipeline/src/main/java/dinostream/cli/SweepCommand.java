package dinostream.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.pipeline.snapshot.SnapshotRef;
import dinostream.pipeline.snapshot.SnapshotStore;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.Callable;

@Command(name = "sweep", mixinStandardHelpOptions = true,
        description = {"A measured sweep of training settings: for each run of a grid file and each seed, a child `dinostream demo`",
                "trains on a fixed budget of fresh images (--images, --no-embed), then `dinostream knn` scores its last snapshot",
                "(k 20, T 0.07; all 60k train images as the bank and the 10k test images by default).",
                "DIR/sweep.jsonl gets one line per run, DIR/sweep.md the table. Runs already in sweep.jsonl are skipped: run the same",
                "command again to resume. A run that fails is recorded (exit code, the end of its stderr) and the sweep goes on."})
final class SweepCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--grid", paramLabel = "GRID.json", required = true,
            description = {"{\"base\": [demo options of every run], \"images\": N, \"runs\": [{\"name\": N, \"args\": [options]}, ...]}",
                    "and/or \"axes\": {\"--option\": [values]}: one run per value around the base, plus a run named base."})
    Path grid;

    @Option(names = "--out", paramLabel = "DIR", required = true, description = "The sweep folder: sweep.jsonl, sweep.md, a run folder per run and seed, logs/.")
    Path out;

    @Option(names = "--images", paramLabel = "N", description = "Images each run trains on (default: the grid's \"images\").")
    Long images;

    @Option(names = "--seeds", paramLabel = "S,S,...", split = ",", defaultValue = "0", description = "Seeds of each setting (default: ${DEFAULT-VALUE}).")
    List<Long> seeds;

    @Option(names = "--knn-dataset", paramLabel = "fmnist|DIR", defaultValue = "fmnist", description = "knn --dataset (default: ${DEFAULT-VALUE}).")
    String knnDataset;

    @Option(names = "--knn-train-limit", paramLabel = "N", description = "knn --train-limit: the bank (default: the whole train split).")
    Integer knnTrainLimit;

    @Option(names = "--knn-test-limit", paramLabel = "N", description = "knn --test-limit (default: the whole test split).")
    Integer knnTestLimit;

    @Option(names = "--dry-run", description = "Print the child command lines (runs already done as comments) and start none.")
    boolean dryRun;

    /** Starts the children; the tests give one that starts none. */
    SweepChild child = new SweepChild.Jvm();

    static final int KNN_K = 20;
    static final double KNN_TEMPERATURE = 0.07;

    /** One run of one seed: its place in the grid and its folder. */
    private record Job(SweepGrid.Run run, long seed, Path dir) {
        String id() {
            return run.name() + "-s" + seed;
        }
    }

    @Override
    public Integer call() throws Exception {
        SweepGrid g = readGrid();
        long n = images != null ? images : g.images() != null ? g.images() : -1;
        if (n < 1) throw usage(images != null ? "--images must be positive" : "--images N is required: the grid file " + grid + " gives no \"images\"");
        if (seeds.isEmpty() || new HashSet<>(seeds).size() != seeds.size()) throw usage("--seeds must list distinct seeds");
        for (long s : seeds) if (s < 0) throw usage("--seeds must be >= 0");
        if ((knnTrainLimit != null && knnTrainLimit < 1) || (knnTestLimit != null && knnTestLimit < 1)) {
            throw usage("--knn-train-limit and --knn-test-limit must be positive");
        }
        for (SweepGrid.Run r : g.runs()) checkDemoArgs(g, r, n);

        Path dir = out.toAbsolutePath();
        SweepLedger ledger = new SweepLedger(dir);
        List<Job> jobs = new ArrayList<>();
        // Seed by seed: after the first pass every setting has a number.
        for (long s : seeds) for (SweepGrid.Run r : g.runs()) jobs.add(new Job(r, s, dir.resolve(r.name() + "-s" + s)));
        List<Job> pending = new ArrayList<>();
        for (Job j : jobs) {
            Optional<JsonNode> done = ledger.done(j.run().name(), j.seed());
            if (done.isEmpty()) {
                pending.add(j);
            } else if (!done.get().path("settings").toString().equals(settings(g, j.run(), n).toString())) {
                // Compared as text: a number read back from the file is an int node where the new one is a long.
                throw new CliFailure("run " + j.id() + " in " + dir.resolve(SweepLedger.FILE) + " was made with other settings ("
                        + done.get().path("settings") + "): a sweep folder holds one grid; give another --out");
            }
        }
        PrintWriter err = spec.commandLine().getErr();
        if (dryRun) {
            PrintWriter o = spec.commandLine().getOut();
            for (Job j : jobs) {
                String prefix = pending.contains(j) ? "" : "# done: ";
                o.println(prefix + "dinostream " + CommandLineText.of(demoArgs(g, j, n)));
                o.println(prefix + "dinostream " + CommandLineText.of(knnArgs(lastSnapshotPlaceholder(j))));
            }
            o.flush();
            return 0;
        }

        Files.createDirectories(dir);
        String commandLine = commandLine();
        writeTable(dir, g, n, ledger, commandLine);
        err.printf(Locale.ROOT, "dinostream sweep: %d runs (%d settings x %d seeds), %d done, %d to go -> %s%n",
                jobs.size(), g.runs().size(), seeds.size(), jobs.size() - pending.size(), pending.size(), dir.resolve(SweepTable.FILE));
        int failed = 0;
        double spent = 0;
        for (int i = 0; i < pending.size(); i++) {
            Job j = pending.get(i);
            err.printf(Locale.ROOT, "dinostream sweep: [%d/%d] %s (%s), %d left after it%s%n", i + 1, pending.size(), j.id(),
                    j.run().args().isEmpty() ? "base" : CommandLineText.of(j.run().args()), pending.size() - i - 1,
                    i == 0 ? "" : ", ETA " + duration(spent / i * (pending.size() - i)));
            err.flush();
            long t0 = System.nanoTime();
            ObjectNode line = runOne(g, j, n, dir);
            spent += (System.nanoTime() - t0) / 1e9;
            ledger.append(line);
            writeTable(dir, g, n, ledger, commandLine);
            if (line.path("ok").asBoolean()) {
                err.printf(Locale.ROOT, "dinostream sweep: %s: k-NN top-1 %.2f %% after %d steps, %.0f s%n", j.id(),
                        line.path("knn_top1").asDouble(), line.path("final_step").asLong(), line.path("wall_s").asDouble());
            } else {
                failed++;
                err.printf(Locale.ROOT, "dinostream sweep: %s: %s failed with exit code %d (log: %s); going on%n", j.id(),
                        line.path("failed").asText(), line.path("exit_code").asInt(), line.path("log").asText());
            }
        }
        err.println("dinostream sweep: table: " + dir.resolve(SweepTable.FILE));
        if (failed > 0) throw new CliFailure(failed + " of " + pending.size() + " runs failed (see " + dir.resolve(SweepLedger.FILE) + "); run the same command again to retry them");
        return 0;
    }

    /** Trains, scores, and says so in one ledger line, a failure included. */
    private ObjectNode runOne(SweepGrid g, Job j, long n, Path dir) throws IOException, InterruptedException {
        ObjectNode line = Json.object();
        line.put("name", j.run().name());
        line.put("seed", j.seed());
        line.set("settings", settings(g, j.run(), n));
        line.put("started", Instant.now().toString());
        line.set("loadavg_start", Json.array(Proc.loadAverage()));
        line.put("out", j.dir().toString());
        Path logs = dir.resolve("logs");

        Path demoLog = logs.resolve(j.id() + ".demo.log");
        SweepChild.Result demo = child.run(demoArgs(g, j, n), demoLog);
        line.put("wall_s", Json.round(demo.seconds(), 1));
        if (demo.exitCode() != 0) return failed(line, "demo", demo.exitCode(), demoLog);
        JsonNode summary = lastJsonLine(demo.stdout());
        long trained = summary.path("images_trained").asLong();
        line.put("final_step", summary.path("train_steps").asLong());
        line.put("images_trained", trained);
        line.put("images_per_s", Json.round(trained / demo.seconds(), 2));
        // A demo stopped early (Ctrl-C, SIGTERM) ends cleanly with exit 0: its score is not one of this budget.
        // With --dedup the budget is of frames sent: the dropped near-duplicates are not trained on, by design.
        boolean dedup = demoArgs(g, j, n).contains("--dedup");
        if (dedup ? trained > n || trained == 0 : trained != n) {
            line.put("error", "trained on " + trained + " of the " + n + " images");
            return failed(line, "budget", demo.exitCode(), demoLog);
        }
        double trainRate = lastMetric(j.dir(), "images_per_s");
        if (!Double.isNaN(trainRate)) line.put("train_images_per_s", Json.round(trainRate, 2));
        ArrayNode probe = probeCurve(j.dir());
        if (probe != null) line.set("probe", probe);

        Optional<SnapshotRef> snapshot = new SnapshotStore(j.dir().resolve("snapshots").toUri().toString(), 5).latest(DemoCommand.MODEL);
        if (snapshot.isEmpty()) {
            line.put("error", "the demo left no snapshot under " + j.dir().resolve("snapshots"));
            return failed(line, "snapshot", 0, demoLog);
        }
        line.put("snapshot", snapshot.get().uri());
        Path knnLog = logs.resolve(j.id() + ".knn.log");
        SweepChild.Result knn = child.run(knnArgs(snapshot.get().uri()), knnLog);
        line.put("knn_wall_s", Json.round(knn.seconds(), 1));
        if (knn.exitCode() != 0) return failed(line, "knn", knn.exitCode(), knnLog);
        JsonNode score = lastJsonLine(knn.stdout());
        line.put("knn_top1", score.path("top1").asDouble());
        line.put("knn_top5", score.path("top5").asDouble());
        line.put("knn_n_train", score.path("n_train").asInt());
        line.put("knn_n_test", score.path("n_test").asInt());
        line.set("loadavg_end", Json.array(Proc.loadAverage()));
        line.put("ok", true);
        return line;
    }

    /** This command line as typed (run through Main, the parse result's arguments start with the subcommand's name). */
    private String commandLine() {
        List<String> a = new ArrayList<>(spec.commandLine().getParseResult().originalArgs());
        if (a.isEmpty() || !a.get(0).equals(spec.name())) a.add(0, spec.name());
        return "dinostream " + CommandLineText.of(a);
    }

    private static ObjectNode failed(ObjectNode line, String what, int rc, Path log) {
        line.put("ok", false);
        line.put("failed", what);
        line.put("exit_code", rc);
        line.put("log", log.toString());
        line.put("stderr_tail", SweepChild.tail(log, 20));
        line.set("loadavg_end", Json.array(Proc.loadAverage()));
        return line;
    }

    /** What a run's result depends on: a resumed sweep must not mix lines made with other settings. */
    private ObjectNode settings(SweepGrid g, SweepGrid.Run r, long n) {
        ObjectNode s = Json.object();
        ArrayNode a = s.putArray("demo_args");
        g.demoArgs(r).forEach(a::add);
        s.put("images", n);
        s.put("knn_dataset", knnDataset);
        if (knnTrainLimit != null) s.put("knn_train_limit", knnTrainLimit);
        if (knnTestLimit != null) s.put("knn_test_limit", knnTestLimit);
        return s;
    }

    private List<String> demoArgs(SweepGrid g, Job j, long n) {
        List<String> a = new ArrayList<>(List.of("demo"));
        a.addAll(g.demoArgs(j.run()));
        a.addAll(List.of("--images", Long.toString(n), "--seed", Long.toString(j.seed()), "--no-embed", "--out", j.dir().toString(), "--json"));
        return a;
    }

    private List<String> knnArgs(String snapshot) {
        List<String> a = new ArrayList<>(List.of("knn", "--snapshot", snapshot, "--dataset", knnDataset,
                "--k", Integer.toString(KNN_K), "--temperature", Double.toString(KNN_TEMPERATURE), "--json"));
        if (knnTrainLimit != null) a.addAll(List.of("--train-limit", knnTrainLimit.toString()));
        if (knnTestLimit != null) a.addAll(List.of("--test-limit", knnTestLimit.toString()));
        return a;
    }

    private static String lastSnapshotPlaceholder(Job j) {
        return j.dir().resolve("snapshots").resolve(DemoCommand.MODEL) + "/<last step>";
    }

    private SweepGrid readGrid() {
        String text;
        try {
            text = Files.readString(grid, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw usage("--grid: cannot read " + grid + ": " + Errors.describe(e));
        }
        try {
            return SweepGrid.parse(text);
        } catch (IllegalArgumentException e) {
            throw usage("--grid " + grid + ": " + e.getMessage());
        }
    }

    /** Options demo does not know, or a budget its batch does not divide, are the grid's mistake: found before any run starts. */
    private void checkDemoArgs(SweepGrid g, SweepGrid.Run r, long n) {
        DemoCommand d = new DemoCommand();
        try {
            new CommandLine(d).parseArgs(g.demoArgs(r).toArray(String[]::new));
        } catch (ParameterException e) {
            throw usage("--grid " + grid + ": run " + r.name() + ": " + e.getMessage());
        }
        if (n % d.batch != 0) throw usage("--grid " + grid + ": run " + r.name() + ": --images " + n + " is not a multiple of its --batch " + d.batch);
    }

    private static JsonNode lastJsonLine(String stdout) throws IOException {
        String[] lines = stdout.strip().split("\\R");
        String last = lines[lines.length - 1];
        return last.isBlank() ? Json.object() : Json.MAPPER.readTree(last);
    }

    /** A field of the last line of the run folder's metrics.jsonl; NaN when there is none. */
    private static double lastMetric(Path runDir, String field) {
        try {
            List<String> lines = Files.readAllLines(runDir.resolve("metrics.jsonl"));
            for (int i = lines.size() - 1; i >= 0; i--) {
                JsonNode n = Json.MAPPER.readTree(lines.get(i));
                if (n.has(field)) return n.get(field).asDouble();
            }
        } catch (IOException | RuntimeException e) {
            // no metrics: the line goes without
        }
        return Double.NaN;
    }

    /** The online probe's (step, images seen, top-1, top-5) over the run, when it ran. */
    private static ArrayNode probeCurve(Path runDir) {
        Path p = runDir.resolve("probe.jsonl");
        if (!Files.exists(p)) return null;
        ArrayNode curve = Json.MAPPER.createArrayNode();
        try {
            for (String text : Files.readAllLines(p)) {
                if (text.isBlank()) continue;
                JsonNode n = Json.MAPPER.readTree(text);
                ObjectNode o = curve.addObject();
                for (String f : new String[]{"step", "images_seen", "top1", "top5"}) o.set(f, n.get(f));
            }
        } catch (IOException | RuntimeException e) {
            // what was readable
        }
        return curve;
    }

    private void writeTable(Path dir, SweepGrid g, long n, SweepLedger ledger, String commandLine) throws IOException {
        Path tmp = dir.resolve(SweepTable.FILE + ".tmp");
        Files.writeString(tmp, SweepTable.markdown(g, n, seeds, ledger, commandLine), StandardCharsets.UTF_8);
        Files.move(tmp, dir.resolve(SweepTable.FILE), java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    private static String duration(double seconds) {
        long s = Math.round(seconds);
        return s >= 3600 ? String.format(Locale.ROOT, "%dh%02dm", s / 3600, s / 60 % 60) : String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60);
    }

    private ParameterException usage(String msg) {
        return new ParameterException(spec.commandLine(), msg);
    }
}
