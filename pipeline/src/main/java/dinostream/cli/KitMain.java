package dinostream.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;

/**
 * The entry point of the GPU check kit's slim jar (ops/gpu/): the commands that need only the model
 * and ONNX Runtime (step, bench train-step, export, parity), so that the jar carries no Flink and no
 * Kafka. The same classes as {@link Main}'s commands.
 */
@Command(name = "dinostream", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = "dinostream's GPU check kit: the train step without Flink (ops/gpu/README.md).",
        subcommands = {StepCommand.class, KitMain.Bench.class, ExportCommand.class, ParityCommand.class, CommandLine.HelpCommand.class})
public final class KitMain implements Runnable {
    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "missing subcommand (one of: step, bench, export, parity)");
    }

    /** Only the train step's benchmark: the others run Flink. */
    @Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmarks (the kit has train-step only).",
            subcommands = {BenchTrainStep.class})
    static final class Bench implements Runnable {
        @Spec
        CommandSpec spec;

        @Override
        public void run() {
            throw new ParameterException(spec.commandLine(), "missing benchmark (train-step)");
        }
    }

    public static void main(String[] args) {
        PrintWriter out = new PrintWriter(System.out, true, StandardCharsets.UTF_8);
        PrintWriter err = new PrintWriter(System.err, true, StandardCharsets.UTF_8);
        int rc = CommandLines.configure(new CommandLine(new KitMain()), out, err).execute(args);
        out.flush();
        err.flush();
        System.exit(rc);
    }
}
