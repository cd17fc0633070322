package dinostream.pipeline.replay;

import dinostream.pipeline.augment.MultiCrop;

import java.util.SplittableRandom;

/**
 * The buffer's random choices, as pure functions of (seed, counter): Vitter's Algorithm R keeps a
 * uniform sample of every image offered so far, and each step replays distinct slots. Nothing
 * depends on a generator's running state, so a restored buffer decides exactly as the lost one would.
 */
public final class Reservoir {
    private Reservoir() {}

    private static final long GAMMA = 0x9E3779B97F4A7C15L;

    /**
     * Where the {@code n}-th offered image (0-based) goes in a buffer of {@code capacity} slots: slot
     * {@code n} while it fills, then a uniform slot with probability capacity / (n + 1), else -1 (not kept).
     */
    public static int slotFor(long seed, long n, int capacity) {
        if (n < capacity) return (int) n;
        long j = rng(seed, n, 0x5EEDL).nextLong(n + 1);
        return j < capacity ? (int) j : -1;
    }

    /** {@code count} distinct slots of the {@code stored} filled ones, uniform, for the train step {@code step}. */
    public static int[] pick(long seed, long step, int stored, int count) {
        if (count > stored) throw new IllegalArgumentException("cannot replay " + count + " of " + stored + " images");
        SplittableRandom r = rng(seed, step, 0x9EC1L);
        // Floyd's sampling: distinct without an array of all slots.
        java.util.LinkedHashSet<Integer> chosen = new java.util.LinkedHashSet<>();
        for (int j = stored - count; j < stored; j++) {
            int t = r.nextInt(j + 1);
            if (!chosen.add(t)) chosen.add(j);
        }
        int[] out = new int[count];
        int i = 0;
        for (int s : chosen) out[i++] = s;
        return out;
    }

    private static SplittableRandom rng(long seed, long counter, long purpose) {
        return new SplittableRandom(MultiCrop.mix64(MultiCrop.mix64(seed + GAMMA * purpose) ^ (counter * GAMMA)));
    }
}
