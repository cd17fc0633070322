package dinostream.model.eval;

import java.util.ArrayList;
import java.util.List;

/**
 * Signs that DINO is collapsing (Caron et al. 2021, §5.3): a teacher distribution pinned at
 * uniform (entropy and loss at ln K: centering without sharpening) or at one prototype (entropy
 * near 0: sharpening without centering), and embeddings that no longer vary across images (their
 * spread and effective rank fall).
 */
public final class CollapseMonitor {
    private CollapseMonitor() {}

    /** The monitors of one step. {@code effectiveRank} is exp(entropy of the normalized singular values). */
    public record Monitors(double loss, double lnK, double teacherEntropy, double kl, double embeddingStd,
                           double effectiveRank, double centerNorm, int featureDim) {
        public double lossOverLnK() {
            return loss / lnK;
        }

        public double entropyOverLnK() {
            return teacherEntropy / lnK;
        }
    }

    /**
     * Thresholds, as fractions of ln K (entropy, loss) or of 1/sqrt(D) (spread). Measured on
     * fmnist-small streams (README, "Collapse monitors"): healthy runs keep the teacher entropy at
     * 0.79-0.88 of ln K (the reference's 0.89-0.91) and the loss 4-14 % below ln K; without
     * sharpening the entropy sits at 0.97-0.98 and the loss within 1.4 % of ln K; without
     * centering the entropy falls to 0.011-0.018 within 130 steps. The spread threshold flags
     * the constant-output model of the tests; no forced run reached it within 260 steps.
     */
    public record Thresholds(double uniformEntropy, double oneHotEntropy, double uniformLoss, double embeddingStd) {
        public static final Thresholds DEFAULT = new Thresholds(0.95, 0.05, 0.015, 0.1);
    }

    /**
     * @param features the teacher's CLS features of a batch, [n, D]
     * @param center   the centre, [K]
     */
    public static Monitors of(float[][] features, float[] center, double loss, double teacherEntropy, double kl) {
        int n = features.length, d = features[0].length;
        double[][] z = new double[n][d];
        for (int i = 0; i < n; i++) {
            double norm = 0;
            for (float v : features[i]) norm += (double) v * v;
            norm = Math.max(Math.sqrt(norm), 1e-12);
            for (int j = 0; j < d; j++) z[i][j] = features[i][j] / norm;
        }
        double std = 0;
        for (int j = 0; j < d; j++) {
            double mean = 0, var = 0;
            for (double[] row : z) mean += row[j];
            mean /= n;
            for (double[] row : z) var += (row[j] - mean) * (row[j] - mean);
            std += Math.sqrt(var / n);
        }
        double c = 0;
        for (float v : center) c += (double) v * v;
        return new Monitors(loss, Math.log(center.length), teacherEntropy, kl, std / d, effectiveRank(z), Math.sqrt(c), d);
    }

    public enum Kind { UNIFORM_TEACHER, ONE_PROTOTYPE, LOSS_AT_LN_K, EMBEDDINGS_COLLAPSED }

    public record Warning(Kind kind, String message) {}

    /** The warnings these monitors raise (empty when healthy). */
    public static List<Warning> warnings(Monitors m, Thresholds t) {
        List<Warning> w = new ArrayList<>();
        if (m.entropyOverLnK() >= t.uniformEntropy()) {
            w.add(new Warning(Kind.UNIFORM_TEACHER, String.format("teacher entropy %.3f is at ln K = %.3f: the teacher is uniform (collapse; too little sharpening?)",
                    m.teacherEntropy(), m.lnK())));
        }
        if (m.entropyOverLnK() <= t.oneHotEntropy()) {
            w.add(new Warning(Kind.ONE_PROTOTYPE, String.format("teacher entropy %.3f is near 0: the teacher picks one prototype (collapse; too little centering?)",
                    m.teacherEntropy())));
        }
        if (Math.abs(m.lossOverLnK() - 1) <= t.uniformLoss()) {
            w.add(new Warning(Kind.LOSS_AT_LN_K, String.format("loss %.4f is stuck at ln K = %.4f", m.loss(), m.lnK())));
        }
        if (m.embeddingStd() * Math.sqrt(m.featureDim()) <= t.embeddingStd()) {
            w.add(new Warning(Kind.EMBEDDINGS_COLLAPSED, String.format("embedding spread %.2e is near 0 (healthy: about 1/sqrt(D) = %.2e): every image maps to one point",
                    m.embeddingStd(), 1 / Math.sqrt(m.featureDim()))));
        }
        return w;
    }

    /** exp(H(p)), p = singular values / their sum, from the eigenvalues of the smaller Gram matrix. */
    static double effectiveRank(double[][] z) {
        int n = z.length, d = z[0].length;
        boolean rows = n <= d;
        int m = Math.min(n, d);
        double[][] g = new double[m][m];
        for (int a = 0; a < m; a++) {
            for (int b = a; b < m; b++) {
                double s = 0;
                if (rows) for (int k = 0; k < d; k++) s += z[a][k] * z[b][k];
                else for (int k = 0; k < n; k++) s += z[k][a] * z[k][b];
                g[a][b] = g[b][a] = s;
            }
        }
        double[] eig = Jacobi.eigenvalues(g);
        double total = 0;
        double[] sv = new double[m];
        for (int i = 0; i < m; i++) {
            sv[i] = Math.sqrt(Math.max(eig[i], 0));
            total += sv[i];
        }
        if (total == 0) return 0;
        double h = 0;
        for (double s : sv) {
            if (s <= 0) continue;
            double p = s / total;
            h -= p * Math.log(p);
        }
        return Math.exp(h);
    }
}
