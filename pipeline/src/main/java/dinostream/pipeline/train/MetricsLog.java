package dinostream.pipeline.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.model.eval.CollapseMonitor;
import dinostream.model.runtime.TrainSession;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The run folder's history for reports of local runs: metrics.jsonl, one JSON object per train
 * step (once, also after a replay), and checkpoints.jsonl, one per model state written behind for a
 * checkpoint (its size and cost). On a cluster there is no run folder: Flink's metrics are the record.
 */
final class MetricsLog implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final StepLog out;
    private final BufferedWriter checkpoints;

    MetricsLog(String runDir) throws IOException {
        Path dir = Path.of(runDir);
        Files.createDirectories(dir);
        out = new StepLog(dir.resolve("metrics.jsonl"));
        checkpoints = Files.newBufferedWriter(dir.resolve("checkpoints.jsonl"), StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    void checkpoint(String modelId, long checkpointId, long step, long bytes, double ms) {
        ObjectNode o = JSON.createObjectNode();
        o.put("time_ms", System.currentTimeMillis());
        o.put("model_id", modelId);
        o.put("checkpoint_id", checkpointId);
        o.put("step", step);
        o.put("state_bytes", bytes);
        o.put("write_behind_ms", ms);
        append(checkpoints, o);
    }

    void write(String modelId, TrainSession.Stats s, TrainSession.Hyper h, long imagesSeen, double stepMs, double imagesPerS,
               float lossScale, CollapseMonitor.Monitors monitors, java.util.List<CollapseMonitor.Kind> warnings,
               ReplayStep replay) {
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
        if (!Float.isNaN(lossScale)) o.put("loss_scale", lossScale);
        if (replay != null) {
            o.put("replayed_images", replay.replayedImages());
            o.put("replay_images", replay.stored());
            o.put("replay_augment_ms", replay.augmentMs());
        }
        if (monitors != null) {
            o.put("loss_over_ln_k", monitors.lossOverLnK());
            o.put("embedding_std", monitors.embeddingStd());
            o.put("effective_rank", monitors.effectiveRank());
            o.put("center_norm", monitors.centerNorm());
            var a = o.putArray("collapse_warnings");
            warnings.forEach(k -> a.add(k.name().toLowerCase(java.util.Locale.ROOT)));
        }
        out.append(o);
    }

    /** A step's replay: images replayed so far (all steps), images in the buffer, time this step spent cropping its replayed ones. */
    record ReplayStep(long replayedImages, int stored, double augmentMs) {}

    private static void append(BufferedWriter w, ObjectNode o) {
        try {
            w.write(JSON.writeValueAsString(o));
            w.newLine();
            w.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot append to the run folder's history", e);
        }
    }

    @Override
    public void close() throws IOException {
        out.close();
        checkpoints.close();
    }
}
