package dinostream.cli;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static dinostream.cli.CliTest.assertOneLineError;
import static dinostream.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `dinostream sweep`: the grid file, the child command lines, the ledger and resuming, with children that start nothing. */
class SweepCommandTest {
    @TempDir
    Path dir;

    static final String GRID = """
            {"base": ["--preset", "test", "--batch", "16", "--probe-size", "0"], "images": 64,
             "runs": [{"name": "lr-1e-3", "args": ["--lr", "1e-3"]}],
             "axes": {"--teacher-temp": ["0.07"]}}
            """;

    /** Pretends to be demo and knn: writes the snapshot demo would, prints their JSON; fails the runs it is told to. */
    static final class FakeChild implements SweepChild {
        final List<List<String>> calls = new ArrayList<>();
        final List<String> failDemoOf = new ArrayList<>();
        /** Runs whose demo ends early, as one stopped by Ctrl-C does: exit 0, fewer images. */
        final List<String> stopDemoOf = new ArrayList<>();

        @Override
        public Result run(List<String> args, Path log) throws java.io.IOException {
            calls.add(args);
            Files.createDirectories(log.getParent());
            if (args.get(0).equals("demo")) {
                Path out = Path.of(args.get(args.indexOf("--out") + 1));
                if (failDemoOf.stream().anyMatch(out.toString()::endsWith)) {
                    Files.writeString(log, "starting\ndinostream: error: the job failed: boom\n");
                    return new Result(1, "", 2.0);
                }
                snapshot(out);
                if (stopDemoOf.stream().anyMatch(out.toString()::endsWith)) return new Result(0, "{\"train_steps\":1,\"images_trained\":16}\n", 3.0);
                Files.writeString(out.resolve("probe.jsonl"), "{\"step\":2,\"images_seen\":32,\"top1\":40.0,\"top5\":90.0,\"bank\":5}\n");
                return new Result(0, "{\"train_steps\":4,\"images_trained\":64,\"out\":\"" + out + "\"}\n", 8.0);
            }
            return new Result(0, "{\"top1\":61.5,\"top5\":95.0,\"n_train\":100,\"n_test\":50}\n", 1.0);
        }

        /** A real snapshot, as the trainer's store writes it. */
        private static void snapshot(Path out) throws java.io.IOException {
            var store = new dinostream.pipeline.snapshot.SnapshotStore(out.resolve("snapshots").toUri().toString(), 5);
            var cfg = dinostream.model.dino.Presets.get("test");
            var state = dinostream.model.io.DinoState.init(cfg, 1);
            var info = new dinostream.pipeline.snapshot.SnapshotInfo(64, java.util.Map.of(dinostream.pipeline.snapshot.Manifest.LR, 1e-3,
                    dinostream.pipeline.snapshot.Manifest.WEIGHT_DECAY, 0.04, dinostream.pipeline.snapshot.Manifest.TEACHER_TEMP, 0.04,
                    dinostream.pipeline.snapshot.Manifest.MOMENTUM, 0.996), java.util.Map.of(), java.util.Map.of());
            store.write(DemoCommand.MODEL, state, info, new byte[]{1, 2, 3});
        }

        long demos() {
            return calls.stream().filter(c -> c.get(0).equals("demo")).count();
        }
    }

    record Ran(int rc, String out, String err) {}

    private Ran sweep(FakeChild child, String... args) {
        SweepCommand cmd = new SweepCommand();
        if (child != null) cmd.child = child;
        StringWriter out = new StringWriter(), err = new StringWriter();
        int rc = CommandLines.configure(new picocli.CommandLine(cmd), new PrintWriter(out, true), new PrintWriter(err, true)).execute(args);
        return new Ran(rc, out.toString(), err.toString());
    }

    private Path grid(String json) throws Exception {
        Path g = dir.resolve("grid-" + Math.abs(json.hashCode()) + ".json");
        Files.writeString(g, json);
        return g;
    }

    @Test
    void gridsAreParsedAndExpanded() {
        SweepGrid g = SweepGrid.parse(GRID);
        assertEquals(List.of("base", "teacher-temp-0.07", "lr-1e-3"), g.runs().stream().map(SweepGrid.Run::name).toList());
        assertEquals(List.of("--preset", "test", "--batch", "16", "--probe-size", "0", "--teacher-temp", "0.07"), g.demoArgs(g.runs().get(1)));
        assertEquals(64L, g.images());
        SweepGrid.Run batch = new SweepGrid.Run("b", List.of("--batch", "32", "--probe-size=20"));
        assertEquals(List.of("--preset", "test", "--batch", "32", "--probe-size=20"), g.demoArgs(batch),
                "a run's option replaces the base's, value and all");
        SweepGrid.Run config = new SweepGrid.Run("c", List.of("--config", "c.json"));
        assertEquals(List.of("--batch", "16", "--probe-size", "0", "--config", "c.json"), g.demoArgs(config),
                "a run's --config replaces the base's --preset: the two are one choice");
        assertEquals("lr-1e-3", SweepGrid.parse("{\"runs\": [{\"name\": \"lr-1e-3\", \"args\": [\"--lr\", 1e-3]}]}").runs().get(0).name());
    }

    @Test
    void badGridsAreOneLineUsageErrors() throws Exception {
        Path out = dir.resolve("sweep");
        for (String[] bad : new String[][]{
                {"{\"runs\": [", "not JSON"},
                {"[]", "must be a JSON object"},
                {"{\"runs\": [{\"name\": \"a\"}], \"seeds\": [0]}", "unknown key \"seeds\""},
                {"{\"runs\": [{\"name\": \"a\", \"argz\": []}]}", "runs[0]: unknown key \"argz\""},
                {"{\"runs\": []}", "no runs"},
                {"{\"base\": [\"--preset\", \"test\"]}", "no runs"},
                {"{\"runs\": [{\"args\": []}]}", "runs[0] needs a \"name\""},
                {"{\"runs\": [{\"name\": \"a/b\"}]}", "run name \"a/b\""},
                {"{\"runs\": [{\"name\": \"a\"}, {\"name\": \"a\"}]}", "run name \"a\" is given twice"},
                {"{\"images\": -5, \"runs\": [{\"name\": \"a\"}]}", "\"images\" must be a positive integer"},
                {"{\"runs\": [{\"name\": \"a\", \"args\": [\"--seed\", \"3\"]}]}", "run a: --seed is set by the sweep"},
                {"{\"axes\": {\"lr\": [\"1\"]}}", "axes: \"lr\" is not an option"},
                {"{\"images\": 64, \"runs\": [{\"name\": \"a\", \"args\": [\"--no-such-option\"]}]}", "run a: Unknown option: '--no-such-option'"},
                {"{\"images\": 100, \"runs\": [{\"name\": \"a\", \"args\": [\"--batch\", \"64\"]}]}", "run a: --images 100 is not a multiple of its --batch 64"},
                {"{\"runs\": [{\"name\": \"a\"}]}", "--images N is required"}}) {
            Path g = grid(bad[0]);
            Ran r = sweep(null, "--grid", g.toString(), "--out", out.toString());
            assertOneLineError(new CliTest.Result(r.rc(), r.out(), r.err()), 2, bad[1]);
        }
        assertOneLineError(run("sweep", "--grid", dir.resolve("absent.json").toString(), "--out", out.toString()), 2, "--grid: cannot read");
        assertOneLineError(run("sweep", "--grid", grid(GRID).toString(), "--out", out.toString(), "--seeds", "0,0"), 2, "--seeds must list distinct seeds");
        assertFalse(Files.exists(out), "nothing written");
    }

    @Test
    void dryRunPrintsTheChildCommandLines() throws Exception {
        Path out = dir.resolve("sweep");
        Ran r = sweep(null, "--grid", grid(GRID).toString(), "--out", out.toString(), "--seeds", "0,1", "--images", "32",
                "--knn-train-limit", "100", "--knn-test-limit", "50", "--dry-run");
        assertEquals(0, r.rc(), r.err());
        List<String> lines = r.out().lines().toList();
        assertEquals(12, lines.size(), r.out());
        assertEquals("dinostream demo --preset test --batch 16 --probe-size 0 --images 32 --seed 0 --no-embed --out "
                + out.toAbsolutePath().resolve("base-s0") + " --json", lines.get(0));
        assertEquals("dinostream knn --snapshot '" + out.toAbsolutePath().resolve("base-s0/snapshots/demo") + "/<last step>' --dataset fmnist "
                + "--k 20 --temperature 0.07 --json --train-limit 100 --test-limit 50", lines.get(1));
        assertTrue(lines.get(6).contains("--seed 1"), "seed by seed: " + lines.get(6));
        assertTrue(lines.get(4).contains("--preset test --batch 16 --probe-size 0 --lr 1e-3 --images 32"), lines.get(4));
        assertFalse(Files.exists(out), "a dry run writes nothing");
    }

    @Test
    void runsAreRecordedAndASweepResumesWhereItWas() throws Exception {
        Path out = dir.resolve("sweep");
        String g = grid(GRID).toString();
        FakeChild first = new FakeChild();
        first.failDemoOf.add("lr-1e-3-s0");
        first.stopDemoOf.add("teacher-temp-0.07-s0");
        Ran r = sweep(first, "--grid", g, "--out", out.toString(), "--knn-test-limit", "50");
        assertEquals(1, r.rc(), "a failed run is the sweep's result, after the others: " + r.err());
        assertTrue(r.err().contains("2 of 3 runs failed"), r.err());
        assertTrue(r.err().contains("[3/3] lr-1e-3-s0"), r.err());
        assertEquals(3, first.demos(), "the sweep went on after the failure");

        List<String> lines = Files.readAllLines(out.resolve(SweepLedger.FILE));
        assertEquals(3, lines.size());
        JsonNode ok = CliTest.JSON.readTree(lines.get(0)), bad = CliTest.JSON.readTree(lines.get(2));
        assertEquals("base", ok.path("name").asText());
        assertTrue(ok.path("ok").asBoolean());
        assertEquals(61.5, ok.path("knn_top1").asDouble());
        assertEquals(4, ok.path("final_step").asLong());
        assertEquals(8.0, ok.path("images_per_s").asDouble(), "64 images in 8 s");
        assertEquals(40.0, ok.path("probe").get(0).path("top1").asDouble());
        assertTrue(ok.path("snapshot").asText().contains("step-"), ok.toString());
        assertTrue(ok.has("loadavg_start") && ok.has("loadavg_end"));
        assertEquals(List.of("knn", "--snapshot"), first.calls.get(1).subList(0, 2));
        assertTrue(first.calls.get(1).containsAll(List.of("--test-limit", "50")));
        assertFalse(bad.path("ok").asBoolean());
        assertEquals("demo", bad.path("failed").asText());
        assertEquals(1, bad.path("exit_code").asInt());
        assertTrue(bad.path("stderr_tail").asText().contains("boom"), bad.toString());

        String table = Files.readString(out.resolve(SweepTable.FILE));
        assertTrue(table.contains("dinostream sweep --grid " + g), table);
        assertTrue(table.contains("| base | (base) | **61.50** | s0 61.50 |"), table);
        assertTrue(table.contains("s0 demo failed (rc 1)"), table);
        assertTrue(table.contains("s0 stopped early"), table);
        assertEquals("trained on 16 of the 64 images", CliTest.JSON.readTree(lines.get(1)).path("error").asText());

        // Again, with a second seed: only what is not done runs (the failed one is tried again).
        Files.writeString(out.resolve(SweepLedger.FILE), "{\"name\": \"cut", java.nio.file.StandardOpenOption.APPEND);
        FakeChild second = new FakeChild();
        r = sweep(second, "--grid", g, "--out", out.toString(), "--knn-test-limit", "50", "--seeds", "0,1");
        assertEquals(0, r.rc(), r.err());
        assertTrue(r.err().contains("6 runs (3 settings x 2 seeds), 1 done, 5 to go"), r.err());
        assertEquals(5, second.demos());
        assertEquals("teacher-temp-0.07-s0", Path.of(second.calls.get(0).get(second.calls.get(0).indexOf("--out") + 1)).getFileName().toString());
        table = Files.readString(out.resolve(SweepTable.FILE));
        assertTrue(table.contains("| lr-1e-3 | `--lr 1e-3` | **61.50** | s0 61.50, s1 61.50 |"), table);

        // Everything done: nothing runs; the dry run marks it.
        FakeChild third = new FakeChild();
        r = sweep(third, "--grid", g, "--out", out.toString(), "--knn-test-limit", "50", "--seeds", "0,1");
        assertEquals(0, r.rc(), r.err());
        assertEquals(0, third.calls.size());
        Ran dry = sweep(null, "--grid", g, "--out", out.toString(), "--knn-test-limit", "50", "--dry-run");
        assertTrue(dry.out().lines().allMatch(l -> l.startsWith("# done: ")), dry.out());

        // Other settings in the same folder: refused, never mixed into one table.
        Ran other = sweep(new FakeChild(), "--grid", g, "--out", out.toString(), "--knn-test-limit", "60");
        assertEquals(1, other.rc());
        assertTrue(other.err().contains("was made with other settings"), other.err());
    }

    @Test
    void theJvmChildRunsThisProgram() {
        List<String> c = SweepChild.Jvm.command(List.of("knn", "--help"));
        assertTrue(c.get(0).endsWith("/bin/java"), c.toString());
        assertEquals(List.of(Main.class.getName(), "knn", "--help"), c.subList(c.size() - 3, c.size()));
        assertThrows(IllegalArgumentException.class, () -> SweepGrid.parse("{}"));
    }
}
