package dinostream.model.graph;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;

import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Checks a gradient rule against central finite differences: builds {@code loss = sum(f(params) * w)}
 * for a fixed random {@code w}, differentiates it with {@link Autodiff}, and compares with
 * (L(p + eps e) - L(p - eps e)) / 2 eps, element by element in float64 or along a random
 * direction in float32 (for operators ONNX Runtime has no float64 kernel for).
 */
final class GradCheck {
    interface Fn {
        Tensor apply(Graph g, Tensor[] params);
    }

    private final OrtEnvironment env = OrtEnvironment.getEnvironment();
    private final Random rnd = new Random(42);

    /** float64, every element (up to 40 per tensor); returns the worst relative error. */
    double elementwise(Fn f, boolean positive, long[]... shapes) throws OrtException {
        Built b = build(f, DType.DOUBLE, shapes);
        double[][] x = randomInputs(shapes, positive);
        try (OrtSession s = session(b.model)) {
            double[][] grads = run(s, x, DType.DOUBLE, shapes, true).grads;
            double worst = 0;
            double eps = 1e-6;
            for (int i = 0; i < shapes.length; i++) {
                int n = x[i].length;
                for (int k = 0; k < Math.min(n, 40); k++) {
                    int j = n <= 40 ? k : rnd.nextInt(n);
                    double keep = x[i][j];
                    x[i][j] = keep + eps;
                    double lp = run(s, x, DType.DOUBLE, shapes, false).loss;
                    x[i][j] = keep - eps;
                    double lm = run(s, x, DType.DOUBLE, shapes, false).loss;
                    x[i][j] = keep;
                    double fd = (lp - lm) / (2 * eps);
                    double err = Math.abs(fd - grads[i][j]) / Math.max(1e-3, Math.abs(fd) + Math.abs(grads[i][j]));
                    worst = Math.max(worst, err);
                }
            }
            return worst;
        }
    }

    /** float32, directional derivative along a random unit direction over all inputs. */
    double directional(Fn f, boolean positive, long[]... shapes) throws OrtException {
        Built b = build(f, DType.FLOAT, shapes);
        double[][] x = randomInputs(shapes, positive);
        double[][] dir = randomInputs(shapes, false);
        double norm = 0;
        for (double[] d : dir) for (double v : d) norm += v * v;
        norm = Math.sqrt(norm);
        try (OrtSession s = session(b.model)) {
            double[][] grads = run(s, x, DType.FLOAT, shapes, true).grads;
            double analytic = 0;
            for (int i = 0; i < shapes.length; i++) for (int j = 0; j < x[i].length; j++) analytic += grads[i][j] * dir[i][j] / norm;
            double eps = 1e-2;
            double[][] xp = shifted(x, dir, eps / norm), xm = shifted(x, dir, -eps / norm);
            double fd = (run(s, xp, DType.FLOAT, shapes, false).loss - run(s, xm, DType.FLOAT, shapes, false).loss) / (2 * eps);
            return Math.abs(fd - analytic) / Math.max(1e-3, Math.abs(fd) + Math.abs(analytic));
        }
    }

    void assertElementwise(Fn f, double tol, boolean positive, long[]... shapes) throws OrtException {
        double err = elementwise(f, positive, shapes);
        assertTrue(err <= tol, "float64 finite-difference error " + err + " > " + tol);
    }

    void assertDirectional(Fn f, double tol, boolean positive, long[]... shapes) throws OrtException {
        double err = directional(f, positive, shapes);
        assertTrue(err <= tol, "float32 directional error " + err + " > " + tol);
    }

    // ------------------------------------------------------------------

    private record Built(byte[] model) {}

    private record Out(double loss, double[][] grads) {}

    private Built build(Fn f, DType dt, long[][] shapes) {
        Graph g = new Graph("gradcheck");
        Tensor[] p = new Tensor[shapes.length];
        for (int i = 0; i < shapes.length; i++) p[i] = g.parameter("p" + i, dt, shapes[i]);
        Tensor y = f.apply(g, p);
        double[] w = new double[(int) y.numel()];
        for (int i = 0; i < w.length; i++) w[i] = rnd.nextGaussian();
        Tensor wt = g.constant("w", dt, y.shape(), w);
        long[] axes = new long[y.rank()];
        for (int i = 0; i < axes.length; i++) axes[i] = i;
        Tensor prod = Elementwise.mul(g, y, wt);
        Tensor loss = axes.length == 0 ? prod : Reductions.reduceSum(g, prod, false, axes);
        Map<Tensor, Tensor> grads = Autodiff.gradients(g, loss, List.of(p));
        g.output(loss, "loss");
        for (int i = 0; i < p.length; i++) {
            Tensor gr = grads.get(p[i]);
            if (gr == null) gr = Shapes.zeros(g, dt, p[i].shape());
            g.output(gr, "grad" + i);
        }
        return new Built(g.toBytes());
    }

    private OrtSession session(byte[] model) throws OrtException {
        OrtSession.SessionOptions o = new OrtSession.SessionOptions();
        // BASIC: the extended level fuses Transpose+MatMul into FusedMatMul, which has no float64 kernel.
        o.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.BASIC_OPT);
        o.setIntraOpNumThreads(1);
        return env.createSession(model, o);
    }

    private Out run(OrtSession s, double[][] x, DType dt, long[][] shapes, boolean withGrads) throws OrtException {
        Map<String, OnnxTensor> in = new HashMap<>();
        List<OnnxTensor> all = new ArrayList<>();
        try {
            for (int i = 0; i < x.length; i++) {
                OnnxTensor t;
                if (dt == DType.DOUBLE) {
                    t = OnnxTensor.createTensor(env, DoubleBuffer.wrap(x[i]), shapes[i]);
                } else {
                    float[] f = new float[x[i].length];
                    for (int j = 0; j < f.length; j++) f[j] = (float) x[i][j];
                    t = OnnxTensor.createTensor(env, FloatBuffer.wrap(f), shapes[i]);
                }
                all.add(t);
                in.put("p" + i, t);
            }
            try (OrtSession.Result r = s.run(in)) {
                double loss = values((OnnxTensor) r.get("loss").get())[0];
                double[][] grads = null;
                if (withGrads) {
                    grads = new double[x.length][];
                    for (int i = 0; i < x.length; i++) grads[i] = values((OnnxTensor) r.get("grad" + i).get());
                }
                return new Out(loss, grads);
            }
        } finally {
            all.forEach(OnnxTensor::close);
        }
    }

    private static double[] values(OnnxTensor t) {
        if (t.getInfo().type == ai.onnxruntime.OnnxJavaType.DOUBLE) {
            DoubleBuffer b = t.getDoubleBuffer();
            double[] d = new double[b.remaining()];
            b.get(d);
            return d;
        }
        FloatBuffer b = t.getFloatBuffer();
        double[] d = new double[b.remaining()];
        for (int i = 0; i < d.length; i++) d[i] = b.get(i);
        return d;
    }

    private double[][] randomInputs(long[][] shapes, boolean positive) {
        double[][] x = new double[shapes.length][];
        for (int i = 0; i < shapes.length; i++) {
            long n = 1;
            for (long d : shapes[i]) n *= d;
            x[i] = new double[(int) n];
            for (int j = 0; j < n; j++) {
                x[i][j] = positive ? 0.5 + rnd.nextDouble() * 1.5 : rnd.nextGaussian();
            }
        }
        return x;
    }

    private static double[][] shifted(double[][] x, double[][] d, double s) {
        double[][] y = new double[x.length][];
        for (int i = 0; i < x.length; i++) {
            y[i] = x[i].clone();
            for (int j = 0; j < y[i].length; j++) y[i][j] += s * d[i][j];
        }
        return y;
    }
}
