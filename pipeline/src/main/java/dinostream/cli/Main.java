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
import java.util.Arrays;
import java.util.List;

/**
 * The {@code dinostream} command line. Every subcommand writes results to picocli's out writer and
 * logs to its err writer, so tests can run it in-process with captured streams and {@code --json}
 * keeps stdout to the JSON alone.
 *
 * <p>Failures are handled in one place ({@link #configure}): usage errors exit 2, failures while
 * running exit 1, each with a single {@code dinostream: error: ...} line on stderr; {@code -v}
 * adds the stack trace.
 */
@Command(name = "dinostream",
        mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        description = "DINO self-supervised training on image streams: state files, train steps, benchmarks.",
        subcommands = {DemoCommand.class, InitCommand.class, StepCommand.class, BenchCommand.class, ExportCommand.class, ProduceCommand.class, TrainCommand.class, EmbedCommand.class, KnnCommand.class, AttentionCommand.class, ReportCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    static final int EXIT_RUNTIME = 1;
    static final int EXIT_USAGE = 2;

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
        int rc = configure(new CommandLine(new Main()), out, err).execute(args);
        out.flush();
        err.flush();
        System.exit(rc);
    }

    /** A ready command line writing to the given streams (what {@link #main} runs, and tests use). */
    public static CommandLine commandLine(PrintWriter out, PrintWriter err) {
        return configure(new CommandLine(new Main()), out, err);
    }

    static CommandLine configure(CommandLine cl, PrintWriter out, PrintWriter err) {
        cl.setOut(out);
        cl.setErr(err);
        cl.setExecutionStrategy(Main::executeTurningErrorsIntoExceptions);
        cl.setParameterExceptionHandler(Main::onUsageError);
        cl.setExecutionExceptionHandler(Main::onRuntimeError);
        return cl;
    }

    /**
     * Runs the last subcommand as picocli's RunLast does, but also turns JVM errors (out of memory,
     * a missing native library) into exceptions, so they reach the handler instead of escaping
     * {@code execute} as a bare stack trace.
     */
    private static int executeTurningErrorsIntoExceptions(CommandLine.ParseResult pr) {
        try {
            return new CommandLine.RunLast().execute(pr);
        } catch (OutOfMemoryError e) {
            throw new CommandLine.ExecutionException(pr.commandSpec().commandLine(), "out of memory", new CliFailure(
                    "out of memory (" + e.getMessage() + "); give the JVM more with DINOSTREAM_JAVA_OPTS=-Xmx..., or use a smaller --batch", e));
        } catch (LinkageError e) {
            throw new CommandLine.ExecutionException(pr.commandSpec().commandLine(), "linkage error", new CliFailure(
                    "could not load a library: " + e, e));
        }
    }

    private static int onUsageError(ParameterException ex, String[] args) {
        CommandLine cl = ex.getCommandLine();
        PrintWriter err = cl.getErr();
        String msg = Errors.oneLine(stripPicocliPrefix(ex.getMessage()));
        String where = cl.getCommandSpec().qualifiedName(" ");
        err.println("dinostream: error: " + msg + " (see '" + where + " --help')");
        if (verbose(Arrays.asList(args))) ex.printStackTrace(err);
        err.flush();
        return EXIT_USAGE;
    }

    private static int onRuntimeError(Exception ex, CommandLine cl, CommandLine.ParseResult full) {
        PrintWriter err = cl.getErr();
        err.println("dinostream: error: " + Errors.describe(ex));
        if (verbose(full.originalArgs())) ex.printStackTrace(err);
        err.flush();
        return EXIT_RUNTIME;
    }

    private static boolean verbose(List<String> args) {
        for (String a : args) {
            if (a.equals("--")) return false;
            if (a.equals("-v") || a.equals("--verbose")) return true;
        }
        return false;
    }

    /** picocli starts some messages with "Error: " or a capital; ours already says "error:" and goes on in lower case. */
    private static String stripPicocliPrefix(String m) {
        if (m == null) return "invalid arguments";
        if (m.startsWith("Error: ")) m = m.substring("Error: ".length());
        if (m.length() > 1 && Character.isUpperCase(m.charAt(0)) && Character.isLowerCase(m.charAt(1))) {
            m = Character.toLowerCase(m.charAt(0)) + m.substring(1);
        }
        return m;
    }
}
