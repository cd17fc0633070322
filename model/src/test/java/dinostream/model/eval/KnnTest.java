package dinostream.model.eval;

import dinostream.model.runtime.RuntimeOptions;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KnnTest {
    static final RuntimeOptions ONE_THREAD = RuntimeOptions.cpu().withThreads(1);

    // Six train points in 2-D, deliberately not unit length (normalization is part of the method).
    // Normalized: t0 (1, 0), t1 (.8, .6), t2 (.6, .8), t3 (0, 1), t4 (-1, 0), t5 (0, -1).
    static final float[][] TRAIN = {{1, 0}, {4, 3}, {3, 4}, {0, 2}, {-1, 0}, {0, -3}};
    static final int[] TRAIN_Y = {0, 0, 1, 1, 2, 2};
    static final float[][] TEST = {{2, 0}, {0, 5}, {-0.8f, 0.6f}};
    static final int[] TEST_Y = {0, 1, 2};

    /*
     * k = 3. Cosine similarities with t0..t5:
     *   q0 (1, 0):      1, .8, .6, 0, -1, 0   -> t0 (c0), t1 (c0), t2 (c1)
     *   q1 (0, 1):      0, .6, .8, 1, 0, -1   -> t3 (c1), t2 (c1), t1 (c0)
     *   q2 (-.8, .6):  -.8, -.28, 0, .6, .8, -.6 -> t4 (c2), t3 (c1), t2 (c1)
     * T = 1:
     *   q0: c0 = e^1 + e^.8 = 2.71828 + 2.22554 = 4.94382, c1 = e^.6 = 1.82212, c2 = 0   -> 0 (right)
     *   q1: c1 = e^1 + e^.8 = 4.94382, c0 = e^.6 = 1.82212                                -> 1 (right)
     *   q2: c2 = e^.8 = 2.22554, c1 = e^.6 + e^0 = 2.82212                                 -> 1 (wrong)
     *   top-1 = 2/3 = 66.67 %; top-5 looks at min(5, k) = 3 ranked classes = all 3 -> 100 %.
     * T = 0.1: q2: c2 = e^8 = 2980.958, c1 = e^6 + e^0 = 404.429 -> 2: the nearest neighbour
     *   outweighs two farther ones, so top-1 = 100 % (plain majority voting would say class 1).
     */
    @Test
    void handComputedSmallCase() {
        Knn.Neighbours nb = Knn.neighbours(TRAIN, TEST, 3, ONE_THREAD);
        assertArrayEquals(new int[]{0, 1, 2}, nb.index()[0]);
        assertArrayEquals(new int[]{3, 2, 1}, nb.index()[1]);
        assertArrayEquals(new int[]{4, 3, 2}, nb.index()[2]);
        assertArrayEquals(new float[]{1f, .8f, .6f}, nb.similarity()[0], 1e-6f);
        assertArrayEquals(new float[]{.8f, .6f, 0f}, nb.similarity()[2], 1e-6f);

        double[] v0 = Knn.votes(nb.similarity()[0], nb.index()[0], TRAIN_Y, 1.0, 3);
        assertArrayEquals(new double[]{4.943823, 1.822119, 0}, v0, 1e-5);
        double[] v2 = Knn.votes(nb.similarity()[2], nb.index()[2], TRAIN_Y, 1.0, 3);
        assertArrayEquals(new double[]{0, 2.822119, 2.225541}, v2, 1e-5);
        double[] v2cold = Knn.votes(nb.similarity()[2], nb.index()[2], TRAIN_Y, 0.1, 3);
        assertArrayEquals(new double[]{0, 404.4288, 2980.958}, v2cold, 2e-2);

        Knn.Result warm = Knn.evaluate(TRAIN, TRAIN_Y, TEST, TEST_Y, 3, 1.0, 3, ONE_THREAD);
        assertArrayEquals(new int[]{0, 1, 1}, warm.predictions());
        assertEquals(200.0 / 3, warm.top1(), 1e-9);
        assertEquals(100.0, warm.top5(), 1e-9);
        assertEquals(6, warm.nTrain());
        assertEquals(3, warm.nTest());

        Knn.Result cold = Knn.evaluate(TRAIN, TRAIN_Y, TEST, TEST_Y, 3, 0.1, 3, ONE_THREAD);
        assertArrayEquals(new int[]{0, 1, 2}, cold.predictions());
        assertEquals(100.0, cold.top1(), 1e-9);
    }

    /**
     * Ten train points e_0 .. e_9 of classes 0 .. 9 and one query whose similarity to e_c is
     * proportional to a weight per class, so with k = 10 the classes rank by weight:
     * 3, 1, 4, 0, 5 | 9, 2, 6, 8, 7.
     */
    @Test
    void top5CountsTheFirstFiveRankedClasses() {
        int[] order = {3, 1, 4, 0, 5, 9, 2, 6, 8, 7};
        float[][] train = new float[10][10];
        int[] trainY = new int[10];
        for (int c = 0; c < 10; c++) {
            train[c][c] = 1;
            trainY[c] = c;
        }
        float[] q = new float[10];
        for (int r = 0; r < 10; r++) q[order[r]] = 10 - r;
        // The same query labelled 3 (rank 1), 5 (rank 5), 9 (rank 6): top-1 1/3, top-5 2/3.
        float[][] test = {q, q, q};
        int[] testY = {3, 5, 9};
        Knn.Result r = Knn.evaluate(train, trainY, test, testY, 10, 0.07, 10, ONE_THREAD);
        assertArrayEquals(new int[]{3, 3, 3}, r.predictions());
        assertEquals(100.0 / 3, r.top1(), 1e-9);
        assertEquals(200.0 / 3, r.top5(), 1e-9);
        assertArrayEquals(new int[]{3, 1, 4, 0, 5}, Knn.rank(
                Knn.votes(Knn.neighbours(train, test, 10, ONE_THREAD).similarity()[0],
                        Knn.neighbours(train, test, 10, ONE_THREAD).index()[0], trainY, 0.07, 10), 5));

        // DINO counts only min(5, k) ranked classes: with k = 3 only classes 3, 1, 4 have votes and
        // top-5 looks at the first 3, so the label-5 query is a miss.
        Knn.Result k3 = Knn.evaluate(train, trainY, test, new int[]{3, 4, 5}, 3, 0.07, 10, ONE_THREAD);
        assertEquals(100.0 / 3, k3.top1(), 1e-9);
        assertEquals(200.0 / 3, k3.top5(), 1e-9);
        // k = 1: top-5 is top-1.
        Knn.Result k1 = Knn.evaluate(train, trainY, test, testY, 1, 0.07, 10, ONE_THREAD);
        assertEquals(k1.top1(), k1.top5(), 1e-9);
    }

    @Test
    void tiesGoToTheLowerTrainIndexAndTheLowerClass() {
        // e_0 (class 1) and e_1 (class 0) are exactly as similar to (1, 1).
        float[][] train = {{1, 0}, {0, 1}, {-1, 0}};
        int[] trainY = {1, 0, 2};
        float[][] test = {{1, 1}};
        // k = 1: the lower train index, e_0, is the nearest -> class 1.
        Knn.Neighbours nb = Knn.neighbours(train, test, 2, ONE_THREAD);
        assertArrayEquals(new int[]{0, 1}, nb.index()[0]);
        assertEquals(nb.similarity()[0][0], nb.similarity()[0][1]);
        assertArrayEquals(new int[]{1}, Knn.evaluate(train, trainY, test, new int[]{1}, 1, 0.07, 3, ONE_THREAD).predictions());
        // k = 2: classes 0 and 1 get equal votes -> the lower class, 0.
        assertArrayEquals(new int[]{0}, Knn.evaluate(train, trainY, test, new int[]{0}, 2, 0.07, 3, ONE_THREAD).predictions());
        // Duplicated bank rows: the tie between equal rows is broken the same way, whatever the position.
        float[][] dup = {{0, 1}, {1, 0}, {1, 0}, {1, 0}};
        assertArrayEquals(new int[]{1, 2, 3}, Knn.neighbours(dup, new float[][]{{1, 0}}, 3, ONE_THREAD).index()[0]);
    }

    @Test
    void scalingFeaturesChangesNothing() {
        SplittableRandom rng = new SplittableRandom(11);
        Data d = clusters(rng, 400, 150, 24, 6);
        float[][] train = scaled(d.train, rng), test = scaled(d.test, rng);
        Knn.Result a = Knn.evaluate(d.train, d.trainY, d.test, d.testY, 20, 0.07, 6, ONE_THREAD);
        Knn.Result b = Knn.evaluate(train, d.trainY, test, d.testY, 20, 0.07, 6, ONE_THREAD);
        assertArrayEquals(a.predictions(), b.predictions());
        assertEquals(a.top1(), b.top1());
        assertEquals(a.top5(), b.top5());
        assertTrue(a.top1() > 30 && a.top1() < 100, "the clusters should be neither trivial nor hopeless: " + a.top1());
    }

    @Test
    void matchesBruteForceOnRandomData() {
        SplittableRandom rng = new SplittableRandom(5);
        Data d = clusters(rng, 700, 230, 32, 10);
        int k = 20;
        double t = 0.07;
        // A block of 37 queries: several ONNX Runtime runs with a partial last block.
        Knn.Neighbours nb = Knn.neighbours(d.train, d.test, k, RuntimeOptions.cpu().withThreads(2), 37);
        int hit1 = 0, hit5 = 0;
        for (int i = 0; i < d.test.length; i++) {
            double[] sims = new double[d.train.length];
            for (int j = 0; j < d.train.length; j++) sims[j] = cosine(d.test[i], d.train[j]);
            Integer[] byRank = IntStream.range(0, d.train.length).boxed().toArray(Integer[]::new);
            Arrays.sort(byRank, Comparator.<Integer>comparingDouble(j -> -sims[j]).thenComparingInt(j -> j));
            double[] votes = new double[10];
            for (int j = 0; j < k; j++) {
                assertEquals(sims[byRank[j]], nb.similarity()[i][j], 1e-5);
                // The same neighbour, unless float rounding could swap it with an almost equally similar one.
                double gap = Math.min(sims[byRank[j]] - sims[byRank[j + 1]], j > 0 ? sims[byRank[j - 1]] - sims[byRank[j]] : 1);
                if (gap > 1e-5) assertEquals(byRank[j], nb.index()[i][j], "neighbour " + j + " of test " + i);
                votes[d.trainY[byRank[j]]] += Math.exp(sims[byRank[j]] / t);
            }
            Integer[] classes = IntStream.range(0, 10).boxed().toArray(Integer[]::new);
            Arrays.sort(classes, Comparator.<Integer>comparingDouble(c -> -votes[c]).thenComparingInt(c -> c));
            if (classes[0] == d.testY[i]) hit1++;
            for (int r = 0; r < 5; r++) if (classes[r] == d.testY[i]) hit5++;
        }
        Knn.Result r = Knn.evaluate(d.train, d.trainY, d.test, d.testY, k, t, 10, RuntimeOptions.cpu().withThreads(2));
        assertEquals(100.0 * hit1 / d.test.length, r.top1(), 1e-9);
        assertEquals(100.0 * hit5 / d.test.length, r.top5(), 1e-9);
        assertTrue(r.top5() > r.top1());
    }

    @Test
    void rejectsBadInput() {
        float[][] two = {{1, 0}, {0, 1}};
        int[] y = {0, 1};
        assertThrows(IllegalArgumentException.class, () -> Knn.evaluate(two, y, two, y, 3, 0.07, 2, ONE_THREAD));
        assertThrows(IllegalArgumentException.class, () -> Knn.evaluate(two, y, two, y, 0, 0.07, 2, ONE_THREAD));
        assertThrows(IllegalArgumentException.class, () -> Knn.evaluate(two, y, two, y, 1, 0, 2, ONE_THREAD));
        assertThrows(IllegalArgumentException.class, () -> Knn.evaluate(two, new int[]{0, 2}, two, y, 1, 0.07, 2, ONE_THREAD));
        assertThrows(IllegalArgumentException.class, () -> Knn.evaluate(two, y, new float[][]{{1, 0, 0}}, new int[]{0}, 1, 0.07, 2, ONE_THREAD));
        IllegalArgumentException nan = assertThrows(IllegalArgumentException.class,
                () -> Knn.evaluate(new float[][]{{1, Float.NaN}, {0, 1}}, y, two, y, 1, 0.07, 2, ONE_THREAD));
        assertTrue(nan.getMessage().contains("train feature 0"), nan.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Knn.evaluate(new float[0][], new int[0], two, y, 1, 0.07, 2, ONE_THREAD));
    }

    @Test
    void zeroVectorsHaveSimilarityZero() {
        float[][] train = {{0, 0}, {1, 0}};
        Knn.Neighbours nb = Knn.neighbours(train, new float[][]{{-1, 0}}, 2, ONE_THREAD);
        assertArrayEquals(new int[]{0, 1}, nb.index()[0]);
        assertArrayEquals(new float[]{0f, -1f}, nb.similarity()[0], 1e-7f);
    }

    @Test
    void numpyPermutationMatchesRandomState() {
        // python3 -c "import numpy as np; p = np.random.RandomState(0).permutation(60000); print(p[:10], p[9995:10000], p[:10000].sum())"
        int[] p = NumpyPermutation.permutation(60000, 0);
        assertArrayEquals(new int[]{3048, 19563, 58303, 8870, 40228, 31488, 21860, 56864, 845, 25770}, Arrays.copyOf(p, 10));
        assertArrayEquals(new int[]{34247, 29512, 15241, 26970, 26146}, Arrays.copyOfRange(p, 9995, 10000));
        assertEquals(300012983L, Arrays.stream(p, 0, 10000).asLongStream().sum());
        assertArrayEquals(new int[]{9394, 898, 2398, 5906, 2343, 8225, 5506, 6451}, Arrays.copyOf(NumpyPermutation.permutation(10000, 0), 8));
        assertArrayEquals(new int[]{1, 3, 4, 0, 2, 5, 6}, NumpyPermutation.permutation(7, 123));
        assertArrayEquals(new int[]{3048, 19563}, NumpyPermutation.subset(60000, 2, 0));
        assertArrayEquals(new int[]{0, 1, 2}, NumpyPermutation.subset(3, 5, 0));
    }

    // ------------------------------------------------------------------ helpers

    record Data(float[][] train, int[] trainY, float[][] test, int[] testY) {}

    /** Gaussian clusters around random class centres, overlapping enough that k-NN makes mistakes. */
    static Data clusters(SplittableRandom rng, int nTrain, int nTest, int dim, int classes) {
        float[][] centres = new float[classes][dim];
        for (float[] c : centres) for (int j = 0; j < dim; j++) c[j] = (float) rng.nextGaussian();
        float[][] train = new float[nTrain][], test = new float[nTest][];
        int[] trainY = new int[nTrain], testY = new int[nTest];
        for (int i = 0; i < nTrain + nTest; i++) {
            int c = rng.nextInt(classes);
            float[] x = new float[dim];
            for (int j = 0; j < dim; j++) x[j] = centres[c][j] + 1.3f * (float) rng.nextGaussian();
            if (i < nTrain) {
                train[i] = x;
                trainY[i] = c;
            } else {
                test[i - nTrain] = x;
                testY[i - nTrain] = c;
            }
        }
        return new Data(train, trainY, test, testY);
    }

    static float[][] scaled(float[][] x, SplittableRandom rng) {
        float[][] out = new float[x.length][];
        for (int i = 0; i < x.length; i++) {
            float s = (float) Math.pow(10, rng.nextDouble(-3, 3));
            out[i] = new float[x[i].length];
            for (int j = 0; j < x[i].length; j++) out[i][j] = x[i][j] * s;
        }
        return out;
    }

    static double cosine(float[] a, float[] b) {
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.length; i++) {
            ab += (double) a[i] * b[i];
            aa += (double) a[i] * a[i];
            bb += (double) b[i] * b[i];
        }
        return ab / (Math.max(Math.sqrt(aa), 1e-12) * Math.max(Math.sqrt(bb), 1e-12));
    }
}
