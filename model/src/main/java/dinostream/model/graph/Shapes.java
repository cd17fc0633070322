package dinostream.model.graph;

import java.util.Arrays;

/** Operators that move data without arithmetic, each followed by its gradient rule. */
public final class Shapes {
    private Shapes() {}

    /**
     * Reshape with ONNX's codes: one entry may be -1 (inferred), 0 copies the input's dimension at
     * that index. When the input has unknown dimensions the inferred one stays unknown and the codes
     * go to ONNX as given, so {@code reshape(x, -1, d)} and {@code reshape(x, 0, 0, -1)} also serve
     * inference graphs with symbolic sizes.
     */
    public static Tensor reshape(Graph g, Tensor x, long... shape) {
        long[] in = x.shape(), s = new long[shape.length];
        int inferred = -1;
        for (int i = 0; i < s.length; i++) {
            if (shape[i] == -1) {
                if (inferred >= 0) throw new IllegalArgumentException("reshape " + x + " to " + Arrays.toString(shape));
                inferred = i;
            }
            s[i] = shape[i] == 0 ? in[i] : shape[i];
        }
        if (x.isStatic()) {
            long known = 1;
            for (int i = 0; i < s.length; i++) if (i != inferred) known *= s[i];
            if (inferred >= 0) s[inferred] = x.numel() / known;
            if (Arrays.stream(s).reduce(1, (a, b) -> a * b) != x.numel()) {
                throw new IllegalArgumentException("reshape " + x + " to " + Arrays.toString(shape));
            }
        } else if (inferred >= 0) {
            s[inferred] = Tensor.UNKNOWN;
        }
        if (Arrays.equals(s, in)) return x;   // every entry kept, copied or (the only one) inferred
        Tensor y = g.node1("Reshape", new Tensor[]{x, g.ints(x.isStatic() ? s : shape)}, x.dtype, s);
        g.record(new Tensor[]{x}, y, gy -> new Tensor[]{reshape(g, gy[0], x.shape())});
        return y;
    }

    public static Tensor transpose(Graph g, Tensor x, int... perm) {
        long[] in = x.shape(), out = new long[perm.length];
        long[] p = new long[perm.length];
        int[] inverse = new int[perm.length];
        for (int i = 0; i < perm.length; i++) {
            out[i] = in[perm[i]];
            p[i] = perm[i];
            inverse[perm[i]] = i;
        }
        Tensor y = g.node1("Transpose", new Tensor[]{x}, x.dtype, out, Attr.ints("perm", p));
        g.record(new Tensor[]{x}, y, gy -> new Tensor[]{transpose(g, gy[0], inverse)});
        return y;
    }

    public static Tensor concat(Graph g, int axis, Tensor... xs) {
        int r = xs[0].rank();
        int ax = axis < 0 ? axis + r : axis;
        long[] out = xs[0].shape();
        long[] sizes = new long[xs.length];
        out[ax] = 0;
        for (int i = 0; i < xs.length; i++) {
            sizes[i] = xs[i].dim(ax);
            out[ax] = out[ax] == Tensor.UNKNOWN || sizes[i] == Tensor.UNKNOWN ? Tensor.UNKNOWN : out[ax] + sizes[i];
        }
        if (xs.length == 1) return xs[0];
        Tensor y = g.node1("Concat", xs, xs[0].dtype, out, Attr.i("axis", ax));
        // The gradient of a concatenation is the matching split of the output gradient.
        g.record(xs, y, gy -> split(g, gy[0], ax, sizes));
        return y;
    }

    public static Tensor[] split(Graph g, Tensor x, int axis, long... sizes) {
        int ax = axis < 0 ? axis + x.rank() : axis;
        long[][] shapes = new long[sizes.length][];
        DType[] types = new DType[sizes.length];
        for (int i = 0; i < sizes.length; i++) {
            shapes[i] = x.shape();
            shapes[i][ax] = sizes[i];
            types[i] = x.dtype;
        }
        Tensor[] ys = g.node("Split", new Tensor[]{x, g.ints(sizes)}, types, shapes, Attr.i("axis", ax));
        g.record(new Tensor[]{x}, ys, gy -> {
            Tensor[] parts = new Tensor[gy.length];
            for (int i = 0; i < gy.length; i++) parts[i] = gy[i] != null ? gy[i] : zeros(g, x.dtype, shapes[i]);
            return new Tensor[]{concat(g, ax, parts)};
        });
        return ys;
    }

    /** x[start:end] along one axis (step 1). */
    public static Tensor slice(Graph g, Tensor x, int axis, long start, long end) {
        int ax = axis < 0 ? axis + x.rank() : axis;
        long[] out = x.shape();
        out[ax] = end - start;
        Tensor y = g.node1("Slice", new Tensor[]{x, g.ints(start), g.ints(end), g.ints(ax)}, x.dtype, out);
        // The gradient of a slice is the output gradient padded with zeros back to the input size.
        g.record(new Tensor[]{x}, y, gy -> {
            long[] pads = new long[2 * x.rank()];
            pads[ax] = start;
            pads[x.rank() + ax] = x.dim(ax) - end;
            return new Tensor[]{g.node1("Pad", new Tensor[]{gy[0], g.ints(pads)}, x.dtype, x.shape())};
        });
        return y;
    }

    public static Tensor expand(Graph g, Tensor x, long... shape) {
        long[] out = Elementwise.broadcast(x.shape(), shape);
        if (Arrays.equals(out, x.shape())) return x;
        Tensor y = g.node1("Expand", new Tensor[]{x, g.ints(shape)}, x.dtype, out);
        g.record(new Tensor[]{x}, y, gy -> new Tensor[]{Reductions.sumTo(g, gy[0], x.shape())});
        return y;
    }

    /** A tensor of zeros (a broadcast scalar; nothing is stored). */
    public static Tensor zeros(Graph g, DType dtype, long... shape) {
        return g.node1("Expand", new Tensor[]{g.scalar(0, dtype), g.ints(shape)}, dtype, shape);
    }
}
