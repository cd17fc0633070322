package dinostream.pipeline.replay;

import java.util.Arrays;

/**
 * What a model's replay buffer holds, kept beside its keyed state (which has the images): how many
 * slots are filled, their bytes and arrival positions, for the step's draw and the metrics. Rebuilt
 * from the state on restore. Metric gauges read it from another thread; a value a step stale is fine.
 */
public final class ReplaySummary {
    private final long[] arrivals;
    private final long[] slotBytes;
    private volatile int stored;
    private volatile long bytes;

    public ReplaySummary(int capacity) {
        arrivals = new long[capacity];
        slotBytes = new long[capacity];
    }

    /** Slot {@code slot} now holds {@code image} (filled in order 0, 1, ..., then replaced). */
    public void kept(int slot, ReplayImage image) {
        bytes += image.bytes() - slotBytes[slot];
        slotBytes[slot] = image.bytes();
        arrivals[slot] = image.arrival;
        if (slot >= stored) stored = slot + 1;
    }

    public int stored() {
        return stored;
    }

    public long bytes() {
        return bytes;
    }

    /** The q-quantile of the kept images' ages, in images offered since each arrived; 0 when empty. */
    public long agePercentile(long offered, double q) {
        int n = stored;
        if (n == 0) return 0;
        long[] ages = new long[n];
        for (int i = 0; i < n; i++) ages[i] = offered - 1 - arrivals[i];
        Arrays.sort(ages);
        return ages[(int) Math.min(n - 1, Math.floor(q * n))];
    }
}
