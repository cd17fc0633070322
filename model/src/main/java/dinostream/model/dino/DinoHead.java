package dinostream.model.dino;

import dinostream.model.graph.Graph;
import dinostream.model.graph.Tensor;

import java.util.Map;

import static dinostream.model.graph.Elementwise.div;
import static dinostream.model.graph.Elementwise.max;
import static dinostream.model.graph.Elementwise.mul;
import static dinostream.model.graph.Elementwise.sqrt;
import static dinostream.model.graph.Linear.gemm;
import static dinostream.model.graph.NN.gelu;
import static dinostream.model.graph.Reductions.reduceSum;

/**
 * The DINO projection head (model/docs/algorithm.md §3): 3-layer MLP with GELU to the bottleneck, L2
 * normalization, and the weight-normalized last layer W = g * v / ||v_row||.
 */
public final class DinoHead {
    private DinoHead() {}

    /** features [rows, D] -> logits [rows, out_dim]. */
    public static Tensor forward(Graph g, DinoConfig c, Map<String, Tensor> p, Tensor features) {
        Tensor h = gelu(g, linear(g, p, "head.mlp.0", features));
        h = gelu(g, linear(g, p, "head.mlp.2", h));
        h = linear(g, p, "head.mlp.4", h);
        Tensor z = l2Normalize(g, h);
        Tensor v = p.get("head.last_layer.weight_v");
        Tensor w = mul(g, v, div(g, p.get("head.last_layer.weight_g"), rowNorm(g, v)));
        return gemm(g, z, w, null, false, true);
    }

    private static Tensor linear(Graph g, Map<String, Tensor> p, String name, Tensor x) {
        return gemm(g, x, p.get(name + ".weight"), p.get(name + ".bias"), false, true);
    }

    /** x / max(||x||, 1e-12) per row (F.normalize). */
    static Tensor l2Normalize(Graph g, Tensor x) {
        return div(g, x, max(g, rowNorm(g, x), g.scalar(1e-12, x.dtype)));
    }

    private static Tensor rowNorm(Graph g, Tensor x) {
        return sqrt(g, reduceSum(g, mul(g, x, x), true, -1));
    }
}
