package dinostream.model.dino;

import dinostream.model.graph.Graph;
import dinostream.model.graph.Tensor;

import java.util.Map;

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
import static dinostream.model.graph.Shapes.expand;
import static dinostream.model.graph.Shapes.reshape;
import static dinostream.model.graph.Shapes.slice;
import static dinostream.model.graph.Shapes.split;
import static dinostream.model.graph.Shapes.transpose;

/**
 * The DINO ViT backbone (DINO_SPEC.md §2) for a batch of equal-size crops. Tokens are kept as a
 * 2-D [batch * tokens, dim] matrix so every linear layer is a single Gemm.
 */
public final class VisionTransformer {
    private final Graph g;
    private final DinoConfig c;
    private final Map<String, Tensor> p;

    /** @param params the backbone's parameters by official name ("backbone.blocks.0.attn.qkv.weight", ...) */
    public VisionTransformer(Graph g, DinoConfig c, Map<String, Tensor> params) {
        this.g = g;
        this.c = c;
        this.p = params;
    }

    /** Stochastic-depth masks for one backbone pass: [batch, 1, 1] per block and branch (null: none). */
    public interface DropPath {
        Tensor mask(int block, String branch);
    }

    /** images [B, C, H, W] (normalized) -> final-norm CLS features [B, D]. */
    public Tensor forward(Tensor images, DropPath dropPath) {
        Tensor tokens = tokens(images);
        long b = images.dim(0), t = tokens.dim(0) / b;
        for (int i = 0; i < c.depth - 1; i++) tokens = block(i, tokens, b, t, dropPath);
        Tensor cls = clsBlock(c.depth - 1, tokens, b, t, dropPath);
        return layerNorm(g, cls, p.get("backbone.norm.weight"), p.get("backbone.norm.bias"), c.lnEps);
    }

    /** Patch embedding, CLS token and position embeddings: [B * (1 + patches), D]. */
    Tensor tokens(Tensor images) {
        long b = images.dim(0), ch = images.dim(1);
        int pt = c.patch, gh = (int) images.dim(2) / pt, gw = (int) images.dim(3) / pt;
        // Conv2d(kernel = stride = patch) as one matmul over patches flattened in (c, ky, kx) order.
        Tensor patches = reshape(g, transpose(g, reshape(g, images, b, ch, gh, pt, gw, pt), 0, 2, 4, 1, 3, 5),
                b * gh * gw, ch * pt * pt);
        Tensor w = reshape(g, p.get("backbone.patch_embed.proj.weight"), c.dim, ch * pt * pt);
        Tensor x = reshape(g, gemm(g, patches, w, p.get("backbone.patch_embed.proj.bias"), false, true), b, (long) gh * gw, c.dim);
        Tensor cls = expand(g, p.get("backbone.cls_token"), b, 1, c.dim);
        x = add(g, concat(g, 1, cls, x), positionEmbedding(gh, gw));
        return reshape(g, x, b * (1 + (long) gh * gw), c.dim);
    }

    /** The stored embeddings when the grid matches, else their bicubic interpolation (§2.1). */
    Tensor positionEmbedding(int gh, int gw) {
        Tensor pos = p.get("backbone.pos_embed");
        int g0 = c.gridSize();
        if (gh == g0 && gw == g0) return pos;
        int rows = 1 + gh * gw, cols = 1 + g0 * g0;
        Tensor map = g.constant("pos_interp_" + gh + "x" + gw, pos.dtype, new long[]{rows, cols},
                PosEmbedInterpolation.fullMap(g0, gh, gw));
        return reshape(g, gemm(g, map, reshape(g, pos, cols, c.dim), null, false, false), 1, rows, c.dim);
    }

    Tensor block(int i, Tensor x, long b, long t, DropPath dropPath) {
        String n = "backbone.blocks." + i + ".";
        Tensor h = layerNorm(g, x, p.get(n + "norm1.weight"), p.get(n + "norm1.bias"), c.lnEps);
        x = add(g, x, dropPath(attention(n, h, b, t), dropPath == null ? null : dropPath.mask(i, "attn"), b, t));
        h = layerNorm(g, x, p.get(n + "norm2.weight"), p.get(n + "norm2.bias"), c.lnEps);
        h = gemm(g, gelu(g, gemm(g, h, p.get(n + "mlp.fc1.weight"), p.get(n + "mlp.fc1.bias"), false, true)),
                p.get(n + "mlp.fc2.weight"), p.get(n + "mlp.fc2.bias"), false, true);
        return add(g, x, dropPath(h, dropPath == null ? null : dropPath.mask(i, "mlp"), b, t));
    }

    Tensor attention(String n, Tensor x, long b, long t) {
        Tensor[] qkv = queriesKeysValues(n, x, b, t);
        Tensor attn = softmax(g, matmul(g, scale(g, qkv[0], Math.pow(c.headDim(), -0.5)), transposeLast(g, qkv[1])));
        Tensor o = reshape(g, transpose(g, matmul(g, attn, qkv[2]), 0, 2, 1, 3), b * t, c.dim);
        return gemm(g, o, p.get(n + "attn.proj.weight"), p.get(n + "attn.proj.bias"), false, true);
    }

    /**
     * The last block evaluated for the CLS token only, since nothing reads the other tokens' outputs:
     * keys and values still come from every token, but the query, projection and MLP run on one row
     * per image. Same result as the full block, about a fifth of its cost.
     */
    Tensor clsBlock(int i, Tensor x, long b, long t, DropPath dropPath) {
        String n = "backbone.blocks." + i + ".";
        Tensor h = layerNorm(g, x, p.get(n + "norm1.weight"), p.get(n + "norm1.bias"), c.lnEps);
        Tensor[] qkv = queriesKeysValues(n, h, b, t);
        Tensor o = reshape(g, matmul(g, clsAttention(qkv), qkv[2]), b, c.dim);   // [B, heads, 1, hd] -> [B, D]
        o = gemm(g, o, p.get(n + "attn.proj.weight"), p.get(n + "attn.proj.bias"), false, true);
        Tensor cls = reshape(g, slice(g, reshape(g, x, b, t, c.dim), 1, 0, 1), b, c.dim);
        cls = add(g, cls, dropPath(o, dropPath == null ? null : dropPath.mask(i, "attn"), b, 1));
        h = layerNorm(g, cls, p.get(n + "norm2.weight"), p.get(n + "norm2.bias"), c.lnEps);
        h = gemm(g, gelu(g, gemm(g, h, p.get(n + "mlp.fc1.weight"), p.get(n + "mlp.fc1.bias"), false, true)),
                p.get(n + "mlp.fc2.weight"), p.get(n + "mlp.fc2.bias"), false, true);
        return add(g, cls, dropPath(h, dropPath == null ? null : dropPath.mask(i, "mlp"), b, 1));
    }

    /** softmax(q_cls k^T / sqrt(hd)): the CLS query's attention over all tokens, [B, heads, 1, T]. */
    private Tensor clsAttention(Tensor[] qkv) {
        Tensor q = slice(g, qkv[0], 2, 0, 1);
        return softmax(g, matmul(g, scale(g, q, Math.pow(c.headDim(), -0.5)), transposeLast(g, qkv[1])));
    }

    /** q, k, v as [B, heads, T, head_dim] each, from one qkv Gemm. */
    private Tensor[] queriesKeysValues(String n, Tensor x, long b, long t) {
        int heads = c.heads, hd = c.headDim();
        Tensor qkv = gemm(g, x, p.get(n + "attn.qkv.weight"), p.get(n + "attn.qkv.bias"), false, true);
        // [B*T, 3D] -> [3, B, heads, T, hd]
        Tensor[] parts = split(g, transpose(g, reshape(g, qkv, b, t, 3, heads, hd), 2, 0, 3, 1, 4), 0, 1, 1, 1);
        Tensor[] out = new Tensor[3];
        for (int i = 0; i < 3; i++) out[i] = reshape(g, parts[i], b, heads, t, hd);
        return out;
    }

    /** Stochastic depth: the residual branch scaled per sample by 0 or 1/keep (mask from the caller's RNG). */
    private Tensor dropPath(Tensor branch, Tensor mask, long b, long t) {
        if (mask == null) return branch;
        return reshape(g, mul(g, reshape(g, branch, b, t, c.dim), mask), b * t, c.dim);
    }

    /** The last block's softmax attention of the CLS query, [B, heads, tokens] (for attention maps). */
    public Tensor lastCLSAttention(Tensor images) {
        Tensor x = tokens(images);
        long b = images.dim(0), t = x.dim(0) / b;
        for (int i = 0; i < c.depth - 1; i++) x = block(i, x, b, t, null);
        String n = "backbone.blocks." + (c.depth - 1) + ".";
        Tensor h = layerNorm(g, x, p.get(n + "norm1.weight"), p.get(n + "norm1.bias"), c.lnEps);
        return reshape(g, clsAttention(queriesKeysValues(n, h, b, t)), b, c.heads, t);
    }
}
