package dinostream.model.eval;

/**
 * {@code numpy.random.RandomState(seed).permutation(n)}, bit for bit, so that a k-NN memory-bank
 * subset is the very one the PyTorch reference used (outside this repository: the first 10,000
 * of {@code RandomState(0).permutation(60000)}).
 *
 * <p>numpy's legacy generator is MT19937 seeded with {@code init_genrand(seed)}; {@code permutation}
 * shuffles {@code arange(n)} with Fisher-Yates from the end, drawing each swap index j in [0, i]
 * by rejection: 32-bit outputs masked to the smallest all-ones mask covering i, redrawn while > i
 * ({@code random_interval} in numpy's distributions.c).
 */
public final class NumpyPermutation {
    private NumpyPermutation() {}

    private static final int N = 624, M = 397;
    private static final int MATRIX_A = 0x9908b0df, UPPER = 0x80000000, LOWER = 0x7fffffff;

    /** A permutation of 0 .. n-1. */
    public static int[] permutation(int n, long seed) {
        if (n < 0) throw new IllegalArgumentException("n must be >= 0, got " + n);
        if (seed < 0 || seed > 0xffffffffL) throw new IllegalArgumentException("seed must be in [0, 2^32), got " + seed);
        int[] a = new int[n];
        for (int i = 0; i < n; i++) a[i] = i;
        Mt19937 rng = new Mt19937((int) seed);
        for (int i = n - 1; i >= 1; i--) {
            int j = rng.interval(i);
            int t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
        return a;
    }

    /** The first {@code limit} of {@link #permutation}(n, seed), or all of 0 .. n-1 in order when limit >= n. */
    public static int[] subset(int n, int limit, long seed) {
        if (limit < 0) throw new IllegalArgumentException("limit must be >= 0, got " + limit);
        if (limit >= n) {
            int[] all = new int[n];
            for (int i = 0; i < n; i++) all[i] = i;
            return all;
        }
        return java.util.Arrays.copyOf(permutation(n, seed), limit);
    }

    /** The reference MT19937 (Matsumoto and Nishimura's mt19937ar.c), 32-bit outputs. */
    static final class Mt19937 {
        private final int[] mt = new int[N];
        private int mti;

        Mt19937(int seed) {
            mt[0] = seed;
            for (int i = 1; i < N; i++) mt[i] = 1812433253 * (mt[i - 1] ^ (mt[i - 1] >>> 30)) + i;
            mti = N;
        }

        int next() {
            if (mti >= N) twist();
            int y = mt[mti++];
            y ^= y >>> 11;
            y ^= (y << 7) & 0x9d2c5680;
            y ^= (y << 15) & 0xefc60000;
            y ^= y >>> 18;
            return y;
        }

        private void twist() {
            int kk;
            for (kk = 0; kk < N - M; kk++) {
                int y = (mt[kk] & UPPER) | (mt[kk + 1] & LOWER);
                mt[kk] = mt[kk + M] ^ (y >>> 1) ^ ((y & 1) != 0 ? MATRIX_A : 0);
            }
            for (; kk < N - 1; kk++) {
                int y = (mt[kk] & UPPER) | (mt[kk + 1] & LOWER);
                mt[kk] = mt[kk + (M - N)] ^ (y >>> 1) ^ ((y & 1) != 0 ? MATRIX_A : 0);
            }
            int y = (mt[N - 1] & UPPER) | (mt[0] & LOWER);
            mt[N - 1] = mt[M - 1] ^ (y >>> 1) ^ ((y & 1) != 0 ? MATRIX_A : 0);
            mti = 0;
        }

        /** Uniform in [0, max] for 0 <= max < 2^31, as numpy's random_interval. */
        int interval(int max) {
            if (max == 0) return 0;
            int mask = max;
            mask |= mask >>> 1;
            mask |= mask >>> 2;
            mask |= mask >>> 4;
            mask |= mask >>> 8;
            mask |= mask >>> 16;
            int v;
            do {
                v = next() & mask;
            } while (v > max);
            return v;
        }
    }
}
