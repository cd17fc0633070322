package dinostream.model.dino;

import dinostream.model.graph.Attr;
import dinostream.model.graph.DType;
import dinostream.model.graph.Graph;
import dinostream.model.graph.Tensor;

import java.util.HashMap;
import java.util.Map;

import static dinostream.model.graph.Elementwise.add;
import static dinostream.model.graph.Elementwise.cast;
import static dinostream.model.graph.Elementwise.div;
import static dinostream.model.graph.Linear.gemm;
import static dinostream.model.graph.Shapes.concat;
import static dinostream.model.graph.Shapes.expand;
import static dinostream.model.graph.Shapes.reshape;
import static dinostream.model.graph.Shapes.slice;
import static dinostream.model.graph.Shapes.transpose;

/**
 * What differs between the two graphs one {@link VisionTransformer} builds: the training graph,
 * whose batch and image sizes are static ({@link Static}), and the inference exports, whose N, H
 * and W are symbolic ({@link Symbolic}). Everything else, the architecture, is written once in
 * {@link VisionTransformer}. Both keep tokens as a 2-D [B*T, D] matrix, so every linear layer is
 * one Gemm; what needs B, T or the patch grid asks the policy. (Stochastic depth is no shape
 * matter: the training graph passes masks, an export none.)
 */
public interface ShapePolicy {

    /**
     * Conv2d(kernel = stride = patch) of images [B, C, H, W] with the official weight [D, C, p, p]:
     * the patches' features [B, gh*gw, D], row-major over the grid as PyTorch's {@code flatten(2)}.
     */
    Tensor patchEmbedding(Tensor images, Tensor weight, Tensor bias);

    /** A [1, 1, D] token repeated for every image of the batch: [B, 1, D]. */
    Tensor perImage(Tensor token, Tensor images);

    /**
     * Position embeddings [1, 1 + gh*gw, D] for the patch grid of images, from the stored
     * [1, 1 + g0*g0, D]: the stored ones when the grid is g0 x g0, else their bicubic interpolation
     * (model/docs/algorithm.md §2.1; {@code vision_transformer.py} {@code interpolate_pos_encoding}).
     */
    Tensor positionEmbedding(Tensor stored, Tensor images);

    /** Token rows [B*T, prod(inner)] viewed per image: [B, T, inner...]. */
    Tensor byImage(Tensor rows, Tensor images, long... inner);

    /** Training: every size is a Java number, the interpolation a constant matrix, all of it differentiable. */
    final class Static implements ShapePolicy {
        private final Graph g;
        private final DinoConfig c;

        public Static(Graph g, DinoConfig c) {
            this.g = g;
            this.c = c;
        }

        @Override
        public Tensor patchEmbedding(Tensor images, Tensor weight, Tensor bias) {
            long b = images.dim(0), ch = images.dim(1);
            int p = c.patch, gh = (int) images.dim(2) / p, gw = (int) images.dim(3) / p;
            // The convolution as one Gemm over patches flattened in the weight's (c, ky, kx) order.
            Tensor patches = reshape(g, transpose(g, reshape(g, images, b, ch, gh, p, gw, p), 0, 2, 4, 1, 3, 5),
                    b * gh * gw, ch * p * p);
            Tensor x = gemm(g, patches, reshape(g, weight, c.dim, ch * p * p), bias, false, true);
            return reshape(g, x, b, (long) gh * gw, c.dim);
        }

        @Override
        public Tensor perImage(Tensor token, Tensor images) {
            return expand(g, token, images.dim(0), 1, c.dim);
        }

        @Override
        public Tensor positionEmbedding(Tensor stored, Tensor images) {
            int g0 = c.gridSize(), gh = (int) images.dim(2) / c.patch, gw = (int) images.dim(3) / c.patch;
            if (gh == g0 && gw == g0) return stored;
            int rows = 1 + gh * gw, cols = 1 + g0 * g0;
            Tensor map = g.constant("pos_interp_" + gh + "x" + gw, stored.dtype, new long[]{rows, cols},
                    PosEmbedInterpolation.fullMap(g0, gh, gw));
            return reshape(g, gemm(g, map, reshape(g, stored, cols, c.dim), null, false, false), 1, rows, c.dim);
        }

        @Override
        public Tensor byImage(Tensor rows, Tensor images, long... inner) {
            long[] shape = new long[2 + inner.length];
            shape[0] = images.dim(0);
            shape[1] = -1;
            System.arraycopy(inner, 0, shape, 2, inner.length);
            return reshape(g, rows, shape);
        }
    }

    /**
     * Inference exports: N, H and W are read from the input at run time. Emits inference-only
     * nodes (Conv, Shape, If, Resize) without gradient rules, so its inputs must not need gradients.
     */
    final class Symbolic implements ShapePolicy {
        private final Graph g;
        private final DinoConfig c;
        private final Map<String, Tensor> batchSizes = new HashMap<>();

        public Symbolic(Graph g, DinoConfig c) {
            this.g = g;
            this.c = c;
        }

        @Override
        public Tensor patchEmbedding(Tensor images, Tensor weight, Tensor bias) {
            int p = c.patch;
            DType t = convType(g.nativeProducts() ? g.productPrecision() : null);
            // Conv floors an H or W that is not a patch multiple, as PyTorch's Conv2d does.
            Tensor conv = g.node1("Conv", new Tensor[]{cast(g, inference(images), t), cast(g, inference(weight), t),
                            cast(g, inference(bias), t)},
                    t, new long[]{Tensor.UNKNOWN, c.dim, Tensor.UNKNOWN, Tensor.UNKNOWN},
                    Attr.ints("kernel_shape", p, p), Attr.ints("strides", p, p));
            conv = cast(g, conv, DType.FLOAT);
            return transpose(g, reshape(g, conv, 0, 0, -1), 0, 2, 1);   // [N, D, gh, gw] -> [N, gh*gw, D]
        }

        @Override
        public Tensor perImage(Tensor token, Tensor images) {
            return g.node1("Expand", new Tensor[]{inference(token), concat(g, 0, batchSize(images), g.ints(1, c.dim))},
                    token.dtype, new long[]{Tensor.UNKNOWN, 1, c.dim});
        }

        @Override
        public Tensor byImage(Tensor rows, Tensor images, long... inner) {
            long[] known = new long[2 + inner.length], codes = new long[1 + inner.length];
            known[0] = known[1] = codes[0] = Tensor.UNKNOWN;   // T is inferred from B*T
            System.arraycopy(inner, 0, known, 2, inner.length);
            System.arraycopy(inner, 0, codes, 1, inner.length);
            return g.node1("Reshape", new Tensor[]{inference(rows), concat(g, 0, batchSize(images), g.ints(codes))},
                    rows.dtype, known);
        }

        @Override
        public Tensor positionEmbedding(Tensor stored, Tensor images) {
            int g0 = c.gridSize();
            // The grid part channel-first, [1, D, g0, g0], the layout F.interpolate sees.
            Tensor gridPos = transpose(g, reshape(g, slice(g, inference(stored), 1, 1, 1 + (long) g0 * g0), 1, g0, g0, c.dim),
                    0, 3, 1, 2);
            Tensor hw = g.node1("Shape", new Tensor[]{images}, DType.INT64, new long[]{2}, Attr.i("start", 2), Attr.i("end", 4));
            Tensor posGrid = storedOrResized(gridPos, div(g, hw, g.ints(c.patch)));   // grid floored as Conv floors
            Tensor rows = transpose(g, reshape(g, posGrid, 0, 0, -1), 0, 2, 1);   // [1, gh*gw, D]
            return concat(g, 1, slice(g, stored, 1, 0, 1), rows);
        }

        /**
         * The stored grid when the patch grid is g0 x g0 (an If, so that this is exact on every
         * execution provider rather than trusting Resize at scale 1), else ONNX Resize equal to
         * PyTorch's {@code F.interpolate(scale_factor=((gh + 0.1) / g0, (gw + 0.1) / g0), mode="bicubic")}.
         */
        private Tensor storedOrResized(Tensor gridPos, Tensor grid) {
            int g0 = c.gridSize();
            Tensor same = g.node1("Equal", new Tensor[]{grid, g.ints(g0, g0)}, DType.BOOL, new long[]{2});
            Tensor stay = g.node1("And", new Tensor[]{
                    g.node1("Gather", new Tensor[]{same, g.scalar(0, DType.INT64)}, DType.BOOL, new long[0], Attr.i("axis", 0)),
                    g.node1("Gather", new Tensor[]{same, g.scalar(1, DType.INT64)}, DType.BOOL, new long[0], Attr.i("axis", 0))},
                    DType.BOOL, new long[0]);
            // scale (g + 0.1) / g0 computed in double, as Python computes DINO's scale_factor, then rounded once.
            Tensor scale = cast(g, div(g, add(g, cast(g, grid, DType.DOUBLE), g.scalar(0.1, DType.DOUBLE)),
                    g.scalar(g0, DType.DOUBLE)), DType.FLOAT);
            Tensor scales = concat(g, 0, g.constant("unit_scales", DType.FLOAT, new long[]{2}, new double[]{1, 1}), scale);

            long[] out = {1, c.dim, Tensor.UNKNOWN, Tensor.UNKNOWN};
            Graph keep = g.subgraph("pos_stored");
            keep.outputDynamic(keep.node1("Identity", new Tensor[]{keep.outerValue(gridPos)}, DType.FLOAT, out),
                    "pos_grid_stored", new String[]{null, null, "gh", "gw"}, out);
            Graph resize = g.subgraph("pos_resized");
            // PyTorch bicubic (align_corners False, scale_factor given): Keys a = -0.75, src = (d + 0.5) / s - 0.5,
            // taps clamped to the border, no antialiasing.
            Tensor resized = resize.node1("Resize", new Tensor[]{resize.outerValue(gridPos), null, resize.outerValue(scales)},
                    DType.FLOAT, out, Attr.s("mode", "cubic"), Attr.f("cubic_coeff_a", -0.75),
                    Attr.s("coordinate_transformation_mode", "half_pixel"), Attr.i("exclude_outside", 0), Attr.i("antialias", 0));
            resize.outputDynamic(resized, "pos_grid_resized", new String[]{null, null, "gh", "gw"}, out);
            return g.node1("If", new Tensor[]{stay}, DType.FLOAT, out,
                    Attr.graph("then_branch", keep.toGraphProto()), Attr.graph("else_branch", resize.toGraphProto()));
        }

        /**
         * The patch-embedding Conv's operand type under native product precision {@code products}
         * (null: none): fp16 like the other products, else float32, as opset {@value Graph#OPSET}'s
         * Conv has no bfloat16 (opset 22 adds it). Emulated rounding is the training graph's only.
         */
        public static DType convType(DType products) {
            return products == DType.FLOAT16 ? DType.FLOAT16 : DType.FLOAT;
        }

        /** N as a 1-D int64 [1], read once per input. */
        private Tensor batchSize(Tensor images) {
            return batchSizes.computeIfAbsent(images.name, k -> g.node1("Shape", new Tensor[]{images}, DType.INT64,
                    new long[]{1}, Attr.i("start", 0), Attr.i("end", 1)));
        }

        /** These nodes have no gradient rule: refuse a value that would need one. */
        private static Tensor inference(Tensor t) {
            if (t.requiresGrad) throw new IllegalArgumentException(t + " needs a gradient; symbolic shapes are for inference graphs");
            return t;
        }
    }
}
