package dinostream.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.model.dino.ReferenceFixture;
import dinostream.model.runtime.RuntimeOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

@Command(name = "parity", mixinStandardHelpOptions = true,
        description = {"Run the PyTorch reference's train-step fixtures (model/src/test/resources/fixtures) on a device and runtime,",
                "and judge each by its precision: float32 states within 1e-4 (per-tensor relative error), bf16 and fp16 steps",
                "by the loss (within u) and the student's update (within 2u), u the format's unit roundoff. Exit 1 if one fails."})
final class ParityCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--fixtures", paramLabel = "DIR", required = true, description = "A folder of fixture folders.")
    Path fixtures;

    @picocli.CommandLine.Mixin
    RuntimeChoice runtime;

    @Option(names = "--threads", paramLabel = "T", defaultValue = "1", description = "ONNX Runtime intra-op threads (default: ${DEFAULT-VALUE}, as the tests).")
    int threads;

    @Option(names = "--json", description = "Print one JSON object on stdout instead of a table.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        if (!Files.isDirectory(fixtures)) throw new CliFailure("--fixtures: no folder " + fixtures);
        RuntimeOptions options = runtime.apply(RuntimeOptions.cpu().withThreads(threads), spec);
        PrintWriter err = spec.commandLine().getErr();
        List<Path> dirs = new ArrayList<>();
        try (Stream<Path> s = Files.list(fixtures)) {
            for (Path d : s.sorted().toList()) if (Files.isDirectory(d) && ReferenceFixture.runnable(d)) dirs.add(d);
        }
        if (dirs.isEmpty()) throw new CliFailure("--fixtures: no runnable fixture under " + fixtures);
        ObjectNode o = Json.object();
        o.put("device", options.device() == RuntimeOptions.Device.CUDA ? "cuda:" + options.deviceId() : "cpu");
        o.put("runtime", options.effectiveRuntime().name().toLowerCase(Locale.ROOT));
        ArrayNode rows = o.putArray("fixtures");
        boolean all = true;
        for (Path d : dirs) {
            long t0 = System.nanoTime();
            ReferenceFixture.Check c = ReferenceFixture.check(d, options);
            double ms = (System.nanoTime() - t0) / 1e6;
            all &= c.ok();
            ObjectNode r = rows.addObject();
            r.put("name", c.name());
            r.put("precision", c.precision());
            if (c.precision().equals("fp32")) {
                r.put("state_error", c.stateError());
                r.put("state_tolerance", c.stateTolerance());
                r.put("worst_tensor", c.worstKey());
            } else {
                r.put("update_error", c.updateError());
                r.put("update_tolerance", c.updateTolerance());
                r.put("loss_error", c.lossError());
                r.put("loss_tolerance", c.lossTolerance());
            }
            r.put("ok", c.ok());
            r.put("ms", Json.round(ms, 1));
            err.printf("[parity] %-20s %-4s %s  %s (%.0f ms)%n", c.name(), c.precision(), c.ok() ? "ok  " : "FAIL",
                    c.precision().equals("fp32") ? String.format("state %.2e <= %.0e", c.stateError(), c.stateTolerance())
                            : String.format("update %.2e <= %.2e, loss %.2e <= %.2e", c.updateError(), c.updateTolerance(),
                            c.lossError(), c.lossTolerance()), ms);
        }
        o.put("ok", all);
        if (json) Json.print(spec.commandLine().getOut(), o);
        else spec.commandLine().getOut().println(all ? "all " + dirs.size() + " fixtures within tolerance" : "a fixture is out of tolerance");
        return all ? 0 : 1;
    }
}
