package dinostream.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.pipeline.viz.Report;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "report", mixinStandardHelpOptions = true,
        description = {"Write the report of a run folder (the --out of demo or train) as one self-contained HTML file: "
                + "charts of loss and teacher entropy (with ln K), KL, learning rate and momentum, and k-NN accuracy when "
                + "probe.jsonl exists; the multi-crop views of a few images; the newest snapshot's attention maps; "
                + "and the run's configuration.",
                "Every picture is a PNG inside the file (data: URIs): it opens offline and can be mailed as it is."})
final class ReportCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--run", paramLabel = "DIR", required = true, description = "The run folder (holds metrics.jsonl).")
    Path run;

    @Option(names = "--out", paramLabel = "FILE.html", description = "Where to write the report (default: DIR/" + Report.DEFAULT_FILE + ").")
    Path out;

    @Option(names = "--snapshot-dir", paramLabel = "URI", description = "The run's snapshot folder when it was not DIR/snapshots (train --snapshot-dir).")
    String snapshotDir;

    @Option(names = "--json", description = "Print {out, bytes, pictures, snapshot, notes} as JSON on stdout.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        Path target = out != null ? out : run.resolve(Report.DEFAULT_FILE);
        Report.Written w = Report.write(run, snapshotDir, target);
        PrintWriter err = spec.commandLine().getErr();
        err.printf(Locale.ROOT, "wrote %s (%,d KB, %d pictures%s)%n", w.file(), (w.bytes() + 1023) / 1024, w.pictures(),
                w.snapshot() != null ? ", snapshot " + w.snapshot() : "");
        for (String n : w.notes()) err.println("  note: " + n);
        if (json) {
            ObjectNode o = Json.object();
            o.put("out", w.file().toString());
            o.put("bytes", w.bytes());
            o.put("pictures", w.pictures());
            if (w.snapshot() != null) o.put("snapshot", w.snapshot());
            else o.putNull("snapshot");
            ArrayNode notes = o.putArray("notes");
            w.notes().forEach(notes::add);
            Json.print(spec.commandLine().getOut(), o);
        }
        return 0;
    }
}
