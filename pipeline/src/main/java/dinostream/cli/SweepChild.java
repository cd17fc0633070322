package dinostream.cli;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs one dinostream command line of a sweep in a child JVM: each run gets a fresh process (its own
 * MiniCluster, broker and heap), and a run that crashes takes only itself down. An interface so the
 * sweep's bookkeeping is tested without starting any.
 */
interface SweepChild {
    /**
     * @param args the command line after "dinostream"
     * @param log  where the child's stderr goes (kept: the record of a failed run)
     */
    Result run(List<String> args, Path log) throws IOException, InterruptedException;

    /** @param stdout what the child printed on stdout (a --json command's one object) */
    record Result(int exitCode, String stdout, double seconds) {}

    /** The java and class path of this process, and its -X, -D and --add-opens options (the launcher's DINOSTREAM_JAVA_OPTS). */
    final class Jvm implements SweepChild {
        @Override
        public Result run(List<String> args, Path log) throws IOException, InterruptedException {
            Files.createDirectories(log.toAbsolutePath().getParent());
            Path out = Files.createTempFile(log.toAbsolutePath().getParent(), "stdout", ".txt");
            try {
                long t0 = System.nanoTime();
                Process p = new ProcessBuilder(command(args)).redirectOutput(out.toFile()).redirectError(log.toFile()).start();
                // A sweep that is stopped stops its child too (demo takes SIGTERM as Ctrl-C: it ends cleanly).
                Thread stop = new Thread(p::destroy, "sweep-child-stop");
                Runtime.getRuntime().addShutdownHook(stop);
                int rc;
                try {
                    rc = p.waitFor();
                } catch (InterruptedException e) {
                    p.destroy();
                    throw e;
                } finally {
                    try {
                        Runtime.getRuntime().removeShutdownHook(stop);
                    } catch (IllegalStateException shuttingDown) {
                        // the hook is running: it stops the child
                    }
                }
                return new Result(rc, Files.readString(out, StandardCharsets.UTF_8), (System.nanoTime() - t0) / 1e9);
            } finally {
                Files.deleteIfExists(out);
            }
        }

        static List<String> command(List<String> args) {
            List<String> c = new ArrayList<>();
            c.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
            for (String o : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
                if (o.startsWith("-X") || o.startsWith("-D") || o.startsWith("--add-opens=") || o.startsWith("--add-exports=")) c.add(o);
            }
            c.add("-cp");
            c.add(System.getProperty("java.class.path"));
            c.add(Main.class.getName());
            c.addAll(args);
            return c;
        }
    }

    /** The last {@code lines} lines of a log, for the record of a failed run; empty when there is none. */
    static String tail(Path log, int lines) {
        try {
            List<String> all = Files.readAllLines(log, StandardCharsets.UTF_8);
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException | RuntimeException e) {
            return "";
        }
    }
}
