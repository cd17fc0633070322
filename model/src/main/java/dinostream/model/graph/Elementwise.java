package dinostream.model.graph;

import static dinostream.model.graph.Reductions.sumTo;

/** Element-wise operators with numpy broadcasting, each followed by its gradient rule. */
public final class Elementwise {
    private Elementwise() {}

    /** numpy broadcasting; an unknown dimension is taken to fit (ONNX Runtime checks it at run time). */
    static long[] broadcast(long[] a, long[] b) {
        int r = Math.max(a.length, b.length);
        long[] out = new long[r];
        for (int i = 0; i < r; i++) {
            long da = i - (r - a.length) >= 0 ? a[i - (r - a.length)] : 1;
            long db = i - (r - b.length) >= 0 ? b[i - (r - b.length)] : 1;
            if (da == Tensor.UNKNOWN || db == Tensor.UNKNOWN) {
                // unknown with 1 or unknown stays unknown; unknown with n > 1 can only be 1 or n, giving n
                long known = da == Tensor.UNKNOWN ? db : da;
                out[i] = known == 1 ? Tensor.UNKNOWN : known;
                continue;
            }
            if (da != db && da != 1 && db != 1) {
                throw new IllegalArgumentException("shapes " + java.util.Arrays.toString(a) + " and "
                        + java.util.Arrays.toString(b) + " do not broadcast");
            }
            out[i] = da == 1 ? db : da;
        }
        return out;
    }

    static Tensor binary(Graph g, String op, Tensor a, Tensor b) {
        if (a.dtype != b.dtype) throw new IllegalArgumentException(op + ": dtype " + a.dtype + " vs " + b.dtype);
        return g.node1(op, new Tensor[]{a, b}, a.dtype, broadcast(a.shape(), b.shape()));
    }

    static Tensor unary(Graph g, String op, Tensor x) {
        return g.node1(op, new Tensor[]{x}, x.dtype, x.shape());
    }

    public static Tensor add(Graph g, Tensor a, Tensor b) {
        Tensor y = binary(g, "Add", a, b);
        // d(a+b) = gy to both, summed over the axes each side was broadcast along.
        g.record(new Tensor[]{a, b}, y, gy -> new Tensor[]{
                a.requiresGrad ? sumTo(g, gy[0], a.shape()) : null,
                b.requiresGrad ? sumTo(g, gy[0], b.shape()) : null});
        return y;
    }

    public static Tensor sub(Graph g, Tensor a, Tensor b) {
        Tensor y = binary(g, "Sub", a, b);
        g.record(new Tensor[]{a, b}, y, gy -> new Tensor[]{
                a.requiresGrad ? sumTo(g, gy[0], a.shape()) : null,
                b.requiresGrad ? sumTo(g, neg(g, gy[0]), b.shape()) : null});
        return y;
    }

    public static Tensor mul(Graph g, Tensor a, Tensor b) {
        Tensor y = binary(g, "Mul", a, b);
        g.record(new Tensor[]{a, b}, y, gy -> new Tensor[]{
                a.requiresGrad ? sumTo(g, mul(g, gy[0], b), a.shape()) : null,
                b.requiresGrad ? sumTo(g, mul(g, gy[0], a), b.shape()) : null});
        return y;
    }

    public static Tensor div(Graph g, Tensor a, Tensor b) {
        Tensor y = binary(g, "Div", a, b);
        // d(a/b)/db = -a/b^2 = -y/b
        g.record(new Tensor[]{a, b}, y, gy -> new Tensor[]{
                a.requiresGrad ? sumTo(g, div(g, gy[0], b), a.shape()) : null,
                b.requiresGrad ? sumTo(g, neg(g, div(g, mul(g, gy[0], y), b)), b.shape()) : null});
        return y;
    }

    public static Tensor scale(Graph g, Tensor x, double c) {
        return mul(g, x, g.scalar(c, x.dtype));
    }

    public static Tensor neg(Graph g, Tensor x) {
        Tensor y = unary(g, "Neg", x);
        g.record(new Tensor[]{x}, y, gy -> new Tensor[]{neg(g, gy[0])});
        return y;
    }

    public static Tensor exp(Graph g, Tensor x) {
        Tensor y = unary(g, "Exp", x);
        g.record(new Tensor[]{x}, y, gy -> new Tensor[]{mul(g, gy[0], y)});
        return y;
    }

    public static Tensor log(Graph g, Tensor x) {
        Tensor y = unary(g, "Log", x);
        g.record(new Tensor[]{x}, y, gy -> new Tensor[]{div(g, gy[0], x)});
        return y;
    }

    public static Tensor sqrt(Graph g, Tensor x) {
        Tensor y = unary(g, "Sqrt", x);
        // d sqrt(x) = 1 / (2 sqrt(x))
        g.record(new Tensor[]{x}, y, gy -> new Tensor[]{div(g, scale(g, gy[0], 0.5), y)});
        return y;
    }

    public static Tensor erf(Graph g, Tensor x) {
        Tensor y = unary(g, "Erf", x);
        // d erf(x) = 2/sqrt(pi) exp(-x^2)
        g.record(new Tensor[]{x}, y, gy -> new Tensor[]{
                mul(g, gy[0], scale(g, exp(g, neg(g, mul(g, x, x))), 2.0 / Math.sqrt(Math.PI)))});
        return y;
    }

    /** max(a, b); the gradient goes to a where a >= b, to b elsewhere (PyTorch's clamp_min rule for a). */
    public static Tensor max(Graph g, Tensor a, Tensor b) {
        return selecting(g, "Max", "GreaterOrEqual", a, b);
    }

    /** min(a, b); the gradient goes to a where a <= b, to b elsewhere. */
    public static Tensor min(Graph g, Tensor a, Tensor b) {
        return selecting(g, "Min", "LessOrEqual", a, b);
    }

    /** An operator that picks a or b per element; its gradient follows the pick. */
    private static Tensor selecting(Graph g, String op, String picksA, Tensor a, Tensor b) {
        Tensor y = binary(g, op, a, b);
        g.record(new Tensor[]{a, b}, y, gy -> {
            Tensor takeA = compare(g, picksA, a, b);
            Tensor zero = g.scalar(0, gy[0].dtype);
            return new Tensor[]{
                    a.requiresGrad ? sumTo(g, where(g, takeA, gy[0], zero), a.shape()) : null,
                    b.requiresGrad ? sumTo(g, where(g, takeA, zero, gy[0]), b.shape()) : null};
        });
        return y;
    }

    /** cond ? x : y, with broadcasting; the gradient flows to the branch that was taken. */
    public static Tensor where(Graph g, Tensor cond, Tensor x, Tensor y) {
        long[] shape = broadcast(cond.shape(), broadcast(x.shape(), y.shape()));
        Tensor out = g.node1("Where", new Tensor[]{cond, x, y}, x.dtype, shape);
        g.record(new Tensor[]{cond, x, y}, out, gy -> {
            Tensor zero = g.scalar(0, gy[0].dtype);
            return new Tensor[]{null,
                    x.requiresGrad ? sumTo(g, where(g, cond, gy[0], zero), x.shape()) : null,
                    y.requiresGrad ? sumTo(g, where(g, cond, zero, gy[0]), y.shape()) : null};
        });
        return out;
    }

    /** A boolean comparison (Less, Greater, Equal, ...); not differentiable. */
    public static Tensor compare(Graph g, String op, Tensor a, Tensor b) {
        return g.node1(op, new Tensor[]{a, b}, DType.BOOL, broadcast(a.shape(), b.shape()));
    }

    public static Tensor cast(Graph g, Tensor x, DType to) {
        if (x.dtype == to) return x;
        Tensor y = g.node1("Cast", new Tensor[]{x}, to, x.shape(), Attr.i("to", to.onnx));
        if (to.isFloating() && x.dtype.isFloating()) {
            g.record(new Tensor[]{x}, y, gy -> new Tensor[]{cast(g, gy[0], x.dtype)});
        }
        return y;
    }

    /** x^p for a constant exponent (used on scalars: Adam's bias corrections). */
    public static Tensor pow(Graph g, Tensor x, Tensor p) {
        if (p.requiresGrad) throw new IllegalArgumentException("pow: the exponent must not require a gradient");
        Tensor y = binary(g, "Pow", x, p);
        // d x^p = p x^(p-1) = p y / x
        g.record(new Tensor[]{x, p}, y, gy -> new Tensor[]{sumTo(g, mul(g, gy[0], div(g, mul(g, y, p), x)), x.shape()), null});
        return y;
    }

    /** Sum of several tensors of one shape (gradient accumulation); not recorded. */
    public static Tensor sumAll(Graph g, java.util.List<Tensor> ts) {
        if (ts.size() == 1) return ts.get(0);
        if (ts.size() == 2) return g.node1("Add", new Tensor[]{ts.get(0), ts.get(1)}, ts.get(0).dtype, ts.get(0).shape());
        return g.node1("Sum", ts.toArray(new Tensor[0]), ts.get(0).dtype, ts.get(0).shape());
    }
}
