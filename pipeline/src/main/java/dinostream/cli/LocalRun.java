package dinostream.cli;

import java.io.PrintWriter;
import java.nio.file.Path;

/** What a local `train --bounded` does after its job: the run report. Not in the job jar. */
final class LocalRun {
    private LocalRun() {}

    /** Writes OUT/report.html; a failure is a warning, never the run's result. */
    static void report(Path runDir, String snapshotDir, PrintWriter err) {
        Path report = runDir.resolve("report.html");
        try {
            dinostream.pipeline.viz.Report.write(runDir, snapshotDir, report);
            err.println("report: " + report);
        } catch (Exception | LinkageError e) {
            err.println("dinostream: warning: no report: " + Errors.describe(e instanceof Exception x ? x : new RuntimeException(e)));
        }
    }
}
