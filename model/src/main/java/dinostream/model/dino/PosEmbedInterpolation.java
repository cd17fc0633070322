package dinostream.model.dino;

/**
 * DINO's position-embedding interpolation for crops whose patch grid differs from the stored one
 * (model/docs/algorithm.md §2.1; {@code vision_transformer.py} {@code interpolate_pos_encoding}) as
 * a constant linear map, for the training graph's static shapes ({@link ShapePolicy.Static}):
 * PyTorch's bicubic resampling (a = -0.75, align_corners False, border replicate) driven by the
 * scale factor (g + 0.1) / g0, so the sampling positions carry the official "+0.1" shift.
 */
public final class PosEmbedInterpolation {
    private PosEmbedInterpolation() {}

    /** The (nOut x nIn) matrix of 1-D bicubic resampling with the given scale factor. */
    public static double[][] bicubic(int nIn, int nOut, double scaleFactor) {
        double a = -0.75, inv = 1.0 / scaleFactor;
        double[][] m = new double[nOut][nIn];
        for (int d = 0; d < nOut; d++) {
            double src = (d + 0.5) * inv - 0.5;
            int i0 = (int) Math.floor(src);
            double t = src - i0;
            double[] w = {cubic2(t + 1, a), cubic1(t, a), cubic1(1 - t, a), cubic2(2 - t, a)};
            for (int k = 0; k < 4; k++) {
                int idx = Math.min(Math.max(i0 - 1 + k, 0), nIn - 1);
                m[d][idx] += w[k];
            }
        }
        return m;
    }

    private static double cubic1(double x, double a) {   // |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1;
    }

    private static double cubic2(double x, double a) {   // 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    }

    /**
     * The ((1 + gh*gw) x (1 + g0*g0)) map from the stored position embeddings (CLS row first) to
     * those of a gh x gw grid: the CLS row is copied, the grid rows are (M_h ⊗ M_w) applied to the
     * stored grid.
     */
    public static double[] fullMap(int g0, int gh, int gw) {
        double[][] mh = bicubic(g0, gh, (gh + 0.1) / g0);
        double[][] mw = bicubic(g0, gw, (gw + 0.1) / g0);
        int rows = 1 + gh * gw, cols = 1 + g0 * g0;
        double[] m = new double[rows * cols];
        m[0] = 1;
        for (int i = 0; i < gh; i++) {
            for (int j = 0; j < gw; j++) {
                int r = 1 + i * gw + j;
                for (int y = 0; y < g0; y++) {
                    for (int x = 0; x < g0; x++) {
                        m[r * cols + 1 + y * g0 + x] = mh[i][y] * mw[j][x];
                    }
                }
            }
        }
        return m;
    }
}
