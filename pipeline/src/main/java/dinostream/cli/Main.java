package dinostream.cli;

import dinostream.pipeline.job.Deployment;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ScopeType;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;

/**
 * The {@code dinostream} command line. Every subcommand writes results to picocli's out writer and
 * logs to its err writer, so tests can run it in-process with captured streams and {@code --json}
 * keeps stdout to the JSON alone.
 *
 * <p>Failures are handled in one place ({@link CommandLines}): usage errors exit 2, failures while
 * running exit 1, each with a single {@code dinostream: error: ...} line on stderr; {@code -v}
 * adds the stack trace.
 */
@Command(name = "dinostream",
        mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        description = "DINO self-supervised training on image streams: state files, train steps, benchmarks.",
        subcommands = {DemoCommand.class, InitCommand.class, StepCommand.class, BenchCommand.class, ExportCommand.class, ParityCommand.class, ImportCommand.class, ProduceCommand.class, TrainCommand.class, EmbedCommand.class, KnnCommand.class, SweepCommand.class, AttentionCommand.class, ReportCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    @Spec
    CommandSpec spec;

    // Inherited so that "dinostream step -v ..." works; the handlers look for it in the parsed arguments.
    @Option(names = {"-v", "--verbose"}, scope = ScopeType.INHERIT,
            description = "Print the stack trace of an error after its one-line message.")
    boolean verbose;

    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "missing subcommand (one of: "
                + String.join(", ", spec.subcommands().keySet().stream().filter(n -> !n.equals("help")).toList()) + ")");
    }

    /**
     * The launcher's entry point. Locally it ends the process with the exit code; when Flink's client
     * calls it (this jar given to {@code flink run} or the REST API) it behaves as {@link JobMain}:
     * no System.exit, an error is an exception for Flink to report.
     */
    public static void main(String[] args) {
        if (Deployment.current() == Deployment.CLUSTER) {
            JobMain.runUnderFlink(new Main(), args);
            return;
        }
        PrintWriter out = new PrintWriter(System.out, true, StandardCharsets.UTF_8);
        PrintWriter err = new PrintWriter(System.err, true, StandardCharsets.UTF_8);
        int rc = CommandLines.configure(new CommandLine(new Main()), out, err).execute(args);
        out.flush();
        err.flush();
        System.exit(rc);
    }

    /** A ready command line writing to the given streams (what {@link #main} runs, and tests use). */
    public static CommandLine commandLine(PrintWriter out, PrintWriter err) {
        return CommandLines.configure(new CommandLine(new Main()), out, err);
    }
}
