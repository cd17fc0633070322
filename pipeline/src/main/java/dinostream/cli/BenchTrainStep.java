package dinostream.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Schedules.TrainingSchedule;
import dinostream.model.dino.TrainStep;
import dinostream.model.io.DinoState;
import dinostream.model.runtime.MatMulPeak;
import dinostream.model.runtime.RuntimeOptions;
import dinostream.model.runtime.TrainSession;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

@Command(name = "train-step", mixinStandardHelpOptions = true,
        description = {"Time the DINO train step of a preset on random normalized crops (CPU, or CUDA with --device cuda).",
                "Builds the model, opens the session, runs --warmup untimed runs, then times --steps runs.",
                "Hyperparameters: DINO's post-warm-up values (lr 5e-4*batch/256, weight decay 0.04, teacher temperature 0.04,",
                "momentum 0.996), last layer not frozen, so every part of the step is timed."})
final class BenchTrainStep implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--preset", paramLabel = "P", required = true, description = "The configuration to time.")
    String preset;

    @picocli.CommandLine.Mixin
    PrecisionOption precision;

    @picocli.CommandLine.Mixin
    RuntimeChoice runtime;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "64", description = "Images per step (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "20", description = "Timed runs (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--warmup", paramLabel = "W", defaultValue = "3", description = "Untimed runs first (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--threads", paramLabel = "T", defaultValue = "0", description = "ONNX Runtime intra-op threads (default: all cores).")
    int threads;

    @Option(names = "--spinning", description = "Let idle ONNX Runtime threads spin (off by default: it slows shared cores).")
    boolean spinning;

    @Option(names = "--loop", paramLabel = "K", defaultValue = "1",
            description = "Steps per run through the ONNX Loop model; per-step times are run time / K (default: ${DEFAULT-VALUE}).")
    int loop;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "0", description = "Seed of the state and the random crops (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--json", description = "Print one JSON object on stdout instead of a table.")
    boolean json;

    @Option(names = "--profile", paramLabel = "FILE",
            description = {"Run ONNX Runtime's profiler, keep its trace in FILE, and add per-operator and per-phase sums of the timed runs",
                    "(the profiler itself slows the step a little: time without it)."})
    Path profile;

    @Option(names = "--ort", paramLabel = "KEY=VALUE",
            description = {"A further ONNX Runtime session setting, repeatable: a session config entry (e.g. session.intra_op.allow_spinning=1),",
                    "graph_optimization_level=basic|extended|all, memory_pattern=0|1, cpu_arena=0|1."})
    Map<String, String> ort = new LinkedHashMap<>();

    @Option(names = "--peak-size", paramLabel = "N", defaultValue = "2048",
            description = "Side of the fp32 N×N MatMul that measures the machine's peak in the same run; 0 skips it (default: ${DEFAULT-VALUE}).")
    int peakSize;

    @Override
    public Integer call() {
        checkOptions();
        PrintWriter err = spec.commandLine().getErr();
        DinoConfig cfg = precision.apply(ModelOptions.preset(spec, preset), spec);
        RuntimeOptions options = runtime.apply(RuntimeOptions.cpu().withThreads(threads).withSpinning(spinning).withOrt(ort), spec);
        if (profile != null && options.effectiveRuntime() == RuntimeOptions.Runtime.DEVICE) {
            // The C++ API gives the trace's name only through an allocator the preset does not expose.
            usage("--profile reads ONNX Runtime's trace through the host runtime: add --runtime host (same graph and kernels on the CPU)");
        }
        boolean gpu = options.device() == RuntimeOptions.Device.CUDA;
        String profilePrefix = profile == null ? null : profilePrefix();
        if (profilePrefix != null) options = options.withProfiling(profilePrefix);
        double[] loadBefore = Proc.loadAverage();

        err.printf("[bench] %s, batch %d, %d thread%s: building the train step%s...%n", preset + " " + cfg.precision().id(), batch, options.effectiveThreads(),
                options.effectiveThreads() == 1 ? "" : "s", loop > 1 ? " (Loop of " + loop + " steps)" : "");
        long t0 = System.nanoTime();
        TrainStep.Model model = loop == 1 ? TrainStep.buildFor(cfg, batch, gpu) : TrainStep.buildLoop(cfg, batch, loop);
        long t1 = System.nanoTime();
        DinoState state = DinoState.init(cfg, seed);
        err.printf("[bench] built %,d nodes (%.1f MB) in %.0f ms; opening the session...%n", model.nodes(), model.onnx().length / 1e6, (t1 - t0) / 1e6);

        FloatBuffer[] crops = randomCrops(cfg);
        TrainingSchedule schedule = TrainingSchedule.continuous(batch, 0);
        double[] runMs = new double[steps];
        float lossFirst = Float.NaN, lossLast = Float.NaN;
        long sessionNs;
        TraceProfile trace = null;
        // Timed alone: state init and crop generation above are not part of opening a session.
        long ts = System.nanoTime();
        try (TrainSession s = TrainSession.open(model, state, options, seed)) {
            sessionNs = System.nanoTime() - ts;
            err.printf("[bench] session ready in %.0f ms%n", sessionNs / 1e6);
            for (int r = 0; r < warmup + steps; r++) {
                TrainSession.Hyper[] h = new TrainSession.Hyper[loop];
                for (int k = 0; k < loop; k++) h[k] = schedule.at(s.step() + k, false);
                FloatBuffer[] in = new FloatBuffer[crops.length];
                for (int v = 0; v < in.length; v++) in[v] = crops[v].duplicate();
                long a = System.nanoTime();
                TrainSession.Stats[] st = s.run(in, h);
                double ms = (System.nanoTime() - a) / 1e6;
                if (r == 0) lossFirst = st[0].loss();
                lossLast = st[st.length - 1].loss();
                boolean timed = r >= warmup;
                if (timed) runMs[r - warmup] = ms;
                err.printf("[bench] %s %d/%d: %.1f ms%s  loss %.5f%n", timed ? "step" : "warm-up",
                        timed ? r - warmup + 1 : r + 1, timed ? steps : warmup, ms,
                        loop > 1 ? String.format(" (%.1f ms/step)", ms / loop) : "", lossLast);
            }
            if (profilePrefix != null) trace = readProfile(s.endProfiling());
        }
        MatMulPeak.Result peak = null;
        // The peak is a CPU measurement (the Java API's session, which has no CUDA provider in this build).
        if (peakSize > 0 && !gpu) {
            err.printf("[bench] fp32 peak: %d×%d MatMul, %d threads...%n", peakSize, peakSize, options.effectiveThreads());
            peak = MatMulPeak.measure(peakSize, options, 2, 7);
        }
        double[] loadAfter = Proc.loadAverage();

        double[] stepMs = Arrays.stream(runMs).map(x -> x / loop).sorted().toArray();
        double median = stepMs.length % 2 == 1 ? stepMs[stepMs.length / 2]
                : (stepMs[stepMs.length / 2 - 1] + stepMs[stepMs.length / 2]) / 2;
        ObjectNode o = Json.object();
        o.put("images_per_s", Json.round(batch / (median / 1000), 2));
        o.put("step_ms_median", Json.round(median, 3));
        o.put("step_ms_min", Json.round(stepMs[0], 3));
        o.put("step_ms_max", Json.round(stepMs[stepMs.length - 1], 3));
        o.put("step_ms_mean", Json.round(Arrays.stream(stepMs).average().orElse(Double.NaN), 3));
        Double rss = Proc.peakRssMb();
        if (rss != null) o.put("peak_rss_mb", Json.round(rss, 1));
        else o.putNull("peak_rss_mb");
        o.put("threads", options.effectiveThreads());
        o.put("spinning", spinning);
        o.put("preset", preset);
        o.put("batch", batch);
        o.put("steps", steps);
        o.put("warmup", warmup);
        o.put("loop", loop);
        o.put("precision", cfg.precision().id());
        o.put("device", options.device() == RuntimeOptions.Device.CUDA ? "cuda:" + options.deviceId() : "cpu");
        o.put("runtime", options.effectiveRuntime().name().toLowerCase(java.util.Locale.ROOT));
        o.put("native_products", gpu && loop == 1 && cfg.precision() != dinostream.model.dino.DinoConfig.Precision.FP32);
        o.set("config", Json.MAPPER.valueToTree(cfg));
        o.put("build_ms", Json.round((t1 - t0) / 1e6, 1));
        o.put("session_ms", Json.round(sessionNs / 1e6, 1));
        o.put("nodes", model.nodes());
        o.put("model_mb", Json.round(model.onnx().length / 1e6, 2));
        o.put("loss_first", lossFirst);
        o.put("loss_last", lossLast);
        // FLOPs the graph builder counted (MatMul/Gemm, 2·M·N·K, a Loop body times K), per step.
        double stepGflop = model.matmulFlops() / (double) loop / 1e9;
        double achieved = stepGflop / (median / 1000);
        o.put("step_gflop", Json.round(stepGflop, 3));
        o.put("flops_source", "graph builder: MatMul and Gemm nodes, 2*M*N*K");
        o.put("achieved_gflops", Json.round(achieved, 1));
        if (peak != null) {
            ObjectNode p = o.putObject("matmul_peak");
            p.put("n", peak.n());
            p.put("threads", peak.threads());
            p.put("runs", peak.runs());
            p.put("gflops_best", Json.round(peak.gflopsBest(), 1));
            p.put("gflops_median", Json.round(peak.gflopsMedian(), 1));
            o.put("peak_fraction", Json.round(achieved / peak.gflopsBest(), 3));
        } else {
            o.putNull("matmul_peak");
            o.putNull("peak_fraction");
        }
        if (!ort.isEmpty()) o.set("ort", Json.MAPPER.valueToTree(ort));
        Proc.putCpu(o);
        Proc.putRunEnvironment(o, loadBefore, loadAfter);
        if (trace != null) {
            o.put("profile_trace", profile.toString());
            o.set("profile", trace.toJson());
            trace.print(err, 25);
        }

        if (json) Json.print(spec.commandLine().getOut(), o);
        else printTable(spec.commandLine().getOut(), o);
        return 0;
    }

    /** ONNX Runtime appends a timestamp to the prefix; the trace is moved to --profile afterwards. */
    private String profilePrefix() {
        Path dir = profile.toAbsolutePath().getParent();
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new CliFailure("cannot create " + dir + ": " + e.getMessage());
        }
        return dir.resolve(".ort-profile").toString();
    }

    private TraceProfile readProfile(String written) {
        try {
            Files.move(Path.of(written), profile, StandardCopyOption.REPLACE_EXISTING);
            return TraceProfile.read(profile, warmup);
        } catch (IOException e) {
            throw new CliFailure("could not read ONNX Runtime's profile " + written + ": " + e.getMessage());
        }
    }

    /** Seeded N(0, 1) pixels: what normalized crops look like to the step (and no NaN can sneak in). */
    private FloatBuffer[] randomCrops(DinoConfig cfg) {
        SplittableRandom rng = new SplittableRandom(seed ^ 0x5DEECE66DL);
        FloatBuffer[] b = new FloatBuffer[cfg.nCrops()];
        for (int v = 0; v < b.length; v++) {
            long n = (long) loop;
            for (long d : TrainStep.cropShape(cfg, batch, v)) n *= d;
            if (n > Integer.MAX_VALUE / 4) throw new CliFailure("crops/" + v + " would hold " + n + " values, over 2 GB; use a smaller --batch or --loop");
            // Direct, native order: ONNX Runtime then reads the crops in place on every run.
            FloatBuffer f = ByteBuffer.allocateDirect((int) n * 4).order(ByteOrder.nativeOrder()).asFloatBuffer();
            for (int i = 0; i < n; i++) f.put(i, (float) rng.nextGaussian());
            b[v] = f;
        }
        return b;
    }

    private void checkOptions() {
        if (batch < 1) usage("--batch must be at least 1, got " + batch);
        if (steps < 1) usage("--steps must be at least 1, got " + steps);
        if (warmup < 0) usage("--warmup must be >= 0, got " + warmup);
        if (threads < 0) usage("--threads must be >= 0 (0: all cores), got " + threads);
        if (loop < 1) usage("--loop must be at least 1, got " + loop);
        if (peakSize < 0) usage("--peak-size must be >= 0 (0: skip), got " + peakSize);
    }

    private void usage(String msg) {
        throw new ParameterException(spec.commandLine(), msg);
    }

    private static void printTable(PrintWriter out, ObjectNode o) {
        out.printf("train step: %s, batch %d, %d thread%s, %d timed run%s after %d warm-up%s%s%n",
                o.get("preset").asText(), o.get("batch").asInt(), o.get("threads").asInt(), o.get("threads").asInt() == 1 ? "" : "s",
                o.get("steps").asInt(), o.get("steps").asInt() == 1 ? "" : "s", o.get("warmup").asInt(), o.get("warmup").asInt() == 1 ? "" : "s",
                o.get("loop").asInt() > 1 ? ", " + o.get("loop").asInt() + " steps per run (Loop)" : "");
        String[][] rows = {
                {"images/s", o.get("images_per_s").asText()},
                {"step ms (median)", o.get("step_ms_median").asText()},
                {"step ms (min / max)", o.get("step_ms_min").asText() + " / " + o.get("step_ms_max").asText()},
                {"build ms / session ms", o.get("build_ms").asText() + " / " + o.get("session_ms").asText()},
                {"nodes", o.get("nodes").asText()},
                {"peak RSS MB", o.get("peak_rss_mb").asText()},
                {"loss first / last", o.get("loss_first").asText() + " / " + o.get("loss_last").asText()},
                {"GFLOP per step", o.get("step_gflop").asText() + " (MatMul/Gemm)"},
                {"achieved GFLOP/s", o.get("achieved_gflops").asText()},
                {"fp32 MatMul peak", o.get("matmul_peak").isNull() ? "skipped"
                        : o.get("matmul_peak").get("gflops_best").asText() + " GFLOP/s best, "
                        + o.get("matmul_peak").get("gflops_median").asText() + " median (" + o.get("matmul_peak").get("n").asText() + "²)"},
                {"fraction of the peak", o.get("peak_fraction").asText()},
                {"CPU", o.get("cpu_model").asText() + " " + o.get("cpu_flags")},
                {"load before / after", o.get("loadavg_before") + " / " + o.get("loadavg_after")},
                {"java / onnxruntime", o.get("java").asText() + " / " + o.get("onnxruntime").asText()},
        };
        for (String[] r : rows) out.printf("  %-22s %s%n", r[0], r[1]);
        out.flush();
    }
}
