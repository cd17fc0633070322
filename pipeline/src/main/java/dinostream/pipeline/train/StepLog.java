package dinostream.pipeline.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.Map;

/**
 * A run-folder history file of a local run (metrics.jsonl, probe.jsonl): one JSON line per model
 * and step. After a failure the job replays from its last checkpoint and computes steps it had
 * already logged; those lines are not written again, so the file keeps one line per step (the
 * first run's values: what the report and anyone reading the file saw first).
 */
public final class StepLog implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final BufferedWriter out;
    private final Map<String, Long> lastStep = new HashMap<>();

    public StepLog(Path file) throws IOException {
        Files.createDirectories(file.toAbsolutePath().getParent());
        if (Files.exists(file)) {
            try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
                for (String line; (line = r.readLine()) != null; ) {
                    try {
                        JsonNode n = JSON.readTree(line);
                        if (n != null && n.has("model_id") && n.has("step")) lastStep.merge(n.get("model_id").asText(), n.get("step").asLong(), Math::max);
                    } catch (IOException e) {
                        // a line cut short by a kill: nothing to remember from it
                    }
                }
            }
        }
        out = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    /** Appends {@code o} (with "model_id" and "step") unless that model's step is already in the file. */
    public void append(ObjectNode o) {
        String model = o.get("model_id").asText();
        long step = o.get("step").asLong();
        Long last = lastStep.get(model);
        if (last != null && step <= last) return;
        lastStep.put(model, step);
        try {
            out.write(JSON.writeValueAsString(o));
            out.newLine();
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot append to the run folder's history", e);
        }
    }

    @Override
    public void close() throws IOException {
        out.close();
    }
}
