package dinostream.model.eval;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CollapseMonitorTest {
    static final int K = 4096;
    static final double LN_K = Math.log(K);

    @Test
    void jacobiFindsKnownEigenvalues() {
        double[] e = Jacobi.eigenvalues(new double[][]{{2, 1, 0}, {1, 2, 0}, {0, 0, 5}});
        Arrays.sort(e);
        assertEquals(1, e[0], 1e-12);
        assertEquals(3, e[1], 1e-12);
        assertEquals(5, e[2], 1e-12);
    }

    @Test
    void effectiveRankOfOrthogonalAndIdenticalRows() {
        double[][] eye = new double[4][8];
        for (int i = 0; i < 4; i++) eye[i][i] = 1;
        assertEquals(4, CollapseMonitor.effectiveRank(eye), 1e-9);
        double[][] same = new double[5][8];
        for (double[] r : same) Arrays.fill(r, 0.3);
        assertEquals(1, CollapseMonitor.effectiveRank(same), 1e-6);
    }

    static float[][] features(int n, int d, boolean collapsed, long seed) {
        Random r = new Random(seed);
        float[] shared = new float[d];
        for (int j = 0; j < d; j++) shared[j] = (float) r.nextGaussian();
        float[][] f = new float[n][d];
        for (int i = 0; i < n; i++) for (int j = 0; j < d; j++) f[i][j] = collapsed ? shared[j] + 1e-5f * (float) r.nextGaussian() : (float) r.nextGaussian();
        return f;
    }

    @Test
    void healthyRunRaisesNothing() {
        // Values of the reference's healthy fmnist runs: entropy 7.4-7.55 of ln K = 8.32, loss 7.0-7.8.
        CollapseMonitor.Monitors m = CollapseMonitor.of(features(128, 192, false, 1), new float[K], 7.5, 7.45, 0.05);
        assertTrue(CollapseMonitor.warnings(m, CollapseMonitor.Thresholds.DEFAULT).isEmpty(), m.toString());
        assertTrue(m.effectiveRank() > 50, "random features are high-rank: " + m.effectiveRank());
        assertEquals(1 / Math.sqrt(192), m.embeddingStd(), 0.01);
    }

    @Test
    void collapsedModelsRaiseTheRightWarnings() {
        // One point for every image, teacher uniform, loss at ln K: every monitor fires.
        CollapseMonitor.Monitors uniform = CollapseMonitor.of(features(128, 192, true, 2), new float[K], LN_K, LN_K - 0.01, 0.0);
        var w = CollapseMonitor.warnings(uniform, CollapseMonitor.Thresholds.DEFAULT);
        assertEquals(3, w.size(), w.toString());
        assertTrue(uniform.effectiveRank() < 1.5, "collapsed features have rank about 1: " + uniform.effectiveRank());
        // Sharpening without centering: one prototype.
        CollapseMonitor.Monitors oneHot = CollapseMonitor.of(features(128, 192, false, 3), new float[K], 0.2, 0.01, 0.19);
        var w2 = CollapseMonitor.warnings(oneHot, CollapseMonitor.Thresholds.DEFAULT);
        assertEquals(1, w2.size(), w2.toString());
        assertEquals(CollapseMonitor.Kind.ONE_PROTOTYPE, w2.get(0).kind());
    }

    @Test
    void thresholdsSeparateTheMeasuredRuns() {
        var t = CollapseMonitor.Thresholds.DEFAULT;
        float[][] f = features(128, 128, false, 4);
        // fmnist-small, healthy: the extremes seen over 270 steps.
        assertTrue(CollapseMonitor.warnings(CollapseMonitor.of(f, new float[K], 7.996, 7.352, 0.64), t).isEmpty());
        assertTrue(CollapseMonitor.warnings(CollapseMonitor.of(f, new float[K], 7.214, 6.635, 0.58), t).isEmpty());
        // Without sharpening (teacher temperature 0.1): uniform teacher, loss at ln K.
        var kinds = CollapseMonitor.warnings(CollapseMonitor.of(f, new float[K], 8.377, 8.140, 0.24), t)
                .stream().map(CollapseMonitor.Warning::kind).toList();
        assertEquals(java.util.List.of(CollapseMonitor.Kind.UNIFORM_TEACHER, CollapseMonitor.Kind.LOSS_AT_LN_K), kinds);
        // Without centering: one prototype.
        var nc = CollapseMonitor.warnings(CollapseMonitor.of(f, new float[K], 0.616, 0.109, 0.51), t);
        assertEquals(CollapseMonitor.Kind.ONE_PROTOTYPE, nc.get(0).kind());
    }
}
