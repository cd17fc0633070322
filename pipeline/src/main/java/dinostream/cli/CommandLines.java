package dinostream.cli;

import picocli.CommandLine;
import picocli.CommandLine.ParameterException;

import java.io.PrintWriter;
import java.util.Arrays;
import java.util.List;

/**
 * How every dinostream command line handles its failures, shared by the local launcher ({@link Main})
 * and the job jar's entry point ({@link JobMain}): usage errors exit 2, failures while running
 * exit 1, each with a single {@code dinostream: error: ...} line on stderr; {@code -v} adds the
 * stack trace.
 */
final class CommandLines {
    static final int EXIT_RUNTIME = 1;
    static final int EXIT_USAGE = 2;

    private CommandLines() {}

    static CommandLine configure(CommandLine cl, PrintWriter out, PrintWriter err) {
        cl.setOut(out);
        cl.setErr(err);
        cl.setExecutionStrategy(CommandLines::executeTurningErrorsIntoExceptions);
        cl.setParameterExceptionHandler(CommandLines::onUsageError);
        cl.setExecutionExceptionHandler(CommandLines::onRuntimeError);
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
