package dinostream.model.graph;

import static dinostream.model.graph.Elementwise.cast;
import static dinostream.model.graph.Reductions.sumTo;

/**
 * Matrix products, each followed by its gradient rule. Under a graph's product precision
 * ({@link Graph#withProductPrecision}) every product, those the gradient rules emit included, reads
 * operands rounded to that precision and its result is rounded too, as torch.autocast's bf16 matmul
 * returns bf16; the accumulation stays float32.
 */
public final class Linear {
    private Linear() {}

    /**
     * Y = op(A) op(B) + C for 2-D A and B (op = transpose when the flag is set); C may be null.
     * The gradients are Gemms again, with transpose flags instead of Transpose nodes.
     */
    public static Tensor gemm(Graph g, Tensor a, Tensor b, Tensor c, boolean transA, boolean transB) {
        if (a.rank() != 2 || b.rank() != 2) throw new IllegalArgumentException("gemm needs 2-D operands: " + a + ", " + b);
        long m = transA ? a.dim(1) : a.dim(0), k = transA ? a.dim(0) : a.dim(1);
        long kb = transB ? b.dim(1) : b.dim(0), n = transB ? b.dim(0) : b.dim(1);
        if (k != kb) throw new IllegalArgumentException("gemm inner dimensions differ: " + a + ", " + b);
        DType p = g.productPrecision();
        if (p != null && g.nativeProducts()) {
            DType out = a.dtype == p && b.dtype == p ? p : a.dtype == p ? b.dtype : a.dtype;
            Tensor y = gemmNode(g, cast(g, a, p), cast(g, b, p), c == null ? null : cast(g, c, p), transA, transB, m, n);
            return cast(g, y, out);
        }
        if (p != null) {
            a = rounded(g, a);
            b = rounded(g, b);
            if (c != null) c = rounded(g, c);
        }
        return rounded(g, gemmNode(g, a, b, c, transA, transB, m, n));
    }

    private static Tensor gemmNode(Graph g, Tensor a, Tensor b, Tensor c, boolean transA, boolean transB, long m, long n) {
        Tensor[] in = c == null ? new Tensor[]{a, b} : new Tensor[]{a, b, c};
        Tensor y = g.node1("Gemm", in, a.dtype, new long[]{m, n}, Attr.i("transA", transA ? 1 : 0), Attr.i("transB", transB ? 1 : 0));
        g.record(in, y, gy -> {
            Tensor d = gy[0];
            Tensor ga = null, gb = null, gc = null;
            if (a.requiresGrad) {
                if (!transA) ga = gemm(g, d, b, null, false, !transB);      // dA = dY op(B)^T
                else ga = gemm(g, b, d, null, transB, true);                // dA^T = op(B) dY^T
            }
            if (b.requiresGrad) {
                if (!transB) gb = gemm(g, a, d, null, !transA, false);      // dB = op(A)^T dY
                else gb = gemm(g, d, a, null, true, transA);                // dB^T = dY^T op(A)
            }
            if (c != null && c.requiresGrad) gc = sumTo(g, d, c.shape());
            return c == null ? new Tensor[]{ga, gb} : new Tensor[]{ga, gb, gc};
        });
        return y;
    }

    /** Batched matrix product with numpy broadcasting of the batch axes (attention). */
    public static Tensor matmul(Graph g, Tensor a, Tensor b) {
        if (a.rank() == 2 && b.rank() == 2) return gemm(g, a, b, null, false, false);
        long[] as = a.shape(), bs = b.shape();
        long ka = as[as.length - 1], kb = bs[bs.length - 2];
        if (ka != kb && ka != Tensor.UNKNOWN && kb != Tensor.UNKNOWN) throw new IllegalArgumentException("matmul " + a + " x " + b);
        long[] batch = Elementwise.broadcast(java.util.Arrays.copyOf(as, as.length - 2), java.util.Arrays.copyOf(bs, bs.length - 2));
        long[] out = java.util.Arrays.copyOf(batch, batch.length + 2);
        out[batch.length] = as[as.length - 2];
        out[batch.length + 1] = bs[bs.length - 1];
        DType p = g.productPrecision();
        if (p != null && g.nativeProducts()) {
            DType outType = a.dtype == p && b.dtype == p ? p : a.dtype == p ? b.dtype : a.dtype;
            return cast(g, matmulNode(g, cast(g, a, p), cast(g, b, p), out), outType);
        }
        if (p != null) return rounded(g, matmulNode(g, rounded(g, a), rounded(g, b), out));
        return matmulNode(g, a, b, out);
    }

    private static Tensor matmulNode(Graph g, Tensor a, Tensor b, long[] out) {
        Tensor y = g.node1("MatMul", new Tensor[]{a, b}, a.dtype, out);
        g.record(new Tensor[]{a, b}, y, gy -> new Tensor[]{
                a.requiresGrad ? sumTo(g, matmul(g, gy[0], transposeLast(g, b)), a.shape()) : null,
                b.requiresGrad ? sumTo(g, matmul(g, transposeLast(g, a), gy[0]), b.shape()) : null});
        return y;
    }

    /**
     * x rounded to the graph's product precision and back to its own type (x itself without one, or
     * when x was rounded already). Its gradient is the incoming gradient rounded the same way
     * (straight through, as autocast's backward casts a bf16 value's gradient), marked as rounded so
     * that the backward products read it without rounding it twice.
     */
    static Tensor rounded(Graph g, Tensor x) {
        DType p = g.productPrecision();
        if (p == null || x.dtype == p || g.isRounded(x)) return x;
        Tensor narrow = g.node1("Cast", new Tensor[]{x}, p, x.shape(), Attr.i("to", p.onnx));
        Tensor y = g.node1("Cast", new Tensor[]{narrow}, x.dtype, x.shape(), Attr.i("to", x.dtype.onnx));
        g.markRounded(y);
        g.record(new Tensor[]{x}, y, gy -> new Tensor[]{rounded(g, gy[0])});
        return y;
    }

    /** Swaps the last two axes (ONNX Runtime fuses this into the following MatMul). */
    public static Tensor transposeLast(Graph g, Tensor x) {
        int r = x.rank();
        int[] perm = new int[r];
        for (int i = 0; i < r; i++) perm[i] = i;
        perm[r - 2] = r - 1;
        perm[r - 1] = r - 2;
        return Shapes.transpose(g, x, perm);
    }
}
