package dinostream.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * DIR/sweep.jsonl: one line per finished run (a failed one too), appended as each ends, so a sweep
 * that loses its machine resumes where it was. A run counts as done when it has a line with
 * {@code "ok": true}; a failed one is tried again, its old line kept as history.
 */
final class SweepLedger {
    static final String FILE = "sweep.jsonl";

    private final Path file;
    private final List<JsonNode> lines = new ArrayList<>();
    /** The file ends in a line cut short: the next line starts on a line of its own. */
    private boolean cutShort;

    /** The lines already in {@code dir}'s sweep.jsonl; a half-written last line (the machine went) is ignored. */
    SweepLedger(Path dir) throws IOException {
        this.file = dir.resolve(FILE);
        if (!Files.exists(file)) return;
        String text = Files.readString(file, StandardCharsets.UTF_8);
        cutShort = !text.isEmpty() && !text.endsWith("\n");
        for (String line : text.split("\n")) {
            if (line.isBlank()) continue;
            try {
                JsonNode n = Json.MAPPER.readTree(line);
                if (n != null && n.isObject() && n.path("name").isTextual()) lines.add(n);
            } catch (IOException e) {
                // a line cut short: its run is not done and runs again
            }
        }
    }

    /** The newest successful line of run {@code name} with {@code seed}. */
    Optional<JsonNode> done(String name, long seed) {
        for (int i = lines.size() - 1; i >= 0; i--) {
            JsonNode n = lines.get(i);
            if (n.path("name").asText().equals(name) && n.path("seed").asLong(-1) == seed && n.path("ok").asBoolean()) return Optional.of(n);
        }
        return Optional.empty();
    }

    /** The newest line of run {@code name} with {@code seed}, successful or not. */
    Optional<JsonNode> latest(String name, long seed) {
        for (int i = lines.size() - 1; i >= 0; i--) {
            JsonNode n = lines.get(i);
            if (n.path("name").asText().equals(name) && n.path("seed").asLong(-1) == seed) return Optional.of(n);
        }
        return Optional.empty();
    }

    /** Adds a line, on disk at once (one write of one line: a crash leaves at most that line cut short). */
    void append(ObjectNode line) throws IOException {
        String text = (cutShort ? "\n" : "") + Json.MAPPER.writeValueAsString(line) + "\n";
        cutShort = false;
        Files.writeString(file, text, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        lines.add(line);
    }
}
