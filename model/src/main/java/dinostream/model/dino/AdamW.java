package dinostream.model.dino;

import dinostream.model.graph.DType;
import dinostream.model.graph.Graph;
import dinostream.model.graph.Tensor;

import static dinostream.model.graph.Elementwise.add;
import static dinostream.model.graph.Elementwise.cast;
import static dinostream.model.graph.Elementwise.div;
import static dinostream.model.graph.Elementwise.min;
import static dinostream.model.graph.Elementwise.mul;
import static dinostream.model.graph.Elementwise.pow;
import static dinostream.model.graph.Elementwise.scale;
import static dinostream.model.graph.Elementwise.sqrt;
import static dinostream.model.graph.Elementwise.sub;
import static dinostream.model.graph.Reductions.reduceSum;

/** AdamW with PyTorch's semantics and per-tensor gradient clipping (model/docs/algorithm.md §5), emitted in-graph. */
public final class AdamW {
    private AdamW() {}

    public record Updated(Tensor param, Tensor expAvg, Tensor expAvgSq, Tensor step) {}

    /** DINO's clip_gradients: g * min(1, clip / (||g|| + 1e-6)); clip 0 disables. */
    public static Tensor clip(Graph g, Tensor grad, double clip) {
        if (clip <= 0) return grad;
        long[] all = new long[grad.rank()];
        for (int i = 0; i < all.length; i++) all[i] = i;
        Tensor norm = sqrt(g, reduceSum(g, mul(g, grad, grad), false, all));
        Tensor coef = div(g, g.scalar(clip, grad.dtype), add(g, norm, g.scalar(1e-6, grad.dtype)));
        return mul(g, grad, min(g, coef, g.scalar(1, grad.dtype)));
    }

    /**
     * One AdamW step of one parameter. {@code weightDecay} is null for the non-regularized group.
     * The step counter is per parameter, as in torch.optim.
     */
    public static Updated step(Graph g, DinoConfig c, Tensor param, Tensor grad, Tensor expAvg, Tensor expAvgSq,
                               Tensor step, Tensor lr, Tensor weightDecay) {
        DType f = param.dtype;
        Tensor t = add(g, step, g.scalar(1, DType.INT64));
        Tensor tf = cast(g, t, f);
        Tensor one = g.scalar(1, f);
        Tensor bc1 = sub(g, one, pow(g, g.scalar(c.beta1, f), tf));
        Tensor bc2 = sub(g, one, pow(g, g.scalar(c.beta2, f), tf));
        Tensor p = weightDecay == null ? param : mul(g, param, sub(g, one, mul(g, lr, weightDecay)));
        Tensor m = add(g, scale(g, expAvg, c.beta1), scale(g, grad, 1 - c.beta1));
        Tensor v = add(g, scale(g, expAvgSq, c.beta2), scale(g, mul(g, grad, grad), 1 - c.beta2));
        Tensor denom = add(g, div(g, sqrt(g, v), sqrt(g, bc2)), g.scalar(c.adamEps, f));
        Tensor stepSize = div(g, lr, bc1);
        Tensor next = sub(g, p, mul(g, div(g, m, denom), stepSize));
        return new Updated(next, m, v, t);
    }
}
