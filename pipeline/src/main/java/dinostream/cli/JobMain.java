package dinostream.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;

/**
 * The entry point of the job jar ({@code dinostream-job.jar}): what {@code flink run}, the REST API
 * ({@code POST /jars/<id>/run}), the web UI and application mode call, possibly inside the
 * JobManager's own JVM. It never calls System.exit: a bad argument or a failure is printed as the
 * usual one line and thrown, so Flink reports it (the REST API answers with it) and the JobManager
 * lives on.
 */
@Command(name = "dinostream",
        mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        description = "dinostream on a Flink cluster: submit the training job or a backfill.",
        subcommands = {TrainCommand.class, EmbedCommand.class, CommandLine.HelpCommand.class})
public final class JobMain implements Runnable {
    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "missing subcommand (one of: train, embed)");
    }

    public static void main(String[] args) {
        runUnderFlink(new JobMain(), args);
    }

    /** Runs a command line under Flink's client: output to the process's streams, an error thrown. */
    static void runUnderFlink(Object commands, String[] args) {
        PrintWriter out = new PrintWriter(System.out, true, StandardCharsets.UTF_8);
        StringWriter captured = new StringWriter();
        PrintWriter err = new PrintWriter(new Tee(new PrintWriter(System.err, true, StandardCharsets.UTF_8), captured), true);
        int rc = CommandLines.configure(new CommandLine(commands), out, err).execute(args);
        out.flush();
        err.flush();
        if (rc != 0) throw new JobSubmissionError(lastError(captured.toString()));
    }

    /** The "dinostream: error: ..." line the handlers printed (the last one). */
    static String lastError(String printed) {
        String found = null;
        for (String line : printed.split("\\R")) if (line.startsWith("dinostream: error: ")) found = line;
        return found != null ? found : "dinostream: error: the command failed";
    }

    /** What Flink reports when the entry point fails: the one line, no JVM exit. */
    public static final class JobSubmissionError extends RuntimeException {
        JobSubmissionError(String message) {
            super(message);
        }
    }

    /** Writes to the stream and keeps a copy. */
    private static final class Tee extends Writer {
        private final Writer a, b;

        Tee(Writer a, Writer b) {
            this.a = a;
            this.b = b;
        }

        @Override
        public void write(char[] cbuf, int off, int len) throws java.io.IOException {
            a.write(cbuf, off, len);
            b.write(cbuf, off, len);
        }

        @Override
        public void flush() throws java.io.IOException {
            a.flush();
            b.flush();
        }

        @Override
        public void close() throws java.io.IOException {
            flush();
        }
    }
}
