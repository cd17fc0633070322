package dinostream.model.graph;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Reductions over axes, each followed by its gradient rule, and the broadcast-undoing sum. */
public final class Reductions {
    private Reductions() {}

    static long[] reducedShape(long[] in, long[] axes, boolean keepdims) {
        boolean[] red = new boolean[in.length];
        for (long a : axes) red[(int) (a < 0 ? a + in.length : a)] = true;
        List<Long> out = new ArrayList<>();
        for (int i = 0; i < in.length; i++) {
            if (!red[i]) out.add(in[i]);
            else if (keepdims) out.add(1L);
        }
        return out.stream().mapToLong(Long::longValue).toArray();
    }

    public static Tensor reduceSum(Graph g, Tensor x, boolean keepdims, long... axes) {
        Tensor y = g.node1("ReduceSum", new Tensor[]{x, g.ints(axes)}, x.dtype, reducedShape(x.shape(), axes, keepdims),
                Attr.i("keepdims", keepdims ? 1 : 0));
        // Every input element contributes once: broadcast the output gradient back.
        g.record(new Tensor[]{x}, y, gy -> new Tensor[]{spread(g, gy[0], x.shape(), axes, keepdims)});
        return y;
    }

    /**
     * One float scalar: the sum of every element of every tensor (a ReduceSum over all axes each, then
     * one Sum). Not recorded (a check on values, never differentiated): infinite or NaN exactly when
     * some element is, or, for finite values, past 3e38.
     */
    public static Tensor totalSum(Graph g, java.util.Collection<Tensor> ts) {
        java.util.List<Tensor> sums = new java.util.ArrayList<>();
        for (Tensor t : ts) sums.add(g.node1("ReduceSum", new Tensor[]{t}, t.dtype, new long[0], Attr.i("keepdims", 0)));
        return Elementwise.sumAll(g, sums);
    }

    public static Tensor reduceMean(Graph g, Tensor x, boolean keepdims, long... axes) {
        Tensor y = g.node1("ReduceMean", new Tensor[]{x, g.ints(axes)}, x.dtype, reducedShape(x.shape(), axes, keepdims),
                Attr.i("keepdims", keepdims ? 1 : 0));
        long count = x.numel() / Math.max(1, y.numel());
        g.record(new Tensor[]{x}, y, gy -> new Tensor[]{
                spread(g, Elementwise.scale(g, gy[0], 1.0 / count), x.shape(), axes, keepdims)});
        return y;
    }

    /** Broadcasts a reduced gradient back to the input shape. */
    private static Tensor spread(Graph g, Tensor gy, long[] inShape, long[] axes, boolean keepdims) {
        Tensor k = keepdims ? gy : Shapes.reshape(g, gy, reducedShape(inShape, axes, true));
        return Shapes.expand(g, k, inShape);
    }

    /**
     * Sums a gradient over the axes along which a value of {@code target} shape was broadcast,
     * giving it the target shape. Leading axes are reduced without keepdims, so a bias gradient
     * [rows, D] -> [D] is a single fast row reduction.
     */
    public static Tensor sumTo(Graph g, Tensor grad, long[] target) {
        long[] s = grad.shape();
        if (Arrays.equals(s, target)) return grad;
        int lead = s.length - target.length;
        List<Long> leading = new ArrayList<>();
        List<Long> inner = new ArrayList<>();
        for (int i = 0; i < s.length; i++) {
            if (i < lead) leading.add((long) i);
            else if (target[i - lead] == 1 && s[i] != 1) inner.add((long) i);
        }
        Tensor t = grad;
        if (!inner.isEmpty()) {
            long[] ax = inner.stream().mapToLong(Long::longValue).toArray();
            t = g.node1("ReduceSum", new Tensor[]{t, g.ints(ax)}, t.dtype, reducedShape(t.shape(), ax, true),
                    Attr.i("keepdims", 1));
        }
        if (!leading.isEmpty()) {
            long[] ax = leading.stream().mapToLong(Long::longValue).toArray();
            t = g.node1("ReduceSum", new Tensor[]{t, g.ints(ax)}, t.dtype, reducedShape(t.shape(), ax, false),
                    Attr.i("keepdims", 0));
        }
        if (!Arrays.equals(t.shape(), target)) t = Shapes.reshape(g, t, target);
        return t;
    }
}
