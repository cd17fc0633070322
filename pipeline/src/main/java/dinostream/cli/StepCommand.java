package dinostream.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.TrainStep;
import dinostream.model.io.DinoState;
import dinostream.model.io.TensorData;
import dinostream.model.runtime.RuntimeOptions;
import dinostream.model.runtime.TrainSession;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "step", mixinStandardHelpOptions = true,
        description = {"Run N DINO train steps from a state on one batch of crops and write the new state.",
                "The configuration comes from the state's metadata. The output holds the state plus a float32 scalar 'loss' (of the last step)."})
final class StepCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--state", paramLabel = "IN.safetensors", required = true, description = "The state to start from.")
    Path state;

    @Option(names = "--crops", paramLabel = "CROPS.safetensors", required = true,
            description = "crops/0 .. crops/{V-1}, each float32 [B, C, H, W], normalized; the first two global.")
    Path crops;

    @Option(names = "--lr", paramLabel = "X", required = true, description = "Learning rate.")
    double lr;

    @Option(names = "--weight-decay", paramLabel = "X", required = true, description = "AdamW weight decay (regularized group).")
    double weightDecay;

    @Option(names = "--teacher-temp", paramLabel = "X", required = true, description = "Teacher temperature.")
    double teacherTemp;

    @Option(names = "--momentum", paramLabel = "X", required = true, description = "Teacher EMA momentum, in [0, 1].")
    double momentum;

    @Option(names = "--freeze-last-layer", description = "Leave head.last_layer and its optimizer state untouched.")
    boolean freezeLastLayer;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "1", description = "Steps to run on the same crops (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--threads", paramLabel = "T", defaultValue = "0", description = "ONNX Runtime intra-op threads (default: all cores).")
    int threads;

    @picocli.CommandLine.Mixin
    RuntimeChoice runtime;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "0",
            description = "Seed of the stochastic-depth masks, combined with the state's step (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--out", paramLabel = "OUT.safetensors", required = true, description = "Where to write the new state.")
    Path out;

    @Option(names = "--json", description = "Print {step, loss, teacher_entropy, kl, out} as JSON on stdout.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        checkOptions();
        PrintWriter err = spec.commandLine().getErr();
        DinoState in = DinoState.load(state);
        DinoConfig cfg = in.config();
        Crops c = Crops.read(crops, cfg);
        if (c.localSize() != 0 && c.localSize() != cfg.localSize) {
            // local_size only shapes the crop inputs (no state tensor depends on it), so the crops decide;
            // the written state records the size that was used.
            err.printf("note: local crops are %dx%d, the state's configuration says local_size %d; using %d%n",
                    c.localSize(), c.localSize(), cfg.localSize, c.localSize());
            cfg.localSize = c.localSize();
            in = DinoState.of(cfg, in.tensors());
        }

        long t0 = System.nanoTime();
        RuntimeOptions options = runtime.apply(RuntimeOptions.cpu().withThreads(threads), spec);
        TrainStep.Model model = TrainStep.buildFor(cfg, c.batch(), options.device() == RuntimeOptions.Device.CUDA);
        TrainSession.Hyper h = new TrainSession.Hyper((float) lr, (float) weightDecay, (float) teacherTemp, (float) momentum, freezeLastLayer);
        TrainSession.Stats last = null;
        long firstStep = in.step();
        // Distinct masks per invocation: a resumed run must not repeat the masks of its first step.
        long dropPathSeed = seed * 0x9E3779B97F4A7C15L + firstStep;
        DinoState result;
        long t1;
        try (TrainSession s = TrainSession.open(model, in, options, dropPathSeed)) {
            t1 = System.nanoTime();
            for (int i = 0; i < steps; i++) {
                last = s.run(c.buffers(), h)[0];
                if (!Float.isFinite(last.loss())) {
                    // DINO stops training on a non-finite loss; so does this, without writing a poisoned state.
                    throw new CliFailure("the loss is " + last.loss() + " at step " + last.step() + "; nothing written");
                }
            }
            result = s.state();
        }
        long t2 = System.nanoTime();

        Path parent = out.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        result.save(out, Map.of(DinoState.LOSS_KEY, TensorData.scalarFloat(last.loss())));

        err.printf("step %d: loss %.6f  teacher_entropy %.6f  kl %.6f  (%d step%s, batch %d, %.1f ms/step, build %.0f ms) -> %s%n",
                last.step(), last.loss(), last.teacherEntropy(), last.kl(), steps, steps == 1 ? "" : "s", c.batch(),
                (t2 - t1) / 1e6 / steps, (t1 - t0) / 1e6, out);
        if (json) {
            ObjectNode o = Json.object();
            o.put("step", last.step());
            o.put("loss", last.loss());
            o.put("teacher_entropy", last.teacherEntropy());
            o.put("kl", last.kl());
            o.put("out", out.toString());
            Json.print(spec.commandLine().getOut(), o);
        }
        return 0;
    }

    private void checkOptions() {
        if (steps < 1) usage("--steps must be at least 1, got " + steps);
        if (threads < 0) usage("--threads must be >= 0 (0: all cores), got " + threads);
        if (!(lr >= 0) || Double.isInfinite(lr)) usage("--lr must be a finite number >= 0, got " + lr);
        if (!(weightDecay >= 0) || Double.isInfinite(weightDecay)) usage("--weight-decay must be a finite number >= 0, got " + weightDecay);
        if (!(teacherTemp > 0) || Double.isInfinite(teacherTemp)) usage("--teacher-temp must be a finite number > 0, got " + teacherTemp);
        if (!(momentum >= 0 && momentum <= 1)) usage("--momentum must be in [0, 1], got " + momentum);
    }

    private void usage(String msg) {
        throw new ParameterException(spec.commandLine(), msg);
    }
}
