package dinostream.model.dino;

import dinostream.model.graph.Graph;
import dinostream.model.graph.Tensor;

import java.util.Map;
import java.util.Objects;
import java.util.function.Function;

import static dinostream.model.graph.Elementwise.add;
import static dinostream.model.graph.Elementwise.mul;
import static dinostream.model.graph.Elementwise.scale;
import static dinostream.model.graph.Linear.gemm;
import static dinostream.model.graph.Linear.matmul;
import static dinostream.model.graph.Linear.transposeLast;
import static dinostream.model.graph.NN.gelu;
import static dinostream.model.graph.NN.layerNorm;
import static dinostream.model.graph.NN.softmax;
import static dinostream.model.graph.Shapes.concat;
import static dinostream.model.graph.Shapes.reshape;
import static dinostream.model.graph.Shapes.slice;
import static dinostream.model.graph.Shapes.split;
import static dinostream.model.graph.Shapes.transpose;

/**
 * The DINO ViT backbone (model/docs/algorithm.md §2; {@code vision_transformer.py}
 * {@code VisionTransformer}), the one definition behind both the training graph and the inference
 * exports. What differs between those, static or symbolic batch and image sizes, is a
 * {@link ShapePolicy}; stochastic depth comes with the training graph's masks only.
 *
 * <p>Tokens are a 2-D [B*T, D] matrix so every linear layer is one Gemm. Parameters carry the
 * official names ("backbone.blocks.0.attn.qkv.weight", ...), so the official weights map by name.
 */
public final class VisionTransformer {
    private final Graph g;
    private final DinoConfig c;
    private final Function<String, Tensor> params;
    private final ShapePolicy shapes;

    /** The training backbone: static shapes; {@code params} by official name. */
    public VisionTransformer(Graph g, DinoConfig c, Map<String, Tensor> params) {
        this(g, c, params::get, new ShapePolicy.Static(g, c));
    }

    /** @param params the backbone's parameters by official name (an export creates them on first use) */
    public VisionTransformer(Graph g, DinoConfig c, Function<String, Tensor> params, ShapePolicy shapes) {
        this.g = g;
        this.c = c;
        this.params = params;
        this.shapes = shapes;
    }

    /** Stochastic-depth masks for one backbone pass: [batch, 1, 1] per block and branch (null: none). */
    public interface DropPath {
        Tensor mask(int block, String branch);
    }

    /** images [B, C, H, W] (normalized) -> final-norm CLS features [B, D]; dropPath null in eval mode. */
    public Tensor forward(Tensor images, DropPath dropPath) {
        Tensor x = tokens(images);
        for (int i = 0; i < c.depth - 1; i++) x = block(i, x, images, dropPath);
        // LayerNorm is per token, so normalizing the CLS token alone equals DINO's norm-then-select.
        return norm(clsBlock(c.depth - 1, x, images, dropPath), "backbone.norm");
    }

    /** The last block's softmax attention of the CLS query, [B, heads, tokens], CLS column first (attention maps). */
    public Tensor lastCLSAttention(Tensor images) {
        Tensor x = tokens(images);
        for (int i = 0; i < c.depth - 1; i++) x = block(i, x, images, null);
        String n = prefix(c.depth - 1);
        Tensor[] qkv = qkv(n, norm(x, n + "norm1"));
        return reshape(g, clsAttention(heads(qkv[0], images), heads(qkv[1], images)), 0, 0, -1);
    }

    /** Patch embedding, CLS token and position embeddings: [B * (1 + patches), D]. */
    private Tensor tokens(Tensor images) {
        Tensor patches = shapes.patchEmbedding(images, param("backbone.patch_embed.proj.weight"),
                param("backbone.patch_embed.proj.bias"));
        Tensor x = concat(g, 1, shapes.perImage(param("backbone.cls_token"), images), patches);
        x = add(g, x, shapes.positionEmbedding(param("backbone.pos_embed"), images));
        return reshape(g, x, -1, c.dim);
    }

    /** Pre-norm block: x + Attn(LN1(x)), then + MLP(LN2(x)), each branch under stochastic depth. */
    private Tensor block(int i, Tensor x, Tensor images, DropPath dropPath) {
        String n = prefix(i);
        Tensor[] qkv = qkv(n, norm(x, n + "norm1"));
        Tensor q = heads(qkv[0], images), k = heads(qkv[1], images), v = heads(qkv[2], images);
        Tensor attn = softmax(g, matmul(g, scaled(q), transposeLast(g, k)));
        Tensor o = reshape(g, transpose(g, matmul(g, attn, v), 0, 2, 1, 3), -1, c.dim);   // [B, T, heads, hd] -> rows
        x = add(g, x, dropPath(linear(o, n + "attn.proj"), mask(dropPath, i, "attn")));
        return add(g, x, dropPath(mlp(n, norm(x, n + "norm2")), mask(dropPath, i, "mlp")));
    }

    /**
     * The last block evaluated for the CLS token only, since nothing reads the other tokens' outputs:
     * keys and values still come from every token, but the query, projection and MLP run on one row
     * per image. Same result as the full block, about a fifth of its cost. [B, D].
     */
    private Tensor clsBlock(int i, Tensor x, Tensor images, DropPath dropPath) {
        String n = prefix(i);
        Tensor[] qkv = qkv(n, norm(x, n + "norm1"));
        Tensor a = clsAttention(heads(qkv[0], images), heads(qkv[1], images));
        Tensor o = reshape(g, matmul(g, a, heads(qkv[2], images)), -1, c.dim);   // [B, heads, 1, hd] -> [B, D]
        Tensor cls = reshape(g, slice(g, shapes.byImage(x, images, c.dim), 1, 0, 1), -1, c.dim);
        cls = add(g, cls, dropPath(linear(o, n + "attn.proj"), mask(dropPath, i, "attn")));
        return add(g, cls, dropPath(mlp(n, norm(cls, n + "norm2")), mask(dropPath, i, "mlp")));
    }

    /** softmax(q_cls k^T / sqrt(hd)): the CLS query's attention over all tokens, [B, heads, 1, T]. */
    private Tensor clsAttention(Tensor q, Tensor k) {
        return softmax(g, matmul(g, scaled(slice(g, q, 2, 0, 1)), transposeLast(g, k)));
    }

    /** q / sqrt(hd), applied before the product with k^T ({@code Attention.forward} scales the product: equal up to rounding). */
    private Tensor scaled(Tensor q) {
        return scale(g, q, Math.pow(c.headDim(), -0.5));
    }

    /** q, k, v rows [B*T, D] each, from one qkv Gemm (its output is q | k | v along the features). */
    private Tensor[] qkv(String n, Tensor x) {
        return split(g, linear(x, n + "attn.qkv"), 1, c.dim, c.dim, c.dim);
    }

    /** Rows [B*T, D] split into heads: [B, heads, T, head_dim]. */
    private Tensor heads(Tensor rows, Tensor images) {
        return transpose(g, shapes.byImage(rows, images, c.heads, c.headDim()), 0, 2, 1, 3);
    }

    private Tensor mlp(String n, Tensor x) {
        return linear(gelu(g, linear(x, n + "mlp.fc1")), n + "mlp.fc2");
    }

    /** PyTorch's Linear: x W^T + b. */
    private Tensor linear(Tensor x, String name) {
        return gemm(g, x, param(name + ".weight"), param(name + ".bias"), false, true);
    }

    private Tensor norm(Tensor x, String name) {
        return layerNorm(g, x, param(name + ".weight"), param(name + ".bias"), c.lnEps);
    }

    /** Stochastic depth: the residual branch scaled per sample by 0 or 1/keep (mask [B, 1, 1] from the caller's RNG). */
    private Tensor dropPath(Tensor branch, Tensor mask) {
        if (mask == null) return branch;
        return reshape(g, mul(g, reshape(g, branch, mask.dim(0), -1, c.dim), mask), -1, c.dim);
    }

    private static Tensor mask(DropPath dropPath, int block, String branch) {
        return dropPath == null ? null : dropPath.mask(block, branch);
    }

    private static String prefix(int i) {
        return "backbone.blocks." + i + ".";
    }

    private Tensor param(String name) {
        return Objects.requireNonNull(params.apply(name), () -> "no parameter " + name);
    }
}
