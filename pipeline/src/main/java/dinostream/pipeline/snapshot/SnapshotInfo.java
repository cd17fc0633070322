package dinostream.pipeline.snapshot;

import java.util.Map;

/**
 * What the trainer knows about a snapshot beyond the state itself: images trained on so far, the
 * hyperparameters in effect at the step ({@link Manifest#LR}, {@link Manifest#WEIGHT_DECAY},
 * {@link Manifest#TEACHER_TEMP}, {@link Manifest#MOMENTUM}), the last step's metrics (loss,
 * teacher_entropy, kl, ...), and per {@link Manifest#offsetKey "topic-partition"} the next Kafka
 * offset to read. The maps are copied and checked here with the manifest's rules, so a bad value
 * fails before anything is written.
 */
public record SnapshotInfo(long imagesSeen, Map<String, Double> hyperparameters, Map<String, Double> metrics,
                           Map<String, Long> kafkaOffsets) {
    public SnapshotInfo {
        if (imagesSeen < 0) throw new IllegalArgumentException("imagesSeen must be >= 0, got " + imagesSeen);
        hyperparameters = Manifest.numbers("hyperparameters", hyperparameters, false);
        metrics = Manifest.numbers("metrics", metrics, true);
        kafkaOffsets = Manifest.offsets(kafkaOffsets);
    }
}
