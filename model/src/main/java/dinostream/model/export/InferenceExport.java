package dinostream.model.export;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.ShapePolicy;
import dinostream.model.dino.StateKeys;
import dinostream.model.dino.VisionTransformer;
import dinostream.model.graph.DType;
import dinostream.model.graph.Graph;
import dinostream.model.graph.HalfFloats;
import dinostream.model.graph.Tensor;
import dinostream.model.io.DinoState;
import dinostream.model.io.TensorData;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Self-contained inference models of the teacher backbone (model/docs/state-format.md, "Inference models"): ONNX opset
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
 * the metadata). The network is the training graph's {@link VisionTransformer}, built with
 * {@link ShapePolicy.Symbolic}: N, H and W are symbolic and every size is derived at run time, the
 * patch embedding is a Conv (kernel = stride = patch) and position embeddings are interpolated
 * in-graph (model/docs/algorithm.md §2.1). H and W should be multiples of the patch size; this
 * cannot be declared in ONNX, and a size that is not is floored as Conv floors it (the trailing
 * rows/columns are ignored), as PyTorch's Conv2d would. {@link #tokenCount} rejects such sizes for
 * Java callers. Initializers carry the official parameter names.
 *
 * <p>Precision bf16 or fp16 (for GPU providers) runs every matrix product on tensors of that type
 * ({@link Graph#withProductPrecision} with native types) and stores the weights and biases that feed
 * them in that type, about halving the files; LayerNorm, softmax, GELU, the token and position
 * embeddings, the input and the outputs stay float32. The patch-embedding Conv is fp16 in the fp16
 * model but float32 in the bf16 one ({@link ShapePolicy.Symbolic#convType}).
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
    /** "bf16" or "fp16", the products' type; absent for fp32, so that fp32 models stay as they were. */
    public static final String META_PRECISION = "dinostream.precision";

    /** The parameters that feed products: the linear layers' and the patch embedding's weights and biases. */
    private static final Pattern PRODUCT_PARAMETER = Pattern.compile(".*\\.(qkv|proj|fc1|fc2)\\.(weight|bias)");
    private static final String PATCH_EMBED = "backbone.patch_embed.";

    /**
     * Writes {@value #BACKBONE_FILE} and {@value #ATTENTION_FILE} into {@code dir} (created if
     * missing). Both models are built before anything is written, and each file appears atomically
     * (temporary file in {@code dir}, then rename), so a reader never sees a partial model.
     *
     * @return the paths of the backbone and the attention model, in that order
     */
    public static List<Path> write(DinoState state, Path dir) throws IOException {
        return write(state, dir, DinoConfig.Precision.FP32);
    }

    /** As {@link #write(DinoState, Path)}, with the products in {@code precision}. */
    public static List<Path> write(DinoState state, Path dir, DinoConfig.Precision precision) throws IOException {
        byte[] backbone = backboneModel(state, precision);
        byte[] attention = attentionModel(state, precision);
        Files.createDirectories(dir);
        return List.of(writeAtomically(dir.resolve(BACKBONE_FILE), backbone),
                writeAtomically(dir.resolve(ATTENTION_FILE), attention));
    }

    /** The serialized {@value #BACKBONE_FILE} model. */
    public static byte[] backboneModel(DinoState state) {
        return backboneModel(state, DinoConfig.Precision.FP32);
    }

    /** The serialized {@value #BACKBONE_FILE} model with its products in {@code precision}. */
    public static byte[] backboneModel(DinoState state, DinoConfig.Precision precision) {
        return new Builder(state, "teacher_backbone", precision).backbone().toBytes();
    }

    /** The serialized {@value #ATTENTION_FILE} model. */
    public static byte[] attentionModel(DinoState state) {
        return attentionModel(state, DinoConfig.Precision.FP32);
    }

    /** The serialized {@value #ATTENTION_FILE} model with its products in {@code precision}. */
    public static byte[] attentionModel(DinoState state, DinoConfig.Precision precision) {
        return new Builder(state, "teacher_attention", precision).lastAttention().toBytes();
    }

    /** The ONNX type of the products at {@code precision}, null for fp32. */
    private static DType productType(DinoConfig.Precision precision) {
        return switch (precision) {
            case FP32 -> null;
            case BF16 -> DType.BFLOAT16;
            case FP16 -> DType.FLOAT16;
        };
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

    /** Emits one inference graph: the shared {@link VisionTransformer} with symbolic shapes, teacher weights as initializers. */
    private static final class Builder {
        private final Graph g;
        private final DinoConfig c;
        private final DinoState state;
        private final Map<String, Tensor> weights = new HashMap<>();
        private final Tensor images;
        private final VisionTransformer vit;
        private final DinoConfig.Precision precision;
        private final DType products;   // null: float32

        Builder(DinoState state, String name, DinoConfig.Precision precision) {
            this.state = state;
            this.c = state.config();
            this.precision = precision;
            this.products = productType(precision);
            this.g = new Graph(name);
            this.images = g.inputDynamic(INPUT, DType.FLOAT, new String[]{"N", null, "H", "W"}, new long[]{0, c.inChans, 0, 0});
            this.vit = new VisionTransformer(g, c, this::weight, new ShapePolicy.Symbolic(g, c));
        }

        Graph backbone() {
            g.outputDynamic(inProductType(() -> vit.forward(images, null)), EMBEDDINGS, new String[]{"N", null}, new long[]{0, c.dim});
            metadata();
            return g;
        }

        Graph lastAttention() {
            g.outputDynamic(inProductType(() -> vit.lastCLSAttention(images)), ATTENTION, new String[]{"N", null, "tokens"}, new long[]{0, c.heads, 0});
            metadata();
            return g;
        }

        private Tensor inProductType(Supplier<Tensor> body) {
            return products == null ? body.get() : g.withProductPrecision(products, true, body);
        }

        private void metadata() {
            g.metadata(META_CONFIG, c.toJson());
            g.metadata(META_MEAN, joined(c.meanOrDefault()));
            g.metadata(META_STD, joined(c.stdOrDefault()));
            if (c.preset != null) g.metadata(META_PRESET, c.preset);
            g.metadata(META_PATCH, Integer.toString(c.patch));
            if (state.tensors().containsKey(StateKeys.STEP)) g.metadata(META_STEP, Long.toString(state.step()));
            if (products != null) g.metadata(META_PRECISION, precision.id());
        }

        private static String joined(double[] v) {
            return Arrays.stream(v).mapToObj(Double::toString).collect(Collectors.joining(","));
        }

        /** The teacher's tensor under its official name, stored once and only if the graph reads it. */
        private Tensor weight(String name) {
            return weights.computeIfAbsent(name, n -> {
                TensorData t = state.get(StateKeys.teacher(n));
                DType type = storedType(n);
                if (type == DType.FLOAT) return g.initializer(n, type, t.shape(), t.data());
                // Rounded here as the Cast before the product would round it (that Cast is then not emitted).
                return g.initializer(n, type, t.shape(), HalfFloats.narrowed(t.data(), type));
            });
        }

        /** The type of the product a parameter feeds, float32 for the others (LayerNorm, tokens, position embeddings). */
        private DType storedType(String name) {
            if (products == null || !PRODUCT_PARAMETER.matcher(name).matches()) return DType.FLOAT;
            return name.startsWith(PATCH_EMBED) ? ShapePolicy.Symbolic.convType(products) : products;
        }
    }
}
