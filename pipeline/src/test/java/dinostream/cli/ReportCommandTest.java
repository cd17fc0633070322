package dinostream.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dinostream.model.dino.Presets;
import dinostream.model.io.DinoState;
import dinostream.pipeline.snapshot.SnapshotInfo;
import dinostream.pipeline.snapshot.SnapshotStore;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import static dinostream.cli.CliTest.JSON;
import static dinostream.cli.CliTest.assertOneLineError;
import static dinostream.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code dinostream report} in-process on a tiny run folder. */
class ReportCommandTest {
    @TempDir
    static Path dir;
    static Path runDir;

    @BeforeAll
    static void setUp() throws Exception {
        runDir = Files.createDirectories(dir.resolve("run"));
        List<String> lines = new ArrayList<>();
        for (int s = 1; s <= 5; s++) {
            lines.add(String.format(Locale.ROOT, "{\"time_ms\":%d,\"model_id\":\"m\",\"step\":%d,\"images_seen\":%d,\"loss\":%s,"
                    + "\"teacher_entropy\":3.5,\"kl\":0.2,\"lr\":1e-5,\"momentum\":0.996,\"step_ms\":100,\"images_per_s\":160}",
                    1_700_000_000_000L + s * 100, s, s * 16, 4.1 - 0.01 * s));
        }
        Files.write(runDir.resolve("metrics.jsonl"), lines);
        new SnapshotStore(runDir.resolve("snapshots").toUri().toString(), 5)
                .write("m", DinoState.init(Presets.get("test"), 0), new SnapshotInfo(0, Map.of(), Map.of(), Map.of()));
    }

    @Test
    void writesReportHtmlIntoTheRunFolder() throws Exception {
        CliTest.Result r = run("report", "--run", runDir.toString());
        assertEquals(0, r.rc(), r.toString());
        Path html = runDir.resolve("report.html");
        assertTrue(r.err().startsWith("wrote " + html), r.err());
        String page = Files.readString(html);
        assertTrue(page.startsWith("<!DOCTYPE html>"));
        assertTrue(page.contains("alt=\"loss chart\"") && page.contains("alt=\"attention maps\"") && page.contains("alt=\"multi-crop views\""));
    }

    @Test
    void jsonSaysWhatWasWritten() throws Exception {
        Path out = dir.resolve("elsewhere/r.html");
        CliTest.Result r = run("report", "--run", runDir.toString(), "--out", out.toString(), "--json");
        assertEquals(0, r.rc(), r.toString());
        JsonNode j = JSON.readTree(r.out());
        assertEquals(out.toString(), j.get("out").asText());
        assertEquals(Files.size(out), j.get("bytes").asLong());
        assertEquals(6, j.get("pictures").asInt(), "4 charts, crops, attention");
        assertTrue(j.get("snapshot").asText().contains("step-000000000000"), j.toString());
        assertTrue(j.get("notes").toString().contains("probe.jsonl"), j.toString());
    }

    @Test
    void errorsAreOneLine() throws Exception {
        assertOneLineError(run("report", "--run", dir.resolve("missing").toString()), 1, "no such run folder", "missing");
        Path empty = Files.createDirectories(dir.resolve("empty"));
        assertOneLineError(run("report", "--run", empty.toString()), 1, "has no metrics.jsonl");
        assertOneLineError(run("report"), 2, "--run");
    }
}
