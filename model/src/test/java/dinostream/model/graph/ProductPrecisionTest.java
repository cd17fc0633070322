package dinostream.model.graph;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import org.junit.jupiter.api.Test;

import java.nio.FloatBuffer;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Products under a bf16 product precision: the forward reads bf16-rounded operands and rounds its
 * result; the gradient rule of the rounding is the same rounding of the incoming gradient, so the
 * backward products read rounded operands and return rounded gradients.
 */
class ProductPrecisionTest {
    private final OrtEnvironment env = OrtEnvironment.getEnvironment();

    /** Round to nearest even at 8 significant bits, as Cast FLOAT to BFLOAT16 does (finite values). */
    static float bf16(float x) {
        int b = Float.floatToRawIntBits(x);
        b += 0x7FFF + ((b >>> 16) & 1);
        return Float.intBitsToFloat(b & 0xFFFF0000);
    }

    static boolean isBf16(float x) {
        return (Float.floatToRawIntBits(x) & 0xFFFF) == 0;
    }

    @Test
    void gemmAndItsGradientsRunOnRoundedValues() throws OrtException {
        int m = 5, k = 7, n = 3;
        Random r = new Random(3);
        float[] a = random(r, m * k), b = random(r, n * k), w = random(r, m * n);
        Graph g = new Graph("bf16_gemm");
        Tensor pa = g.parameter("a", DType.FLOAT, m, k), pb = g.parameter("b", DType.FLOAT, n, k);
        double[] wd = new double[w.length];
        for (int i = 0; i < w.length; i++) wd[i] = w[i];
        Tensor wt = g.constant("w", DType.FLOAT, new long[]{m, n}, wd);
        Map<Tensor, Tensor> grads = g.withProductPrecision(DType.BFLOAT16, () -> {
            Tensor y = Linear.gemm(g, pa, pb, null, false, true);   // y = a b^T
            g.output(y, "y");
            Tensor loss = Reductions.reduceSum(g, Elementwise.mul(g, y, wt), false, 0, 1);
            return Autodiff.gradients(g, loss, List.of(pa, pb));
        });
        g.output(grads.get(pa), "ga");
        g.output(grads.get(pb), "gb");

        float[] y, ga, gb;
        try (OrtSession s = env.createSession(g.toBytes(), new OrtSession.SessionOptions());
             OnnxTensor ta = OnnxTensor.createTensor(env, FloatBuffer.wrap(a), new long[]{m, k});
             OnnxTensor tb = OnnxTensor.createTensor(env, FloatBuffer.wrap(b), new long[]{n, k});
             OrtSession.Result res = s.run(Map.of("a", ta, "b", tb))) {
            y = floats(res.get("y").get());
            ga = floats(res.get("ga").get());
            gb = floats(res.get("gb").get());
        }
        // Expected, from the rounded operands with float32 accumulation; bf16 of the result allows one
        // bf16 step of difference where float32 accumulation order lands near a rounding boundary.
        float[] ra = round(a), rb = round(b), rw = round(w);
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                float acc = 0;
                for (int t = 0; t < k; t++) acc += ra[i * k + t] * rb[j * k + t];
                assertClose(bf16(acc), y[i * n + j], "y");
            }
            for (int t = 0; t < k; t++) {   // dA = dY B with dY = bf16(w)
                float acc = 0;
                for (int j = 0; j < n; j++) acc += rw[i * n + j] * rb[j * k + t];
                assertClose(bf16(acc), ga[i * k + t], "ga");
            }
        }
        for (int j = 0; j < n; j++) {
            for (int t = 0; t < k; t++) {   // dB = dY^T A
                float acc = 0;
                for (int i = 0; i < m; i++) acc += rw[i * n + j] * ra[i * k + t];
                assertClose(bf16(acc), gb[j * k + t], "gb");
            }
        }
        for (float[] v : new float[][]{y, ga, gb}) for (float x : v) assertTrue(isBf16(x), "not a bf16 value: " + x);
    }

    @Test
    void withoutAPrecisionProductsEmitNoCasts() {
        Graph g = new Graph("fp32");
        Tensor a = g.parameter("a", DType.FLOAT, 2, 3), b = g.parameter("b", DType.FLOAT, 3, 4);
        Linear.matmul(g, a, b);
        assertEquals(1, g.nodeCount());
        Graph h = new Graph("bf16");
        Tensor ha = h.parameter("a", DType.FLOAT, 2, 3), hb = h.parameter("b", DType.FLOAT, 3, 4);
        h.withProductPrecision(DType.BFLOAT16, () -> Linear.matmul(h, Linear.matmul(h, ha, hb), Shapes.transpose(h, hb, 1, 0)));
        // a, b, the first product, the transpose of b (a new value): four round trips of two Casts, plus the last result's.
        assertEquals(2 + 1 + 5 * 2, h.nodeCount());
    }

    private static void assertClose(float want, float got, String what) {
        float ulp = Math.abs(want) * 0x1p-7f + 1e-30f;
        assertTrue(Math.abs(want - got) <= ulp, what + ": want " + want + ", got " + got);
    }

    private static float[] round(float[] x) {
        float[] r = new float[x.length];
        for (int i = 0; i < x.length; i++) r[i] = bf16(x[i]);
        return r;
    }

    private static float[] random(Random r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian();
        return x;
    }

    private static float[] floats(Object o) {
        float[][] v;
        try {
            v = (float[][]) ((OnnxTensor) o).getValue();
        } catch (OrtException e) {
            throw new IllegalStateException(e);
        }
        float[] f = new float[v.length * v[0].length];
        for (int i = 0; i < v.length; i++) System.arraycopy(v[i], 0, f, i * v[0].length, v[0].length);
        return f;
    }
}
