package dinostream.pipeline.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.model.runtime.TrainSession;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** The run folder's metrics.jsonl: one JSON object per train step, for reports. */
final class MetricsLog implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final BufferedWriter out;

    MetricsLog(String runDir) throws IOException {
        Path dir = Path.of(runDir);
        Files.createDirectories(dir);
        out = Files.newBufferedWriter(dir.resolve("metrics.jsonl"), StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    void write(String modelId, TrainSession.Stats s, TrainSession.Hyper h, long imagesSeen, double stepMs, double imagesPerS) {
        ObjectNode o = JSON.createObjectNode();
        o.put("time_ms", System.currentTimeMillis());
        o.put("model_id", modelId);
        o.put("step", s.step());
        o.put("images_seen", imagesSeen);
        o.put("loss", s.loss());
        o.put("teacher_entropy", s.teacherEntropy());
        o.put("kl", s.kl());
        o.put("lr", h.lr());
        o.put("weight_decay", h.weightDecay());
        o.put("teacher_temp", h.teacherTemp());
        o.put("momentum", h.momentum());
        o.put("last_layer_frozen", h.freezeLastLayer());
        o.put("step_ms", stepMs);
        o.put("images_per_s", imagesPerS);
        try {
            out.write(JSON.writeValueAsString(o));
            out.newLine();
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot append to metrics.jsonl", e);
        }
    }

    @Override
    public void close() throws IOException {
        out.close();
    }
}
