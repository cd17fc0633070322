package dinostream.pipeline.demo;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Follows a run folder's metrics.jsonl: the newest train step's values. */
public final class RunProgress {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Path file;
    private long position;
    private JsonNode last;
    private JsonNode first;

    public RunProgress(Path runDir) {
        this.file = runDir.resolve("metrics.jsonl");
    }

    /** Reads the lines appended since the last call; returns the newest step, or null before the first. */
    public JsonNode poll() throws IOException {
        if (!Files.exists(file)) return last;
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "r")) {
            if (f.length() < position) position = 0;   // a new run folder
            f.seek(position);
            byte[] rest = new byte[(int) (f.length() - position)];
            f.readFully(rest);
            String text = new String(rest, StandardCharsets.UTF_8);
            int end = text.lastIndexOf('\n');
            if (end < 0) return last;
            for (String line : text.substring(0, end).split("\n")) {
                if (line.isBlank()) continue;
                last = JSON.readTree(line);
                if (first == null) first = last;
            }
            position += text.substring(0, end + 1).getBytes(StandardCharsets.UTF_8).length;
        }
        return last;
    }

    public JsonNode first() {
        return first;
    }
}
