package dinostream.model.graph;

import static dinostream.model.graph.Elementwise.add;
import static dinostream.model.graph.Elementwise.cast;
import static dinostream.model.graph.Elementwise.exp;
import static dinostream.model.graph.Elementwise.mul;
import static dinostream.model.graph.Elementwise.scale;
import static dinostream.model.graph.Elementwise.sub;
import static dinostream.model.graph.Reductions.reduceMean;
import static dinostream.model.graph.Reductions.reduceSum;
import static dinostream.model.graph.Reductions.sumTo;

/** Neural-network operators with hand-derived (fused) gradient rules. */
public final class NN {
    private NN() {}

    /** softmax over the last axis. */
    public static Tensor softmax(Graph g, Tensor x) {
        Tensor y = g.node1("Softmax", new Tensor[]{x}, x.dtype, x.shape(), Attr.i("axis", -1));
        // dx = y * (gy - sum(gy * y))
        g.record(new Tensor[]{x}, y, gy -> new Tensor[]{
                mul(g, y, sub(g, gy[0], reduceSum(g, mul(g, gy[0], y), true, -1)))});
        return y;
    }

    /** log-softmax over the last axis. */
    public static Tensor logSoftmax(Graph g, Tensor x) {
        Tensor y = g.node1("LogSoftmax", new Tensor[]{x}, x.dtype, x.shape(), Attr.i("axis", -1));
        // dx = gy - softmax(x) * sum(gy)
        g.record(new Tensor[]{x}, y, gy -> new Tensor[]{
                sub(g, gy[0], mul(g, exp(g, y), reduceSum(g, gy[0], true, -1)))});
        return y;
    }

    /**
     * LayerNormalization over the last axis (opset 17). The backward reuses the op's saved mean
     * and inverse standard deviation instead of recomputing them.
     */
    public static Tensor layerNorm(Graph g, Tensor x, Tensor weight, Tensor bias, double eps) {
        long[] stat = x.shape();
        stat[stat.length - 1] = 1;
        // stash_type 1: statistics in float32, the only variant ONNX Runtime's CPU kernel has.
        Tensor[] o = g.node("LayerNormalization", new Tensor[]{x, weight, bias},
                new DType[]{x.dtype, DType.FLOAT, DType.FLOAT}, new long[][]{x.shape(), stat, stat},
                Attr.i("axis", -1), Attr.f("epsilon", eps), Attr.i("stash_type", 1));
        Tensor y = o[0], mean = o[1], invStd = o[2];
        g.record(new Tensor[]{x, weight, bias}, new Tensor[]{y}, gy -> {
            Tensor d = gy[0];
            Tensor m = cast(g, mean, x.dtype), r = cast(g, invStd, x.dtype);
            Tensor xhat = mul(g, sub(g, x, m), r);
            Tensor gx = null;
            if (x.requiresGrad) {
                // dx = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dxhat = dy * weight
                Tensor dxhat = mul(g, d, weight);
                Tensor t = sub(g, sub(g, dxhat, reduceMean(g, dxhat, true, -1)),
                        mul(g, xhat, reduceMean(g, mul(g, dxhat, xhat), true, -1)));
                gx = mul(g, t, r);
            }
            return new Tensor[]{gx,
                    weight.requiresGrad ? sumTo(g, mul(g, d, xhat), weight.shape()) : null,
                    bias.requiresGrad ? sumTo(g, d, bias.shape()) : null};
        });
        return y;
    }

    /**
     * Exact GELU, x * Phi(x) with Phi from Erf (PyTorch's nn.GELU default). One tape entry with
     * the fused rule dx = gy * (Phi(x) + x * phi(x)), reusing Phi from the forward pass.
     */
    public static Tensor gelu(Graph g, Tensor x) {
        Tensor[] cdfHolder = new Tensor[1];
        // (x * 0.5) * (1 + erf(x / sqrt2)): the form ONNX Runtime's GeluFusion rewrites into one
        // Gelu kernel in inference graphs (Div by sqrt2, not Mul by its inverse, is what it matches).
        Tensor y = g.noGrad(() -> {
            Tensor e = g.node1("Erf", new Tensor[]{Elementwise.div(g, x, g.scalar(Math.sqrt(2), x.dtype))}, x.dtype, x.shape());
            Tensor onePlusErf = add(g, e, g.scalar(1, x.dtype));
            cdfHolder[0] = onePlusErf;
            return mul(g, scale(g, x, 0.5), onePlusErf);
        });
        Tensor out = g.recording() && x.requiresGrad ? asRecorded(g, y, x) : y;
        g.record(new Tensor[]{x}, out, gy -> {
            Tensor cdf = scale(g, cdfHolder[0], 0.5);
            Tensor pdf = scale(g, exp(g, scale(g, mul(g, x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
            return new Tensor[]{mul(g, gy[0], add(g, cdf, mul(g, x, pdf)))};
        });
        return out;
    }

    /** The same value, marked as depending on {@code source} (its nodes were emitted without recording). */
    private static Tensor asRecorded(Graph g, Tensor y, Tensor source) {
        return new Tensor(y.name, y.dtype, y.shape(), source.requiresGrad);
    }
}
