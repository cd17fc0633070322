package dinostream.cli;

import ai.onnx.proto.OnnxMl.ModelProto;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Presets;
import dinostream.model.io.DType;
import dinostream.model.io.DinoState;
import dinostream.model.io.SafeTensors;
import dinostream.model.io.SafeTensorsFile;
import dinostream.model.io.TensorData;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The command line run in-process, with stdout and stderr captured. */
class CliTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int BATCH = 4;

    @TempDir
    static Path dir;
    static Path state;

    record Result(int rc, String out, String err) {
        List<String> errLines() {
            return err.isEmpty() ? List.of() : List.of(err.split("\\R"));
        }

        @Override
        public String toString() {
            return "rc=" + rc + "\n--- stdout\n" + out + "--- stderr\n" + err;
        }
    }

    static Result run(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int rc = Main.commandLine(new PrintWriter(out, true), new PrintWriter(err, true)).execute(args);
        return new Result(rc, out.toString(), err.toString());
    }

    @BeforeAll
    static void initState() {
        state = dir.resolve("in.safetensors");
        Result r = run("init", "--preset", "test", "--seed", "1", "--out", state.toString());
        assertEquals(0, r.rc(), r.toString());
        assertEquals("", r.out(), "without --json nothing goes to stdout");
    }

    /** Random normalized crops for the test preset: 2 global + n_local local views. */
    static Map<String, TensorData> crops(int batch, int localSize) {
        DinoConfig c = Presets.get("test");
        SplittableRandom rng = new SplittableRandom(7);
        Map<String, TensorData> m = new LinkedHashMap<>();
        for (int v = 0; v < c.nCrops(); v++) {
            int s = v < 2 ? c.imgSize : localSize;
            long[] shape = {batch, c.inChans, s, s};
            float[] x = new float[batch * c.inChans * s * s];
            for (int i = 0; i < x.length; i++) x[i] = (float) rng.nextGaussian();
            m.put("crops/" + v, TensorData.ofFloats(shape, x));
        }
        return m;
    }

    static Path write(String name, Map<String, TensorData> tensors) throws Exception {
        Path p = dir.resolve(name);
        SafeTensors.write(p, tensors, Map.of());
        return p;
    }

    static List<String> stepArgs(Path in, Path crops, Path out, String... more) {
        List<String> a = new ArrayList<>(List.of("step", "--state", in.toString(), "--crops", crops.toString(),
                "--lr", "1e-3", "--weight-decay", "0.04", "--teacher-temp", "0.04", "--momentum", "0.996",
                "--threads", "1", "--out", out.toString()));
        a.addAll(List.of(more));
        return a;
    }

    /** Exit code, and exactly one stderr line that starts as agreed and names the problem. */
    static void assertOneLineError(Result r, int rc, String... mentions) {
        assertEquals(rc, r.rc(), r.toString());
        assertEquals(1, r.errLines().size(), "one line on stderr: " + r);
        String line = r.errLines().get(0);
        assertTrue(line.startsWith("dinostream: error: "), line);
        for (String m : mentions) assertTrue(line.contains(m), "'" + m + "' missing from: " + line);
        assertEquals("", r.out(), "nothing on stdout");
    }

    @Test
    void initThenStepWritesTheNextStateAndItsLoss() throws Exception {
        Path crops = write("crops.safetensors", crops(BATCH, 8));
        Path out = dir.resolve("sub/out.safetensors");
        Result r = run(stepArgs(state, crops, out, "--json").toArray(String[]::new));
        assertEquals(0, r.rc(), r.toString());

        JsonNode j = JSON.readTree(r.out());   // stdout holds only the JSON object
        assertEquals(1, r.out().strip().lines().count());
        assertEquals(1, j.get("step").asLong());
        assertEquals(out.toString(), j.get("out").asText());
        assertTrue(j.has("teacher_entropy") && j.has("kl"));
        assertTrue(r.err().contains("step 1: loss"), r.err());

        SafeTensorsFile f = SafeTensors.read(out);
        assertEquals(1, f.tensors().get("step").longValue());
        TensorData loss = f.tensors().get("loss");
        assertEquals(DType.F32, loss.dtype());
        assertEquals(0, loss.rank());
        float l = (float) loss.doubleValue();
        assertTrue(Float.isFinite(l));
        assertEquals((float) j.get("loss").asDouble(), l, 0f, "the file's loss is the printed one");

        DinoState next = DinoState.load(out);   // same layout as the input; the loss tensor is ignored
        assertEquals(1, next.step());
        assertNotEquals(DinoState.load(state).get("student/backbone.cls_token"), next.get("student/backbone.cls_token"));

        // N steps continue the counter.
        Path out3 = dir.resolve("out3.safetensors");
        Result r3 = run(stepArgs(out, crops, out3, "--steps", "2").toArray(String[]::new));
        assertEquals(0, r3.rc(), r3.toString());
        assertEquals(3, DinoState.load(out3).step());
    }

    @Test
    void localCropSizeComesFromTheCrops() throws Exception {
        Path crops = write("crops12.safetensors", crops(2, 12));
        Path out = dir.resolve("out12.safetensors");
        Result r = run(stepArgs(state, crops, out).toArray(String[]::new));
        assertEquals(0, r.rc(), r.toString());
        assertTrue(r.err().contains("local_size 8; using 12"), r.err());
        assertEquals(12, DinoState.load(out).config().localSize);
    }

    @Test
    void benchPrintsOnlyJsonWithTheAgreedFields() throws Exception {
        Result r = run("bench", "train-step", "--preset", "test", "--batch", "4", "--steps", "2", "--warmup", "1", "--threads", "1", "--json");
        assertEquals(0, r.rc(), r.toString());
        assertEquals(1, r.out().strip().lines().count(), "one JSON line on stdout: " + r.out());
        JsonNode j = JSON.readTree(r.out());
        for (String k : List.of("images_per_s", "step_ms_median", "step_ms_min", "step_ms_max", "peak_rss_mb", "threads",
                "preset", "batch", "steps", "build_ms", "session_ms", "nodes", "loss_first", "loss_last",
                "loadavg_before", "loadavg_after", "java", "onnxruntime")) {
            assertTrue(j.has(k), "missing " + k + " in " + j);
        }
        assertEquals("test", j.get("preset").asText());
        assertEquals(4, j.get("batch").asInt());
        assertEquals(2, j.get("steps").asInt());
        assertEquals(1, j.get("threads").asInt());
        assertTrue(j.get("images_per_s").asDouble() > 0);
        assertTrue(j.get("step_ms_min").asDouble() <= j.get("step_ms_median").asDouble());
        assertTrue(j.get("step_ms_median").asDouble() <= j.get("step_ms_max").asDouble());
        assertTrue(j.get("nodes").asInt() > 100);
        assertTrue(Double.isFinite(j.get("loss_last").asDouble()));
        assertTrue(r.err().contains("[bench] step 2/2"), "progress on stderr: " + r.err());
    }

    @Test
    void benchRecordsFlopsPeakCpuAndAProfileByPhase() throws Exception {
        Path trace = dir.resolve("profile/trace.json");
        Result r = run("bench", "train-step", "--preset", "test", "--batch", "2", "--steps", "2", "--warmup", "1", "--threads", "1",
                "--peak-size", "128", "--profile", trace.toString(), "--ort", "memory_pattern=0", "--json");
        assertEquals(0, r.rc(), r.toString());
        JsonNode j = JSON.readTree(r.out());
        assertTrue(j.get("step_gflop").asDouble() > 0, j.toString());
        assertTrue(j.get("matmul_peak").get("gflops_best").asDouble() >= j.get("matmul_peak").get("gflops_median").asDouble());
        assertEquals(128, j.get("matmul_peak").get("n").asInt());
        assertTrue(j.get("peak_fraction").asDouble() > 0);
        assertTrue(j.get("cpu_flags").has("avx512f") && j.has("cpu_model"), j.toString());
        assertTrue(Files.size(trace) > 0);
        JsonNode p = j.get("profile");
        assertEquals(2, p.get("runs").asInt());
        List<String> phases = new ArrayList<>();
        p.get("by_phase").forEach(row -> phases.add(row.get("name").asText()));
        assertTrue(phases.containsAll(List.of("teacher", "student", "backward", "optimizer", "ema")), phases.toString());
        assertTrue(r.err().contains("phase"), "the tables go to stderr: " + r.err());
    }

    @Test
    void benchEmbedWithoutATorchScriptTimesOnnxRuntimeAndSaysWhy() throws Exception {
        Result r = run("bench", "embed", "--preset", "test", "--batch", "2", "--size", "8", "--iterations", "2", "--rounds", "1",
                "--warmup", "1", "--threads", "1", "--json");
        assertEquals(0, r.rc(), r.toString());
        JsonNode j = JSON.readTree(r.out());
        assertTrue(j.get("ort_images_per_s").asDouble() > 0, j.toString());
        assertTrue(j.get("torch_images_per_s").isNull(), j.toString());
        assertTrue(j.get("ratio").isNull(), j.toString());
        assertEquals("no --torch-script given", j.get("torch_note").asText());
        assertEquals(8, j.get("size").asInt());
        for (String k : List.of("loadavg_before", "loadavg_after", "threads", "batch", "cores", "onnxruntime")) {
            assertTrue(j.has(k), "missing " + k + " in " + j);
        }
    }

    /** The subprocess protocol of bench_embed_torch.py, played by a shell script (CI has no torch): 100 ms a forward. */
    @Test
    void benchEmbedAlternatesWithTheTorchSideAndReportsTheRatio() throws Exception {
        Path fake = Files.writeString(dir.resolve("fake_torch.sh"), "echo '{\"ready\": true, \"torch\": \"fake\", \"threads\": 1}'\n"
                + "while read cmd k; do [ \"$cmd\" = run ] || exit 0; ms=''; i=0\n"
                + "  while [ $i -lt $k ]; do ms=\"$ms${ms:+,}100\"; i=$((i+1)); done; echo \"{\\\"ms\\\": [$ms]}\"; done\n");
        Result r = run("bench", "embed", "--preset", "test", "--batch", "3", "--iterations", "2", "--rounds", "2", "--warmup", "1",
                "--threads", "1", "--python", "/bin/sh", "--torch-script", fake.toString(), "--anchors", dir.toString(), "--json");
        assertEquals(0, r.rc(), r.toString());
        JsonNode j = JSON.readTree(r.out());
        assertEquals("fake", j.get("torch").asText());
        assertEquals(30.0, j.get("torch_images_per_s").asDouble(), 1e-9);
        assertEquals(j.get("ort_images_per_s").asDouble() / 30.0, j.get("ratio").asDouble(), 1e-3);
        // ort_ms_min is rounded to 0.01 ms, a few per cent of a test-preset forward
        assertEquals(1.0, j.get("ratio_best").asDouble() * j.get("ort_ms_min").asDouble() / 100, 0.1);
        assertTrue(r.err().contains("round 2/2"), r.err());
    }

    @Test
    void exportWritesBothInferenceModels() throws Exception {
        Path out = dir.resolve("export");
        Result r = run("export", "--state", state.toString(), "--out", out.toString(), "--json");
        assertEquals(0, r.rc(), r.toString());
        JsonNode j = JSON.readTree(r.out());
        assertEquals(0, j.get("step").asInt());
        assertEquals(2, j.get("files").size());
        for (String f : List.of("teacher-backbone.onnx", "teacher-attention.onnx")) {
            assertTrue(Files.size(out.resolve(f)) > 0, f);
        }
    }

    @Test
    void exportPrecisionWritesLowPrecisionModelsAndIsRefusedForPth() throws Exception {
        Path fp32 = dir.resolve("export-fp32"), fp16 = dir.resolve("export-fp16");
        assertEquals(0, run("export", "--state", state.toString(), "--out", fp32.toString()).rc());
        Result r = run("export", "--state", state.toString(), "--out", fp16.toString(), "--precision", "fp16");
        assertEquals(0, r.rc(), r.toString());
        for (String f : List.of("teacher-backbone.onnx", "teacher-attention.onnx")) {
            ModelProto m = ModelProto.parseFrom(Files.readAllBytes(fp16.resolve(f)));
            assertTrue(m.getMetadataPropsList().stream().anyMatch(e -> e.getKey().equals("dinostream.precision") && e.getValue().equals("fp16")), f);
            assertTrue(Files.size(fp16.resolve(f)) < 0.7 * Files.size(fp32.resolve(f)), f);   // the test preset's graph is a large part of it
        }
        assertOneLineError(run("export", "--state", state.toString(), "--out", dir.resolve("x.pth").toString(), "--format", "pth",
                "--precision", "bf16"), 2, "--precision bf16 is for --format onnx");
        assertOneLineError(run("export", "--state", state.toString(), "--out", dir.resolve("e").toString(), "--precision", "fp8"),
                2, "--precision", "fp8");
        assertFalse(Files.exists(dir.resolve("x.pth")));
        String help = run("export", "--help").out();
        assertTrue(help.replaceAll("\\s+", " ").contains("CPU provider runs fp16 but not bf16"), help);
    }

    @Test
    void missingStateFile() throws Exception {
        Path crops = write("crops-any.safetensors", crops(BATCH, 8));
        Path missing = dir.resolve("no-such-state.safetensors");
        assertOneLineError(run(stepArgs(missing, crops, dir.resolve("x.safetensors")).toArray(String[]::new)),
                1, "no such file", missing.toString());
    }

    @Test
    void cropsWithAWrongShape() throws Exception {
        Map<String, TensorData> c = crops(BATCH, 8);
        c.put("crops/1", TensorData.zeros(DType.F32, new long[]{BATCH, 1, 16, 12}));
        Path crops = write("crops-shape.safetensors", c);
        Path out = dir.resolve("x.safetensors");
        assertOneLineError(run(stepArgs(state, crops, out).toArray(String[]::new)), 1,
                "crops/1 has shape [4, 1, 16, 12]", "expected [4, 1, 16, 16]");
        assertFalse(Files.exists(out));
    }

    @Test
    void cropsWithNaN() throws Exception {
        Map<String, TensorData> c = crops(BATCH, 8);
        float[] x = c.get("crops/3").toFloatArray();
        x[17] = Float.NaN;
        c.put("crops/3", TensorData.ofFloats(c.get("crops/3").shape(), x));
        assertOneLineError(run(stepArgs(state, write("crops-nan.safetensors", c), dir.resolve("x.safetensors")).toArray(String[]::new)),
                1, "crops/3 holds NaN at flat index 17");
    }

    @Test
    void cropsWithAnUnknownKey() throws Exception {
        Map<String, TensorData> c = crops(BATCH, 8);
        c.put("crops/4", c.get("crops/3"));
        assertOneLineError(run(stepArgs(state, write("crops-extra.safetensors", c), dir.resolve("x.safetensors")).toArray(String[]::new)),
                1, "unexpected key 'crops/4'", "crops/0..crops/3");
    }

    /** A configuration whose every step would be NaN is refused before the job starts, in one line. */
    @Test
    void trainRefusesAConfigurationThatMakesEveryStepNaN() throws Exception {
        Path cfg = dir.resolve("std0.json");
        Files.writeString(cfg, "{\"preset\": \"test\", \"img_size\": 16, \"local_size\": 8, \"dim\": 32, \"depth\": 2, \"heads\": 2, \"std\": [0.0]}");
        assertOneLineError(run("train", "--bootstrap", "127.0.0.1:9", "--config", cfg.toString(), "--out", dir.resolve("run").toString()),
                1, "std0.json", "invalid configuration", "std values must be finite and > 0");
        assertOneLineError(run("train", "--bootstrap", "127.0.0.1:9", "--model-id", "../etc", "--out", dir.resolve("run").toString()),
                2, "--model-id", "is not a model id");
    }

    @Test
    void unknownPreset() {
        assertOneLineError(run("init", "--preset", "vit-huge", "--out", dir.resolve("x.safetensors").toString()),
                2, "unknown preset 'vit-huge'", "fmnist-tiny");
        assertOneLineError(run("bench", "train-step", "--preset", "vit-huge", "--json"), 2, "unknown preset 'vit-huge'");
    }

    /** The device runtime has no profiler trace to hand back: a usage error before anything is built, naming the way. */
    @Test
    void benchProfileOnTheDeviceRuntimeIsAUsageError() {
        assertOneLineError(run("bench", "train-step", "--preset", "test", "--runtime", "device",
                "--profile", dir.resolve("never/trace.json").toString()), 2, "--profile", "--runtime host");
        assertTrue(!Files.exists(dir.resolve("never")), "nothing written");
    }

    @Test
    void presetAndConfigTogether() throws Exception {
        Path cfg = dir.resolve("cfg.json");
        Files.writeString(cfg, Presets.get("test").toJson());
        assertOneLineError(run("init", "--preset", "test", "--config", cfg.toString(), "--out", dir.resolve("x.safetensors").toString()),
                2, "--preset", "--config", "mutually exclusive");
        // Either alone works.
        Result r = run("init", "--config", cfg.toString(), "--out", dir.resolve("from-config.safetensors").toString(), "--json");
        assertEquals(0, r.rc(), r.toString());
        assertEquals(0, JSON.readTree(r.out()).get("step").asInt());
    }

    @Test
    void badOptionValuesAreUsageErrors() throws Exception {
        Path crops = write("crops-opt.safetensors", crops(BATCH, 8));
        List<String> a = stepArgs(state, crops, dir.resolve("x.safetensors"));
        a.set(a.indexOf("--momentum") + 1, "1.5");
        assertOneLineError(run(a.toArray(String[]::new)), 2, "--momentum must be in [0, 1]");
        assertOneLineError(run("bench", "train-step", "--preset", "test", "--batch", "many"), 2, "--batch", "many");
        assertOneLineError(run("init", "--preset", "test", "--out", "x", "--frobnicate"), 2, "--frobnicate");
    }

    @Test
    void verboseAddsTheStackTrace() throws Exception {
        Path crops = write("crops-v.safetensors", crops(BATCH, 8));
        Result r = run(stepArgs(dir.resolve("absent.safetensors"), crops, dir.resolve("x.safetensors"), "-v").toArray(String[]::new));
        assertEquals(1, r.rc());
        assertTrue(r.errLines().get(0).startsWith("dinostream: error: no such file"), r.err());
        assertTrue(r.errLines().size() > 1 && r.err().contains("NoSuchFileException"), r.err());
    }

    /** train's usage errors stay as they were, though the options behind them are typed now. */
    @Test
    void trainOptionErrorsAreOneLineUsageErrors() {
        String[] base = {"train", "--bootstrap", "127.0.0.1:9", "--out", dir.resolve("run").toString()};
        for (List<String> bad : List.of(
                List.of("--device", "gpu", "--device must be cpu, cuda or cuda:N, got gpu"),
                List.of("--runtime", "gpu", "--runtime must be auto, host or device, got gpu"),
                List.of("--schedule", "linear", "--schedule must be continuous or cosine, got linear"),
                List.of("--teacher-temp", "0", "--teacher-temp must be positive"),
                List.of("--probe-size", "5", "--probe-size must be 0 (off) or at least 20"),
                List.of("--models", "a,a", "--models lists a model twice: a,a"))) {
            List<String> args = new ArrayList<>(List.of(base));
            args.addAll(bad.subList(0, 2));
            assertOneLineError(run(args.toArray(String[]::new)), 2, bad.get(2));
        }
    }

    /** --precision sets the configuration's precision (fp32 stored as absent); an unknown value is a usage error. */
    @Test
    void precisionOptionReachesTheJobConfiguration() throws Exception {
        for (String[] p : new String[][]{{"bf16", "bf16"}, {"fp16", "fp16"}, {"fp32", null}}) {
            TrainCommand t = new TrainCommand();
            new picocli.CommandLine(t).parseArgs("--bootstrap", "b:1", "--preset", "test", "--precision", p[0]);
            assertEquals(p[1], t.options(dinostream.pipeline.job.Deployment.LOCAL).config().precision);
        }
        TrainCommand none = new TrainCommand();
        new picocli.CommandLine(none).parseArgs("--bootstrap", "b:1", "--preset", "test");
        assertEquals(DinoConfig.Precision.FP32, none.options(dinostream.pipeline.job.Deployment.LOCAL).config().precision());
        String[] base = {"train", "--bootstrap", "127.0.0.1:9", "--out", dir.resolve("run").toString(), "--precision"};
        assertOneLineError(run(concat(base, "bf17")), 2, "--precision: precision must be fp32, bf16 or fp16, got bf17");
        assertOneLineError(run("demo", "--out", dir.resolve("demo").toString(), "--precision", "fp8"), 2,
                "--precision: precision must be fp32, bf16 or fp16, got fp8");
    }

    /** demo --images is a budget of images trained: no clock or pace beside it, whole batches; refused before the run folder is made. */
    @Test
    void demoImagesBudgetIsValidated() {
        Path out = dir.resolve("demo-budget");
        String[] base = {"demo", "--out", out.toString(), "--batch", "64"};
        assertOneLineError(run(concat(base, "--images", "640", "--duration", "90s")), 2, "--images and --duration do not go together");
        assertOneLineError(run(concat(base, "--images", "640", "--rate", "100")), 2, "--images and --rate do not go together");
        assertOneLineError(run(concat(base, "--images", "100")), 2, "--images must be a multiple of --batch (64)");
        assertOneLineError(run(concat(base, "--images", "0")), 2, "--images must be positive");
        assertOneLineError(run(concat(base, "--images", "many")), 2, "--images");
        assertFalse(Files.exists(out), "refused before the run folder is made");
        // A budget beyond the source goes through it again, in the same order.
        assertArrayEquals(new int[]{2, 0, 1, 2, 0, 1, 2}, DemoCommand.cycled(new int[]{2, 0, 1}, 7));
        assertArrayEquals(new int[]{2, 0}, DemoCommand.cycled(new int[]{2, 0, 1}, 2));
    }

    private static String[] concat(String[] a, String... b) {
        String[] r = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    /** The command line becomes typed options in one place; the derived values are there before the topology is built. */
    @Test
    void trainBuildsTypedOptions() throws Exception {
        TrainCommand local = new TrainCommand();
        new picocli.CommandLine(local).parseArgs("--bootstrap", "b:1", "--preset", "test", "--models", "a,b", "--device", "cuda:1",
                "--runtime", "host", "--schedule", "cosine", "--horizon", "500", "--teacher-temp", "0.07", "--no-embed", "--probe-size", "0",
                "--out", dir.resolve("run").toString(), "--init-state", state.toString(), "--kafka-property", "security.protocol=SSL");
        dinostream.pipeline.job.JobOptions o = local.options(dinostream.pipeline.job.Deployment.LOCAL);
        assertEquals(List.of("a", "b"), o.models());
        assertEquals("dinostream-default", o.groupId());
        assertEquals(Map.of("security.protocol", "SSL"), o.kafkaProperties());
        assertEquals("cuda:1", o.trainer().device().toString());
        assertEquals(dinostream.model.runtime.RuntimeOptions.Runtime.HOST, o.trainer().runtime());
        assertEquals(new dinostream.pipeline.train.TrainerOptions.Schedule(
                dinostream.pipeline.train.TrainerOptions.Schedule.Kind.COSINE, 100, 500, 0.07), o.trainer().schedule());
        assertEquals(0, o.trainer().broadcastEvery(), "no embedder and no probe: no teachers sent");
        assertEquals(Runtime.getRuntime().availableProcessors(), o.trainer().threads());
        assertEquals(dir.resolve("run").toAbsolutePath().toString(), o.trainer().runDir());
        assertEquals(dir.resolve("run/checkpoints").toAbsolutePath().toUri().toString(), o.checkpointDir());
        assertEquals(state.toAbsolutePath().toUri().toString(), o.trainer().initState(), "--init-state: the old name of --init-from");
        assertEquals("test", o.config().preset);
        assertEquals(0, o.trainer().replay().size(), "no replay buffer unless asked");
        assertEquals(dinostream.pipeline.dedup.DedupOptions.OFF, o.dedup());

        TrainCommand replaying = new TrainCommand();
        new picocli.CommandLine(replaying).parseArgs("--bootstrap", "b:1", "--preset", "test", "--out", dir.resolve("run").toString(),
                "--replay-size", "5000", "--dedup");
        dinostream.pipeline.job.JobOptions r = replaying.options(dinostream.pipeline.job.Deployment.LOCAL);
        var replay = r.trainer().replay();
        assertEquals(List.of(5000, 0.5, 64L << 20), List.of(replay.size(), replay.ratio(), replay.maxBytes()), "a size alone replays half of each batch");
        assertEquals(dinostream.pipeline.dedup.DedupOptions.on(4), r.dedup());

        TrainCommand cluster = new TrainCommand();
        new picocli.CommandLine(cluster).parseArgs("--bootstrap", "b:1", "--snapshot-dir", "s3://bucket/snapshots");
        dinostream.pipeline.job.JobOptions c = cluster.options(dinostream.pipeline.job.Deployment.CLUSTER);
        assertEquals(null, c.checkpointInterval(), "the cluster's execution.checkpointing.interval");
        assertEquals(null, c.checkpointDir());
        assertEquals(null, c.trainer().runDir());
        assertEquals(0, c.trainer().threads(), "on a cluster: the TaskManager's cores per slot");
        assertEquals("s3://bucket/snapshots", c.trainer().snapshotDir());
        assertEquals("fmnist-tiny", c.config().preset);
    }

    /**
     * A file whose backbone is not the preset's is one usage error before the job starts, naming the
     * preset that fits; an unreadable one too; the .pth options without a file are refused.
     */
    @Test
    void anInitFileThatDoesNotFitThePresetIsOneUsageError() {
        String run = dir.resolve("run").toString();
        // The default preset (fmnist-tiny; the demo's fmnist-small) against a state of the test preset.
        for (String option : List.of("--init-from", "--init-state")) {
            assertOneLineError(run("train", "--bootstrap", "127.0.0.1:9", "--out", run, option, state.toString()), 2,
                    "--init-from " + state.toAbsolutePath() + " holds a ViT with dim 32, depth 2, heads 2, img_size 16, but preset fmnist-tiny has "
                            + "dim 192, depth 6, heads 3, img_size 28: use --preset test (its backbone is the file's)");
        }
        assertOneLineError(run("demo", "--out", dir.resolve("demo").toString(), "--init-from", state.toString()), 2,
                "but preset fmnist-small has dim 128, depth 4", "use --preset test");
        assertFalse(Files.exists(dir.resolve("demo")), "refused before the run folder is made");
        assertOneLineError(run("train", "--bootstrap", "127.0.0.1:9", "--out", run, "--init-from", dir.resolve("none.pth").toString()), 2,
                "--init-from: cannot read " + dir.resolve("none.pth").toAbsolutePath(), "no such file");
        assertOneLineError(run("train", "--bootstrap", "127.0.0.1:9", "--out", run, "--heads", "6"), 2,
                "--heads, --arch and --checkpoint-key are for an --init-from .pth file");
        assertOneLineError(run("train", "--bootstrap", "127.0.0.1:9", "--out", run, "--preset", "test", "--init-from", state.toString(),
                "--checkpoint-key", "teacher"), 2, "is a safetensors state: heads, arch and checkpoint key are for a .pth file");
    }

    /**
     * The job's configuration is the file's shapes with the preset's rest, decided once on the
     * client; on a cluster a file the client cannot read is left to the trainers.
     */
    @Test
    void theJobConfigurationTakesTheFilesHead() throws Exception {
        DinoConfig wide = Presets.get("test");
        wide.outDim = 96;
        wide.nLocal = 5;   // not a shape: the preset's stays
        Path file = dir.resolve("wide.safetensors");
        DinoState.init(wide, 3).save(file);
        TrainCommand local = new TrainCommand();
        new picocli.CommandLine(local).parseArgs("--bootstrap", "b:1", "--preset", "test", "--init-from", file.toString(),
                "--out", dir.resolve("run").toString());
        dinostream.pipeline.job.JobOptions o = local.options(dinostream.pipeline.job.Deployment.LOCAL);
        assertEquals(96, o.config().outDim);
        assertEquals(Presets.get("test").nLocal, o.config().nLocal);
        assertEquals(null, o.config().preset, "no longer the test preset");
        assertEquals(o.config().toJson(), o.embedder().config().toJson(), "every operator gets the merged configuration");
        assertEquals(o.config().toJson(), o.probe().model().get().toJson());

        TrainCommand cluster = new TrainCommand();
        new picocli.CommandLine(cluster).parseArgs("--bootstrap", "b:1", "--snapshot-dir", "s3://bucket/snapshots", "--preset", "test",
                "--init-from", "nofs://bucket/init.pth", "--heads", "2");
        dinostream.pipeline.job.JobOptions c = cluster.options(dinostream.pipeline.job.Deployment.CLUSTER);
        assertEquals("nofs://bucket/init.pth", c.trainer().initState());
        assertEquals(new dinostream.pipeline.train.TrainerOptions.InitImport(2, null, null), c.trainer().initImport());
        assertEquals("test", c.config().preset, "not readable here: the preset, checked by the trainers");
    }

    /** An official .pth: the same check against the preset, its full checkpoint's configuration otherwise the preset's. */
    @Test
    void anOfficialPthIsCheckedAgainstThePreset() throws Exception {
        Path fixtures = Path.of(System.getProperty("basedir", ".")).resolve("../model/src/test/resources/fixtures/official-test");
        Path pth = fixtures.resolve("checkpoint.pth").toAbsolutePath().normalize();
        assertOneLineError(run("train", "--bootstrap", "127.0.0.1:9", "--out", dir.resolve("run").toString(), "--preset", "vit-s16",
                "--init-from", pth.toString()), 2, "--init-from " + pth + " holds a ViT with dim 32, depth 2, patch 4, img_size 16, in_chans 1, but preset vit-s16 has dim 384, "
                        + "depth 12, patch 16, img_size 224, in_chans 3: use --preset test");
        // A release file (the default preset's crops do not fit its 8-px patches and 3 channels): its backbone is named all the same.
        Path rgb = fixtures.resolve("../official-rgb/backbone.pth").toAbsolutePath().normalize();
        assertOneLineError(run("train", "--bootstrap", "127.0.0.1:9", "--out", dir.resolve("run").toString(), "--init-from", rgb.toString()), 2,
                "--init-from " + rgb + " holds a ViT with dim 24, depth 1, patch 8, img_size 24, in_chans 3, but preset fmnist-tiny has dim 192, "
                        + "depth 6, patch 4, img_size 28, in_chans 1: use a --config with the file's backbone");
        assertOneLineError(run("train", "--bootstrap", "127.0.0.1:9", "--out", dir.resolve("run").toString(), "--preset", "test",
                "--init-from", pth.toString(), "--heads", "3"), 2, "--heads 3 does not divide the file's dim 32");
        TrainCommand local = new TrainCommand();
        new picocli.CommandLine(local).parseArgs("--bootstrap", "b:1", "--preset", "test", "--init-from", pth.toString(), "--heads", "2",
                "--out", dir.resolve("run").toString());
        dinostream.pipeline.job.JobOptions o = local.options(dinostream.pipeline.job.Deployment.LOCAL);
        assertEquals(Presets.get("test").toJson(), o.config().toJson());
        assertEquals(pth.toUri().toString(), o.trainer().initState());
        assertEquals(new dinostream.pipeline.train.TrainerOptions.InitImport(2, null, null), o.trainer().initImport());
    }
}
