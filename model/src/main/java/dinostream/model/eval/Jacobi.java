package dinostream.model.eval;

/**
 * Eigenvalues of a small symmetric matrix by cyclic Jacobi rotations, for
 * {@link CollapseMonitor#effectiveRank}. Libraries do this (EJML, Apache Commons Math's
 * {@code EigenDecomposition}); model/ keeps its dependencies to ONNX Runtime, protobuf and Jackson
 * (it is embedded in Flink jobs), and the matrices here are at most min(2B, D) on a side (128 at
 * batch 64), so these 40 lines are cheaper than a dependency.
 */
final class Jacobi {
    private Jacobi() {}

    static double[] eigenvalues(double[][] matrix) {
        int n = matrix.length;
        double[][] a = new double[n][];
        for (int i = 0; i < n; i++) a[i] = matrix[i].clone();
        for (int sweep = 0; sweep < 100; sweep++) {
            double off = 0, diag = 0;
            for (int i = 0; i < n; i++) {
                diag += a[i][i] * a[i][i];
                for (int j = i + 1; j < n; j++) off += a[i][j] * a[i][j];
            }
            if (off <= 1e-22 * Math.max(diag, 1e-300)) break;
            for (int p = 0; p < n; p++) {
                for (int q = p + 1; q < n; q++) {
                    if (a[p][q] == 0) continue;
                    // The rotation that zeroes a[p][q] (Golub & Van Loan, symmetric Schur decomposition).
                    double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
                    double t = Math.signum(theta) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
                    if (theta == 0) t = 1;
                    double c = 1 / Math.sqrt(t * t + 1), s = t * c;
                    for (int k = 0; k < n; k++) {
                        double akp = a[k][p], akq = a[k][q];
                        a[k][p] = c * akp - s * akq;
                        a[k][q] = s * akp + c * akq;
                    }
                    for (int k = 0; k < n; k++) {
                        double apk = a[p][k], aqk = a[q][k];
                        a[p][k] = c * apk - s * aqk;
                        a[q][k] = s * apk + c * aqk;
                    }
                }
            }
        }
        double[] e = new double[n];
        for (int i = 0; i < n; i++) e[i] = a[i][i];
        return e;
    }
}
