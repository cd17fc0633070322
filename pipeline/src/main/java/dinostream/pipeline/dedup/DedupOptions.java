package dinostream.pipeline.dedup;

import java.io.Serializable;

/**
 * The near-duplicate filter before training.
 *
 * @param enabled     whether frames too close to the source's last kept frame are dropped from training
 * @param maxDistance frames whose {@link FrameHash} is at most this many bits from the last kept one are near-duplicates
 */
public record DedupOptions(boolean enabled, int maxDistance) implements Serializable {
    private static final long serialVersionUID = 1L;

    public static final int DEFAULT_MAX_DISTANCE = 4;
    public static final DedupOptions OFF = new DedupOptions(false, DEFAULT_MAX_DISTANCE);

    public DedupOptions {
        if (maxDistance < 0 || maxDistance > 64) throw new IllegalArgumentException("dedup distance must be 0 to 64 bits, got " + maxDistance);
    }

    public static DedupOptions on(int maxDistance) {
        return new DedupOptions(true, maxDistance);
    }
}
