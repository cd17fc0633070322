package dinostream.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.model.dino.DinoConfig;
import dinostream.model.export.InferenceExport;
import dinostream.model.io.DinoState;
import dinostream.model.runtime.RuntimeOptions;
import dinostream.model.runtime.TeacherInference;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

@Command(name = "embed", mixinStandardHelpOptions = true,
        description = {"Embedding throughput of the exported teacher backbone (" + InferenceExport.BACKBONE_FILE
                + ") in ONNX Runtime on this CPU, side by side with PyTorch eager in the same run.",
                "The PyTorch side is the reference ViT's forward, run by --torch-script (pipeline/src/test/python/bench_embed_torch.py,",
                "which imports the PyTorch reference from --anchors DIR, outside this repository) as a subprocess of --python;",
                "without them, or when it fails to start, that side is skipped with a note. Both sides get the same batch shape and",
                "thread count; after --warmup untimed forwards each, --rounds rounds alternate --iterations timed forwards of",
                "ONNX Runtime then of PyTorch, so that both see the same background load. Rates are batch / median forward time;",
                "ratio_best compares the fastest forward of each side (the least disturbed by other processes on shared cores)."})
final class BenchEmbed implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--preset", paramLabel = "P", required = true, description = "The configuration to time (e.g. vit-s16).")
    String preset;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "8", description = "Images per forward (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--size", paramLabel = "S", defaultValue = "0",
            description = "Image side in pixels, a multiple of the patch size (default: the preset's image size).")
    int size;

    @Option(names = "--threads", paramLabel = "T", defaultValue = "0", description = "Threads of both runtimes (default: all cores).")
    int threads;

    @Option(names = "--iterations", paramLabel = "N", defaultValue = "3", description = "Timed forwards per runtime and round (default: ${DEFAULT-VALUE}).")
    int iterations;

    @Option(names = "--rounds", paramLabel = "R", defaultValue = "4", description = "Alternating rounds (default: ${DEFAULT-VALUE}).")
    int rounds;

    @Option(names = "--warmup", paramLabel = "W", defaultValue = "2", description = "Untimed forwards per runtime first (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--torch-script", paramLabel = "FILE", description = "bench_embed_torch.py; without it the PyTorch side is skipped.")
    Path torchScript;

    @Option(names = "--anchors", paramLabel = "DIR", description = "Directory of the PyTorch reference dino_ref.py, passed to --torch-script.")
    Path anchors;

    @Option(names = "--python", paramLabel = "EXE", defaultValue = "/usr/bin/python3", description = "Python with torch (default: ${DEFAULT-VALUE}).")
    String python;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "0", description = "Seed of the weights and the images (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--json", description = "Print one JSON object on stdout instead of a table.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        checkOptions();
        PrintWriter err = spec.commandLine().getErr();
        DinoConfig cfg = ModelOptions.preset(spec, preset);
        int side = size == 0 ? cfg.imgSize : size;
        try {
            InferenceExport.tokenCount(cfg, side, side);
        } catch (IllegalArgumentException e) {
            usage("--size: " + e.getMessage());
        }
        RuntimeOptions options = RuntimeOptions.cpu().withThreads(threads);
        int t = options.effectiveThreads();
        double[] loadBefore = Proc.loadAverage();
        ObjectNode o = Json.object();

        err.printf("[bench] %s, batch %d of %dx%d, %d thread%s: exporting the teacher backbone...%n", preset, batch, side, side, t, t == 1 ? "" : "s");
        long t0 = System.nanoTime();
        DinoState state = DinoState.init(cfg, seed);
        byte[] onnx = InferenceExport.backboneModel(state);
        long t1 = System.nanoTime();
        float[] pixels = randomImages(cfg.inChans * side * side);
        double[] ortMs = new double[rounds * iterations];
        double[] torchMs = new double[rounds * iterations];
        try (TeacherInference ort = new TeacherInference(onnx, options);
             TorchSide torch = TorchSide.start(this, cfg, side, t, err)) {
            long t2 = System.nanoTime();
            err.printf("[bench] exported in %.0f ms; session and PyTorch side ready in %.0f ms%s%n", (t1 - t0) / 1e6, (t2 - t1) / 1e6,
                    torch.note == null ? "" : "; PyTorch skipped: " + torch.note);
            for (int i = 0; i < warmup; i++) ort.embed(pixels, batch, side, side);
            torch.run(warmup);
            for (int r = 0; r < rounds; r++) {
                for (int i = 0; i < iterations; i++) {
                    long a = System.nanoTime();
                    ort.embed(pixels, batch, side, side);
                    ortMs[r * iterations + i] = (System.nanoTime() - a) / 1e6;
                }
                double[] tm = torch.run(iterations);
                if (tm != null) System.arraycopy(tm, 0, torchMs, r * iterations, iterations);
                err.printf("[bench] round %d/%d: ONNX Runtime median %.1f ms%s%n", r + 1, rounds,
                        median(Arrays.copyOfRange(ortMs, r * iterations, (r + 1) * iterations)),
                        tm == null ? "" : String.format(", PyTorch median %.1f ms", median(tm)));
            }
            o.put("torch", torch.version);
            if (torch.note != null) o.put("torch_note", torch.note);
            else o.put("torch_threads", torch.threads);
            boolean timed = torch.note == null;
            double ortRate = batch / (median(ortMs) / 1000);
            o.put("ort_images_per_s", Json.round(ortRate, 2));
            if (timed) {
                double torchRate = batch / (median(torchMs) / 1000);
                o.put("torch_images_per_s", Json.round(torchRate, 2));
                o.put("ratio", Json.round(ortRate / torchRate, 3));
            } else {
                o.putNull("torch_images_per_s");
                o.putNull("ratio");
            }
            o.put("ort_ms_median", Json.round(median(ortMs), 2));
            o.put("ort_ms_min", Json.round(Arrays.stream(ortMs).min().orElse(Double.NaN), 2));
            if (timed) {
                o.put("torch_ms_median", Json.round(median(torchMs), 2));
                o.put("torch_ms_min", Json.round(Arrays.stream(torchMs).min().orElse(Double.NaN), 2));
                // On shared cores the fastest forward of each side is the least disturbed one.
                o.put("ratio_best", Json.round(Arrays.stream(torchMs).min().orElse(Double.NaN)
                        / Arrays.stream(ortMs).min().orElse(Double.NaN), 3));
            }
        }
        double[] loadAfter = Proc.loadAverage();
        o.put("preset", preset);
        o.put("batch", batch);
        o.put("size", side);
        o.put("threads", t);
        o.put("iterations", iterations);
        o.put("rounds", rounds);
        o.put("warmup", warmup);
        o.put("export_ms", Json.round((t1 - t0) / 1e6, 1));
        Proc.putRunEnvironment(o, loadBefore, loadAfter);

        if (json) Json.print(spec.commandLine().getOut(), o);
        else printTable(spec.commandLine().getOut(), o);
        return 0;
    }

    /** Seeded N(0, 1) pixels, one image repeated: what normalized images look like to the network. */
    private float[] randomImages(int perImage) {
        float[] x = new float[batch * perImage];
        SplittableRandom rng = new SplittableRandom(seed ^ 0x5DEECE66DL);
        for (int i = 0; i < perImage; i++) x[i] = (float) rng.nextGaussian();
        for (int b = 1; b < batch; b++) System.arraycopy(x, 0, x, b * perImage, perImage);
        return x;
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private void checkOptions() {
        if (batch < 1) usage("--batch must be at least 1, got " + batch);
        if (size < 0) usage("--size must be positive, got " + size);
        if (threads < 0) usage("--threads must be >= 0 (0: all cores), got " + threads);
        if (iterations < 1) usage("--iterations must be at least 1, got " + iterations);
        if (rounds < 1) usage("--rounds must be at least 1, got " + rounds);
        if (warmup < 0) usage("--warmup must be >= 0, got " + warmup);
        if (torchScript != null && anchors == null) usage("--torch-script needs --anchors DIR (where the PyTorch reference dino_ref.py is)");
    }

    private void usage(String msg) {
        throw new ParameterException(spec.commandLine(), msg);
    }

    private static void printTable(PrintWriter out, ObjectNode o) {
        out.printf("embed: %s, batch %d of %dx%d, %d thread%s, %d round%s of %d timed forwards after %d warm-up%n",
                o.get("preset").asText(), o.get("batch").asInt(), o.get("size").asInt(), o.get("size").asInt(),
                o.get("threads").asInt(), o.get("threads").asInt() == 1 ? "" : "s", o.get("rounds").asInt(),
                o.get("rounds").asInt() == 1 ? "" : "s", o.get("iterations").asInt(), o.get("warmup").asInt());
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[]{"ONNX Runtime images/s", o.get("ort_images_per_s").asText() + "  (median " + o.get("ort_ms_median").asText() + " ms)"});
        if (o.has("torch_note")) rows.add(new String[]{"PyTorch", "skipped: " + o.get("torch_note").asText()});
        else {
            rows.add(new String[]{"PyTorch images/s", o.get("torch_images_per_s").asText() + "  (median " + o.get("torch_ms_median").asText() + " ms)"});
            rows.add(new String[]{"ratio (ORT / PyTorch)", o.get("ratio").asText() + "  (fastest forwards: " + o.get("ratio_best").asText() + ")"});
        }
        rows.add(new String[]{"load before / after", o.get("loadavg_before") + " / " + o.get("loadavg_after")});
        rows.add(new String[]{"cores", o.get("cores").asText()});
        rows.add(new String[]{"onnxruntime / torch", o.get("onnxruntime").asText() + " / " + o.get("torch").asText()});
        for (String[] r : rows) out.printf("  %-24s %s%n", r[0], r[1]);
        out.flush();
    }

    /** The PyTorch subprocess (bench_embed_torch.py's line protocol), or a note saying why there is none. */
    static final class TorchSide implements AutoCloseable {
        final Process process;
        final BufferedReader in;
        final Writer outToScript;
        final String note;
        final String version;
        final int threads;

        private TorchSide(Process p, BufferedReader in, Writer out, String note, String version, int threads) {
            this.process = p;
            this.in = in;
            this.outToScript = out;
            this.note = note;
            this.version = version;
            this.threads = threads;
        }

        static TorchSide skipped(String note) {
            return new TorchSide(null, null, null, note, null, 0);
        }

        static TorchSide start(BenchEmbed b, DinoConfig cfg, int side, int threads, PrintWriter err) {
            if (b.torchScript == null) return skipped("no --torch-script given");
            if (!Files.isRegularFile(b.torchScript)) return skipped("--torch-script " + b.torchScript + " is not a file");
            ProcessBuilder pb = new ProcessBuilder(b.python, b.torchScript.toString(), "--anchors", b.anchors.toString(),
                    "--config", cfg.toJson(), "--batch", Integer.toString(b.batch), "--size", Integer.toString(side),
                    "--threads", Integer.toString(threads), "--seed", Long.toString(b.seed));
            // Idle OpenMP workers must sleep while ONNX Runtime runs, or they steal its cores.
            pb.environment().put("OMP_WAIT_POLICY", "PASSIVE");
            pb.redirectError(ProcessBuilder.Redirect.INHERIT);
            Process p;
            try {
                p = pb.start();
            } catch (IOException e) {
                return skipped(b.python + " could not start: " + e.getMessage());
            }
            BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
            Writer out = new OutputStreamWriter(p.getOutputStream(), StandardCharsets.UTF_8);
            try {
                String line = in.readLine();
                JsonNode ready = line == null ? null : Json.MAPPER.readTree(line);
                if (ready == null || !ready.path("ready").asBoolean()) {
                    p.destroy();
                    return skipped(b.torchScript + " did not start (is torch installed for " + b.python + "? see its stderr above)");
                }
                err.printf("[bench] PyTorch %s ready, %d threads%n", ready.path("torch").asText(), ready.path("threads").asInt());
                return new TorchSide(p, in, out, null, ready.path("torch").asText(), ready.path("threads").asInt());
            } catch (IOException e) {
                p.destroy();
                return skipped(b.torchScript + " did not start: " + e.getMessage());
            }
        }

        /** Per-forward milliseconds of {@code k} forwards; null when skipped. */
        double[] run(int k) throws IOException {
            if (note != null || k == 0) return null;
            outToScript.write("run " + k + "\n");
            outToScript.flush();
            String line = in.readLine();
            if (line == null) throw new CliFailure("the PyTorch side exited (see its stderr above)");
            JsonNode ms = Json.MAPPER.readTree(line).path("ms");
            if (!ms.isArray() || ms.size() != k) throw new CliFailure("the PyTorch side answered " + line);
            double[] v = new double[k];
            for (int i = 0; i < k; i++) v[i] = ms.get(i).asDouble();
            return v;
        }

        @Override
        public void close() throws IOException, InterruptedException {
            if (process == null) return;
            try {
                outToScript.write("quit\n");
                outToScript.close();
            } catch (IOException e) {
                // it has gone already
            }
            if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly();
        }
    }
}
