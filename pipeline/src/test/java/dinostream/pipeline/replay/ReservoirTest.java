package dinostream.pipeline.replay;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ReservoirTest {
    static final int STREAM = 1000, CAPACITY = 100, SEEDS = 2000, BUCKET = 50;

    /** Which stream positions a buffer holds at the end, by (seed, position) -> slot or -1. */
    interface Policy {
        int slot(long seed, long n, int capacity);
    }

    /** Pearson's chi-square of how often each bucket of 50 stream positions is in the final buffer, against uniform. */
    static double chiSquare(Policy policy) {
        long[] inBuffer = new long[STREAM / BUCKET];
        for (long seed = 0; seed < SEEDS; seed++) {
            int[] slots = new int[CAPACITY];
            for (int n = 0; n < STREAM; n++) {
                int s = policy.slot(seed, n, CAPACITY);
                if (s >= 0) slots[s] = n;
            }
            for (int n : slots) inBuffer[n / BUCKET]++;
        }
        double expected = (double) SEEDS * CAPACITY / inBuffer.length, chi = 0;
        for (long c : inBuffer) chi += (c - expected) * (c - expected) / expected;
        return chi;
    }

    @Test
    void theBufferIsAUniformSampleOfTheWholeStream() {
        double uniform = chiSquare(Reservoir::slotFor);
        // 19 degrees of freedom: p = 0.001 at 43.8. The draws within one buffer are not independent
        // (a fixed count of 100), which only makes the statistic smaller than a free multinomial's.
        assertTrue(uniform < 43.8, "reservoir chi-square " + uniform);
        // The same test fails a FIFO of the last 100 (and a buffer that keeps the first 100).
        double fifo = chiSquare((seed, n, cap) -> (int) (n % cap));
        double first = chiSquare((seed, n, cap) -> n < cap ? (int) n : -1);
        assertTrue(fifo > 1000 && first > 1000, "fifo " + fifo + ", first " + first);
    }

    @Test
    void decisionsDependOnlyOnSeedAndPosition() {
        for (long n = 0; n < 500; n++) assertEquals(Reservoir.slotFor(7, n, 50), Reservoir.slotFor(7, n, 50));
        assertEquals(3, Reservoir.slotFor(7, 3, 50), "the buffer fills in order");
        int differ = 0;
        for (long n = 50; n < 500; n++) if (Reservoir.slotFor(7, n, 50) != Reservoir.slotFor(8, n, 50)) differ++;
        // Each seed keeps position n with probability 50 / (n + 1): about 2 · 50 · ln 10 = 230 differ, few by agreeing.
        assertTrue(differ > 150, "another seed decides otherwise: " + differ);
    }

    @Test
    void aStepReplaysDistinctUniformSlotsReproducibly() {
        assertArrayEquals(Reservoir.pick(3, 41, 1000, 32), Reservoir.pick(3, 41, 1000, 32));
        long[] hits = new long[20];
        for (long step = 0; step < 20_000; step++) {
            int[] p = Reservoir.pick(3, step, 20, 5);
            Set<Integer> distinct = new HashSet<>();
            for (int s : p) {
                assertTrue(s >= 0 && s < 20);
                distinct.add(s);
                hits[s]++;
            }
            assertEquals(5, distinct.size(), Arrays.toString(p));
        }
        // Each slot is in a quarter of the steps: 5,000 ± 4 sd (sd about 61).
        for (long h : hits) assertTrue(Math.abs(h - 5000) < 250, Arrays.toString(hits));
        assertThrows(IllegalArgumentException.class, () -> Reservoir.pick(3, 0, 4, 5));
    }

    @Test
    void aBatchTakesItsShareAndKeepsOneFreshImage() {
        ReplayOptions r = new ReplayOptions(100, 0.5, 1 << 20, null);
        assertEquals(0, r.replayPerBatch(64, 0), "an empty buffer replays nothing");
        assertEquals(10, r.replayPerBatch(64, 10));
        assertEquals(32, r.replayPerBatch(64, 100));
        assertEquals(3, new ReplayOptions(100, 0.99, 1 << 20, null).replayPerBatch(4, 100), "one image of a batch is always fresh");
        assertEquals(0, ReplayOptions.NONE.replayPerBatch(64, 100));
        assertThrows(IllegalArgumentException.class, () -> new ReplayOptions(100, 1.0, 1 << 20, null));
        assertThrows(IllegalArgumentException.class, () -> new ReplayOptions(0, 0.5, 1 << 20, null));
        assertThrows(IllegalArgumentException.class, () -> new ReplayOptions(1000, 0.5, 1000, null));
    }

    @Test
    void theSummaryTracksBytesAndAges() {
        ReplaySummary s = new ReplaySummary(3);
        for (int n = 0; n < 3; n++) s.kept(n, new ReplayImage("i" + n, null, 2, 2, 1, new byte[4], n));
        long one = new ReplayImage("i0", null, 2, 2, 1, new byte[4], 0).bytes();
        assertEquals(3, s.stored());
        assertEquals(3 * one, s.bytes());
        s.kept(1, new ReplayImage("i9", null, 4, 4, 1, new byte[16], 9));
        assertEquals(3, s.stored());
        assertEquals(3 * one + 12, s.bytes());
        // Ages after 10 offers: 9, 0, 7.
        assertEquals(0, s.agePercentile(10, 0.1));
        assertEquals(7, s.agePercentile(10, 0.5));
        assertEquals(9, s.agePercentile(10, 0.9));
    }
}
