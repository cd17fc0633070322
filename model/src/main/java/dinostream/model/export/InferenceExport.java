package dinostream.model.export;

import ai.onnx.proto.OnnxMl.AttributeProto;
import com.google.protobuf.ByteString;
import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.StateKeys;
import dinostream.model.graph.Attr;
import dinostream.model.graph.DType;
import dinostream.model.graph.Graph;
import dinostream.model.graph.Tensor;
import dinostream.model.io.DinoState;
import dinostream.model.io.TensorData;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

/**
 * Self-contained inference models of the teacher backbone (issue 2, item 8): ONNX opset
 * {@value Graph#OPSET}, IR {@value Graph#IR_VERSION}, the teacher's weights as initializers.
 *
 * <ul>
 *   <li>{@value #BACKBONE_FILE}: input {@value #INPUT} float32 [N, C, H, W], output
 *       {@value #EMBEDDINGS} float32 [N, D], the final-LayerNorm CLS token (DINO's feature; eval
 *       mode, so no stochastic depth).</li>
 *   <li>{@value #ATTENTION_FILE}: the same input, output {@value #ATTENTION} float32
 *       [N, heads, 1 + patches], the last block's softmax attention row of the CLS query for every
 *       head, CLS column first (attention pictures drop it and reshape the rest to the patch grid).</li>
 * </ul>
 *
 * <p>The images are normalized exactly as the training crops (per-channel mean/std, recorded in
 * the metadata). N, H and W are symbolic, so unlike the training graph (static shapes, 2-D token
 * matrices) these graphs keep tokens as [N, T, D] and derive every size at run time: the patch
 * embedding is a Conv (kernel = stride = patch), linear layers are MatMul with pre-transposed
 * weights plus Add, reshapes use ONNX's 0/-1 codes. H and W should be multiples of the patch size;
 * this cannot be declared in ONNX, and a size that is not is floored as Conv floors it (the
 * trailing rows/columns are ignored), as PyTorch's Conv2d would. {@link #tokenCount} rejects such
 * sizes for Java callers.
 *
 * <p>Position embeddings follow DINO's {@code interpolate_pos_encoding} (DINO_SPEC.md §2.1): when
 * the patch grid equals the stored one on both axes the stored embeddings are used unchanged (an
 * {@code If}, so this is exact on every execution provider without relying on a Resize kernel to
 * be an identity at scale 1); otherwise an ONNX Resize equivalent to PyTorch's
 * {@code F.interpolate(scale_factor=((gh + 0.1) / g0, (gw + 0.1) / g0), mode="bicubic")}.
 */
public final class InferenceExport {
    private InferenceExport() {}

    public static final String BACKBONE_FILE = "teacher-backbone.onnx";
    public static final String ATTENTION_FILE = "teacher-attention.onnx";
    public static final String INPUT = "images";
    public static final String EMBEDDINGS = "embeddings";
    public static final String ATTENTION = "attention";

    /** {@link DinoConfig#toJson()} of the state. */
    public static final String META_CONFIG = "dinostream.config";
    /** Per-channel normalization of the input, comma-separated. */
    public static final String META_MEAN = "dinostream.mean";
    public static final String META_STD = "dinostream.std";
    /** The preset the configuration came from; absent when it names none. */
    public static final String META_PRESET = "dinostream.preset";
    public static final String META_PATCH = "dinostream.patch_size";
    /** The global training step of the exported teacher. */
    public static final String META_STEP = "dinostream.step";

    /**
     * Writes {@value #BACKBONE_FILE} and {@value #ATTENTION_FILE} into {@code dir} (created if
     * missing). Both models are built before anything is written, and each file appears atomically
     * (temporary file in {@code dir}, then rename), so a reader never sees a partial model.
     *
     * @return the paths of the backbone and the attention model, in that order
     */
    public static List<Path> write(DinoState state, Path dir) throws IOException {
        byte[] backbone = backboneModel(state);
        byte[] attention = attentionModel(state);
        Files.createDirectories(dir);
        return List.of(writeAtomically(dir.resolve(BACKBONE_FILE), backbone),
                writeAtomically(dir.resolve(ATTENTION_FILE), attention));
    }

    /** The serialized {@value #BACKBONE_FILE} model. */
    public static byte[] backboneModel(DinoState state) {
        return new Builder(state, "teacher_backbone").backbone().toBytes();
    }

    /** The serialized {@value #ATTENTION_FILE} model. */
    public static byte[] attentionModel(DinoState state) {
        return new Builder(state, "teacher_attention").lastAttention().toBytes();
    }

    /**
     * Tokens per image, {@code 1 + (height / patch) * (width / patch)}: the last axis of
     * {@value #ATTENTION}.
     *
     * @throws IllegalArgumentException when a side is not a positive multiple of the patch size
     */
    public static long tokenCount(DinoConfig cfg, long height, long width) {
        int p = cfg.patch;
        if (height <= 0 || width <= 0 || height % p != 0 || width % p != 0) {
            throw new IllegalArgumentException("image size " + height + "x" + width
                    + " is not a positive multiple of the patch size " + p + " on both sides");
        }
        return 1 + (height / p) * (width / p);
    }

    private static Path writeAtomically(Path target, byte[] bytes) throws IOException {
        Path tmp = Files.createTempFile(target.getParent(), "." + target.getFileName() + ".", ".tmp");
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer b = ByteBuffer.wrap(bytes);
                while (b.hasRemaining()) ch.write(b);
                ch.force(true);   // the rename must not publish a file whose bytes are still in flight
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
            return target;
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /**
     * Emits one inference graph. Java-side shapes of intermediate values are not tracked (they are
     * symbolic); ONNX shape inference checks them instead (see the tests' full-check run).
     */
    private static final class Builder {
        private static final long[] SYMBOLIC = {};

        private final Graph g;
        private final DinoConfig c;
        private final DinoState state;

        Builder(DinoState state, String name) {
            this.state = state;
            this.c = state.config();
            this.g = new Graph(name);
        }

        Graph backbone() {
            Tensor x = tokens(input());
            for (int i = 0; i < c.depth; i++) x = block(i, x);
            // LayerNorm is per token, so normalizing only the CLS token equals DINO's norm-then-select.
            Tensor cls = op("Gather", x, g.scalar(0, DType.INT64), Attr.i("axis", 1));   // [N, D]
            Tensor y = layerNorm(cls, "backbone.norm");
            g.outputDynamic(y, EMBEDDINGS, new String[]{"N", null}, new long[]{0, c.dim});
            metadata();
            return g;
        }

        Graph lastAttention() {
            Tensor x = tokens(input());
            for (int i = 0; i < c.depth - 1; i++) x = block(i, x);
            String n = prefix(c.depth - 1);
            Tensor[] qk = queriesKeysValues(n, layerNorm(x, n + "norm1"), 2);
            Tensor q = op("Gather", qk[0], g.ints(0), Attr.i("axis", 2));   // CLS query: [N, heads, 1, hd]
            Tensor a = op("Softmax", scores(q, qk[1]), Attr.i("axis", -1));   // [N, heads, 1, T]
            Tensor rows = op("Reshape", a, g.ints(0, 0, -1));                 // [N, heads, T]
            g.outputDynamic(rows, ATTENTION, new String[]{"N", null, "tokens"}, new long[]{0, c.heads, 0});
            metadata();
            return g;
        }

        private Tensor input() {
            return g.inputDynamic(INPUT, DType.FLOAT, new String[]{"N", null, "H", "W"}, new long[]{0, c.inChans, 0, 0});
        }

        private void metadata() {
            g.metadata(META_CONFIG, c.toJson());
            g.metadata(META_MEAN, joined(c.meanOrDefault()));
            g.metadata(META_STD, joined(c.stdOrDefault()));
            if (c.preset != null) g.metadata(META_PRESET, c.preset);
            g.metadata(META_PATCH, Integer.toString(c.patch));
            if (state.tensors().containsKey(StateKeys.STEP)) g.metadata(META_STEP, Long.toString(state.step()));
        }

        private static String joined(double[] v) {
            return Arrays.stream(v).mapToObj(Double::toString).collect(Collectors.joining(","));
        }

        // ------------------------------------------------------------ embedding

        /** Patch embedding, CLS token and position embeddings: [N, 1 + patches, D]. */
        private Tensor tokens(Tensor images) {
            int p = c.patch;
            Tensor conv = op("Conv", new Tensor[]{images, weight("backbone.patch_embed.proj.weight"),
                    weight("backbone.patch_embed.proj.bias")}, Attr.ints("kernel_shape", p, p), Attr.ints("strides", p, p));
            // [N, D, gh, gw] -> [N, D, gh*gw] -> [N, gh*gw, D]: patches in row-major order, as in PyTorch's flatten(2).
            Tensor patches = op("Transpose", op("Reshape", conv, g.ints(0, 0, -1)), Attr.ints("perm", 0, 2, 1));
            Tensor batch = op("Shape", DType.INT64, new Tensor[]{images}, Attr.i("start", 0), Attr.i("end", 1));
            Tensor clsShape = op("Concat", DType.INT64, new Tensor[]{batch, g.ints(1, c.dim)}, Attr.i("axis", 0));
            Tensor cls = op("Expand", weight("backbone.cls_token"), clsShape);
            Tensor x = op("Concat", new Tensor[]{cls, patches}, Attr.i("axis", 1));
            Tensor grid = op("Shape", DType.INT64, new Tensor[]{conv}, Attr.i("start", 2), Attr.i("end", 4));   // [gh, gw]
            return op("Add", x, positionEmbedding(grid));
        }

        /** [1, 1 + gh*gw, D]: the stored embeddings for the stored grid, else their bicubic resampling. */
        private Tensor positionEmbedding(Tensor grid) {
            int g0 = c.gridSize(), d = c.dim;
            float[] pos = teacher("backbone.pos_embed").toFloatArray();   // [1, 1 + g0*g0, D]
            // The grid part channel-first, [1, D, g0, g0], the layout F.interpolate sees.
            float[] gridPos = new float[d * g0 * g0];
            for (int t = 0; t < g0 * g0; t++) {
                for (int k = 0; k < d; k++) gridPos[k * g0 * g0 + t] = pos[(1 + t) * d + k];
            }
            Tensor stored = g.initializer("backbone.pos_embed.grid", DType.FLOAT, new long[]{1, d, g0, g0}, le(gridPos));
            Tensor clsPos = g.initializer("backbone.pos_embed.cls", DType.FLOAT, new long[]{1, 1, d},
                    le(Arrays.copyOf(pos, d)));

            Tensor same = op("Equal", DType.BOOL, new Tensor[]{grid, g.ints(g0, g0)});
            Tensor both = op("And", DType.BOOL, new Tensor[]{
                    op("Gather", DType.BOOL, new Tensor[]{same, g.scalar(0, DType.INT64)}, Attr.i("axis", 0)),
                    op("Gather", DType.BOOL, new Tensor[]{same, g.scalar(1, DType.INT64)}, Attr.i("axis", 0))});

            // Constants of the else branch live in the outer graph (plain initializers, read by outer-scope reference).
            Tensor tenth = g.scalar(0.1, DType.DOUBLE), g0d = g.scalar(g0, DType.DOUBLE);
            Tensor unitScales = g.constant("unit_scales", DType.FLOAT, new long[]{2}, new double[]{1, 1});

            Graph keep = g.subgraph("pos_stored");
            Tensor kept = keep.node1("Identity", new Tensor[]{keep.outerValue(stored)}, DType.FLOAT, SYMBOLIC);
            keep.outputDynamic(kept, "pos_grid_stored", new String[]{null, null, "gh", "gw"}, new long[]{1, d, 0, 0});

            Graph resize = g.subgraph("pos_resized");
            // scale (g + 0.1) / g0 evaluated in double, as Python computes DINO's scale_factor, then rounded once.
            Tensor gd = resize.node1("Cast", new Tensor[]{resize.outerValue(grid)}, DType.DOUBLE, SYMBOLIC,
                    Attr.i("to", DType.DOUBLE.onnx));
            Tensor sd = resize.node1("Div", new Tensor[]{
                    resize.node1("Add", new Tensor[]{gd, resize.outerValue(tenth)}, DType.DOUBLE, SYMBOLIC),
                    resize.outerValue(g0d)}, DType.DOUBLE, SYMBOLIC);
            Tensor sf = resize.node1("Cast", new Tensor[]{sd}, DType.FLOAT, SYMBOLIC, Attr.i("to", DType.FLOAT.onnx));
            Tensor scales = resize.node1("Concat", new Tensor[]{resize.outerValue(unitScales), sf}, DType.FLOAT, SYMBOLIC,
                    Attr.i("axis", 0));
            // PyTorch bicubic (align_corners False, scale_factor given): Keys a = -0.75, src = (d + 0.5) / s - 0.5,
            // taps clamped to the border, no antialiasing.
            Tensor resized = resize.node1("Resize", new Tensor[]{resize.outerValue(stored), null, scales}, DType.FLOAT, SYMBOLIC,
                    str("mode", "cubic"), Attr.f("cubic_coeff_a", -0.75), str("coordinate_transformation_mode", "half_pixel"),
                    Attr.i("exclude_outside", 0), Attr.i("antialias", 0));
            resize.outputDynamic(resized, "pos_grid_resized", new String[]{null, null, "gh", "gw"}, new long[]{1, d, 0, 0});

            Tensor gridOut = g.node("If", new Tensor[]{both}, new DType[]{DType.FLOAT}, new long[][]{SYMBOLIC},
                    Attr.graph("then_branch", keep.toGraphProto()), Attr.graph("else_branch", resize.toGraphProto()))[0];
            Tensor rows = op("Transpose", op("Reshape", gridOut, g.ints(0, 0, -1)), Attr.ints("perm", 0, 2, 1));   // [1, P, D]
            return op("Concat", new Tensor[]{clsPos, rows}, Attr.i("axis", 1));
        }

        // ------------------------------------------------------------ blocks

        private static String prefix(int i) {
            return "backbone.blocks." + i + ".";
        }

        /** Pre-norm block: x + Attn(LN1(x)), then + MLP(LN2(x)); eval mode, so no drop path. */
        private Tensor block(int i, Tensor x) {
            String n = prefix(i);
            x = op("Add", x, attention(n, layerNorm(x, n + "norm1")));
            Tensor h = linear(gelu(linear(layerNorm(x, n + "norm2"), n + "mlp.fc1")), n + "mlp.fc2");
            return op("Add", x, h);
        }

        private Tensor attention(String n, Tensor x) {
            Tensor[] qkv = queriesKeysValues(n, x, 3);
            Tensor a = op("Softmax", scores(qkv[0], qkv[1]), Attr.i("axis", -1));   // [N, heads, T, T]
            Tensor o = op("Transpose", op("MatMul", a, qkv[2]), Attr.ints("perm", 0, 2, 1, 3));   // [N, T, heads, hd]
            return linear(op("Reshape", o, g.ints(0, 0, -1)), n + "attn.proj");
        }

        /** The first {@code count} of q, k, v, each [N, heads, T, hd], from one qkv projection. */
        private Tensor[] queriesKeysValues(String n, Tensor x, int count) {
            Tensor qkv = linear(x, n + "attn.qkv");   // [N, T, 3D]
            Tensor split = op("Transpose", op("Reshape", qkv, g.ints(0, 0, 3, c.heads, c.headDim())),
                    Attr.ints("perm", 2, 0, 3, 1, 4));   // [3, N, heads, T, hd]
            Tensor[] out = new Tensor[count];
            for (int i = 0; i < count; i++) out[i] = op("Gather", split, g.scalar(i, DType.INT64), Attr.i("axis", 0));
            return out;
        }

        /** (q · hd^-0.5) kᵀ, scaled before the product as the training graph does. */
        private Tensor scores(Tensor q, Tensor k) {
            Tensor qs = op("Mul", q, g.scalar(Math.pow(c.headDim(), -0.5), DType.FLOAT));
            return op("MatMul", qs, op("Transpose", k, Attr.ints("perm", 0, 1, 3, 2)));
        }

        private Tensor layerNorm(Tensor x, String name) {
            return op("LayerNormalization", new Tensor[]{x, weight(name + ".weight"), weight(name + ".bias")},
                    Attr.i("axis", -1), Attr.f("epsilon", c.lnEps));
        }

        /** Exact GELU, x · 0.5 · (1 + erf(x / √2)), in the training graph's operation order. */
        private Tensor gelu(Tensor x) {
            Tensor e = op("Erf", op("Mul", x, g.scalar(1 / Math.sqrt(2), DType.FLOAT)));
            Tensor cdf = op("Mul", op("Add", e, g.scalar(1, DType.FLOAT)), g.scalar(0.5, DType.FLOAT));
            return op("Mul", x, cdf);
        }

        /** x Wᵀ + b on the last axis, with Wᵀ stored as the initializer. */
        private Tensor linear(Tensor x, String name) {
            return op("Add", op("MatMul", x, transposedWeight(name + ".weight")), weight(name + ".bias"));
        }

        // ------------------------------------------------------------ weights and nodes

        private TensorData teacher(String name) {
            return state.get(StateKeys.teacher(name));
        }

        private Tensor weight(String name) {
            TensorData t = teacher(name);
            return g.initializer(name, DType.FLOAT, t.shape(), t.data());
        }

        /** A PyTorch Linear weight [out, in] stored as [in, out], the right operand of MatMul. */
        private Tensor transposedWeight(String name) {
            TensorData t = teacher(name);
            long[] s = t.shape();
            int rows = Math.toIntExact(s[0]), cols = Math.toIntExact(s[1]);
            float[] w = t.toFloatArray(), wt = new float[w.length];
            for (int r = 0; r < rows; r++) {
                for (int k = 0; k < cols; k++) wt[k * rows + r] = w[r * cols + k];
            }
            return g.initializer(name + ".T", DType.FLOAT, new long[]{cols, rows}, le(wt));
        }

        private static ByteBuffer le(float[] v) {
            ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
            b.asFloatBuffer().put(v);
            return b;
        }

        private Tensor op(String type, Tensor a, AttributeProto... attrs) {
            return op(type, new Tensor[]{a}, attrs);
        }

        private Tensor op(String type, Tensor a, Tensor b, AttributeProto... attrs) {
            return op(type, new Tensor[]{a, b}, attrs);
        }

        private Tensor op(String type, Tensor[] in, AttributeProto... attrs) {
            return op(type, DType.FLOAT, in, attrs);
        }

        private Tensor op(String type, DType out, Tensor[] in, AttributeProto... attrs) {
            return g.node1(type, in, out, SYMBOLIC, attrs);
        }

        private static AttributeProto str(String name, String value) {
            return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.STRING)
                    .setS(ByteString.copyFromUtf8(value)).build();
        }
    }
}
