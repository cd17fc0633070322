package dinostream.pipeline.dedup;

import java.io.Serializable;
import java.time.Duration;

/**
 * The near-duplicate filter before training.
 *
 * @param enabled     whether frames too close to the source's last kept frame are dropped from training
 * @param maxDistance frames whose {@link FrameHash} is at most this many bits from the last kept one are near-duplicates
 * @param idle        a source silent this long is forgotten (its state expires), so source names cannot grow the state without bound
 */
public record DedupOptions(boolean enabled, int maxDistance, Duration idle) implements Serializable {
    private static final long serialVersionUID = 1L;

    public static final int DEFAULT_MAX_DISTANCE = 4;
    public static final Duration DEFAULT_IDLE = Duration.ofHours(1);
    public static final DedupOptions OFF = new DedupOptions(false, DEFAULT_MAX_DISTANCE, DEFAULT_IDLE);

    public DedupOptions {
        if (maxDistance < 0 || maxDistance > 64) throw new IllegalArgumentException("dedup distance must be 0 to 64 bits, got " + maxDistance);
        if (idle == null || idle.isNegative() || idle.isZero()) throw new IllegalArgumentException("dedup idle time must be positive");
    }

    public static DedupOptions on(int maxDistance) {
        return new DedupOptions(true, maxDistance, DEFAULT_IDLE);
    }
}
