package dinostream.model.dino;

import dinostream.model.graph.DType;
import dinostream.model.graph.Graph;
import dinostream.model.graph.Reductions;
import dinostream.model.graph.Tensor;

import java.util.Collection;

import static dinostream.model.graph.Elementwise.add;
import static dinostream.model.graph.Elementwise.compare;
import static dinostream.model.graph.Elementwise.mul;
import static dinostream.model.graph.Elementwise.where;

/**
 * fp16's dynamic loss scaling, in-graph, with torch.cuda.amp.GradScaler's defaults (what the official
 * {@code --use_fp16} recipe builds; model/docs/algorithm.md §5, "Mixed precision"). fp16 keeps 5 exponent
 * bits: gradients below 6e-8 vanish and products above 65504 overflow. The loss is multiplied by the
 * scale before the backward pass so that small gradients stay representable; the gradients are divided
 * by it again before clipping. A step whose gradients hold an infinity or NaN (the scale was too large)
 * changes no parameter, moment or optimizer count and halves the scale; after {@link #GROWTH_INTERVAL}
 * good steps in a row the scale doubles.
 */
public final class LossScaler {
    private LossScaler() {}

    public static final float INIT_SCALE = 65536f;
    public static final long GROWTH_INTERVAL = 2000;
    static final double GROWTH = 2.0, BACKOFF = 0.5;

    /** The new scale and tracker of one step. */
    public record Next(Tensor scale, Tensor growthTracker) {}

    /** loss * scale: what the backward pass starts from. */
    static Tensor scaled(Graph g, Tensor loss, Tensor scale) {
        return mul(g, loss, scale);
    }

    /** A gradient of the scaled loss divided by the scale (a power of two: exact), as GradScaler.unscale_. */
    static Tensor unscale(Graph g, Tensor grad, Tensor inverseScale) {
        return mul(g, grad, inverseScale);
    }

    static Tensor inverse(Graph g, Tensor scale) {
        return g.node1("Reciprocal", new Tensor[]{scale}, scale.dtype, scale.shape());
    }

    /**
     * Whether any of the gradients holds an infinity or NaN ({@link Reductions#totalSum} is then
     * non-finite; finite gradients, unscaled, never sum past 3e38).
     */
    static Tensor foundInf(Graph g, Collection<Tensor> grads) {
        Tensor total = Reductions.totalSum(g, grads);
        // x - x is 0 for every finite x, NaN for infinities and NaN; NaN == 0 is false.
        Tensor zero = g.node1("Sub", new Tensor[]{total, total}, total.dtype, total.shape());
        return g.node1("Not", new Tensor[]{compare(g, "Equal", zero, g.scalar(0, total.dtype))}, DType.BOOL, total.shape());
    }

    /** GradScaler.update: back off on an overflow, grow after {@link #GROWTH_INTERVAL} good steps in a row. */
    static Next update(Graph g, Tensor scale, Tensor growthTracker, Tensor foundInf) {
        Tensor goodSteps = add(g, growthTracker, g.scalar(1, DType.INT64));
        Tensor grow = compare(g, "Equal", goodSteps, g.scalar(GROWTH_INTERVAL, DType.INT64));
        Tensor zero = g.scalar(0, DType.INT64);
        Tensor tracker = where(g, foundInf, zero, where(g, grow, zero, goodSteps));
        Tensor next = where(g, foundInf, mul(g, scale, g.scalar(BACKOFF, scale.dtype)),
                where(g, grow, mul(g, scale, g.scalar(GROWTH, scale.dtype)), scale));
        return new Next(next, tracker);
    }
}
