package dinostream.model.dino;

import dinostream.model.graph.Attr;
import dinostream.model.graph.Autodiff;
import dinostream.model.graph.DType;
import dinostream.model.graph.Graph;
import dinostream.model.graph.Reductions;
import dinostream.model.graph.Tensor;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static dinostream.model.graph.Elementwise.add;
import static dinostream.model.graph.Elementwise.mul;
import static dinostream.model.graph.Elementwise.sub;
import static dinostream.model.graph.Elementwise.where;
import static dinostream.model.graph.Shapes.concat;
import static dinostream.model.graph.Shapes.reshape;

/**
 * One DINO training iteration as one ONNX graph, in the order of model/docs/algorithm.md §5
 * ("Order of one iteration"). Learning rate, weight decay, teacher temperature, EMA momentum and the last-layer
 * freeze are scalar inputs, so schedules never rebuild the graph.
 *
 * <p>Inputs: every state key ({@link StateKeys#all}), {@code crops/0 .. crops/{V-1}} [B, C, H, W]
 * (the first two global), {@code lr}, {@code weight_decay}, {@code teacher_temp}, {@code momentum}
 * (float scalars), {@code freeze_last_layer} (bool scalar) and, when the student uses stochastic
 * depth, one {@code drop_path/<pass>/<block>/<attn|mlp>} [batch of pass, 1, 1] mask per branch.
 * Outputs: {@code next/<key>} for every state key, {@code loss}, {@code teacher_entropy}, {@code kl}.
 */
public final class TrainStep {
    public static final String LR = "lr", WEIGHT_DECAY = "weight_decay", TEACHER_TEMP = "teacher_temp",
            MOMENTUM = "momentum", FREEZE_LAST_LAYER = "freeze_last_layer";
    public static final String LOSS = "loss", TEACHER_ENTROPY = "teacher_entropy", KL = "kl";
    /** The teacher's CLS features of the global crops, [2B, D]: for collapse monitors (single-step model). */
    public static final String TEACHER_FEATURES = "teacher_features";
    /** The sum of every float of the new state: finite exactly when the whole new state is (see {@link #stateSum}). */
    public static final String STATE_SUM = "state_sum";

    private TrainStep() {}

    public static String crop(int view) {
        return "crops/" + view;
    }

    /** Name of a stochastic-depth mask input; pass 0 holds the global crops, pass 1 the locals. */
    public static String dropPathMask(int pass, int block, String branch) {
        return "drop_path/" + pass + "/" + block + "/" + branch;
    }

    /** The per-block stochastic-depth rates: linspace(0, drop_path, depth). */
    public static double[] dropPathRates(DinoConfig c) {
        double[] r = new double[c.depth];
        for (int i = 0; i < c.depth; i++) r[i] = c.depth == 1 ? 0 : c.dropPath * i / (c.depth - 1);
        return r;
    }

    /** Shapes of one step's crop inputs. */
    public static long[] cropShape(DinoConfig c, int batch, int view) {
        int size = view < 2 ? c.imgSize : c.localSize;
        return new long[]{batch, c.inChans, size, size};
    }

    /** What one step reads. */
    public record Inputs(Map<String, Tensor> state, Tensor[] crops, Tensor lr, Tensor weightDecay,
                         Tensor teacherTemp, Tensor momentum, Tensor freezeLastLayer,
                         Map<String, Tensor> dropPathMasks) {}

    /** What one step produces: the next state by key and the monitoring scalars. */
    public record Outputs(Map<String, Tensor> next, Tensor loss, Tensor teacherEntropy, Tensor kl, Tensor teacherFeatures) {}

    /**
     * Emits one iteration into {@code g}. Under bf16 or fp16 the forward and backward matrix products
     * round their operands and results to that type (emulated on float32: model/docs/algorithm.md §5,
     * "Mixed precision"); fp16 also scales the loss ({@link LossScaler}). The state stays float32.
     */
    public static Outputs emit(Graph g, DinoConfig c, int batch, Inputs in) {
        return emit(g, c, batch, in, false);
    }

    /** As {@link #emit(Graph, DinoConfig, int, Inputs)}; {@code nativeProducts}: the products on bf16/fp16 tensors (see {@link #buildNative}). */
    static Outputs emit(Graph g, DinoConfig c, int batch, Inputs in, boolean nativeProducts) {
        return g.withProductPrecision(productPrecision(c), nativeProducts, () -> emitStep(g, c, batch, in));
    }

    /** The type the products are rounded to, null for fp32. */
    static DType productPrecision(DinoConfig c) {
        return switch (c.precision()) {
            case FP32 -> null;
            case BF16 -> DType.BFLOAT16;
            case FP16 -> DType.FLOAT16;
        };
    }

    private static Outputs emitStep(Graph g, DinoConfig c, int batch, Inputs in) {
        List<ParamSpec> specs = ParamSpec.of(c);
        Map<String, Tensor> student = new HashMap<>(), teacher = new HashMap<>();
        for (ParamSpec s : specs) {
            student.put(s.name(), in.state().get(StateKeys.student(s.name())));
            teacher.put(s.name(), in.state().get(StateKeys.teacher(s.name())));
        }
        int views = c.nCrops();

        // 2. Teacher forward on the two global crops (its tensors carry no gradient), then the
        //    student on all crops: equal-size crops share one backbone pass, the head runs once.
        g.phase("teacher");
        Tensor globals = concat(g, 0, in.crops()[0], in.crops()[1]);
        Tensor teacherFeatures = new VisionTransformer(g, c, teacher).forward(globals, null);
        Tensor teacherOut = DinoHead.forward(g, c, teacher, teacherFeatures);
        g.phase("student");
        VisionTransformer studentNet = new VisionTransformer(g, c, student);
        List<Tensor> features = new ArrayList<>();
        features.add(studentNet.forward(globals, masks(in, 0)));
        if (views > 2) {
            Tensor[] locals = new Tensor[views - 2];
            System.arraycopy(in.crops(), 2, locals, 0, views - 2);
            features.add(studentNet.forward(concat(g, 0, locals), masks(in, 1)));
        }
        Tensor studentOut = DinoHead.forward(g, c, student, concat(g, 0, features.toArray(new Tensor[0])));

        // 3. Loss with the current centre, then the centre update.
        g.phase("loss");
        Tensor center = in.state().get(StateKeys.CENTER);
        DinoLoss.Result loss = DinoLoss.forward(g, c, studentOut, teacherOut, center, in.teacherTemp(), views, batch);
        Tensor nextCenter = DinoLoss.updateCenter(g, c, center, teacherOut);

        // 4. Backward.
        g.phase("backward");
        List<Tensor> trainable = new ArrayList<>();
        for (ParamSpec s : specs) if (s.trainable()) trainable.add(student.get(s.name()));
        Tensor lossScale = in.state().get(StateKeys.LOSS_SCALE);
        Map<Tensor, Tensor> grads = lossScale == null ? Autodiff.gradients(g, loss.loss(), trainable)
                : Autodiff.gradients(g, LossScaler.scaled(g, loss.loss(), lossScale), trainable);

        g.phase("optimizer");
        return g.noGrad(() -> {
            Map<String, Tensor> next = new LinkedHashMap<>();
            Map<String, Tensor> nextStudent = new HashMap<>();
            // fp16: gradients back to the loss's scale, and an overflow anywhere skips the whole update (GradScaler.step).
            Tensor overflow = null;
            if (lossScale != null) {
                Tensor inverse = LossScaler.inverse(g, lossScale);
                grads.replaceAll((p, gr) -> LossScaler.unscale(g, gr, inverse));
                overflow = LossScaler.foundInf(g, grads.values());
            }
            for (ParamSpec s : specs) {
                String name = s.name();
                Tensor p = student.get(name);
                if (!s.trainable()) {
                    nextStudent.put(name, p);
                    continue;
                }
                // 5. Per-tensor clipping; 6. AdamW.
                Tensor grad = grads.get(p);
                if (grad == null) throw new IllegalStateException("no gradient reaches " + name);
                grad = AdamW.clip(g, grad, c.clipGrad);
                AdamW.Updated u = AdamW.step(g, c, p, grad,
                        in.state().get(StateKeys.expAvg(name)), in.state().get(StateKeys.expAvgSq(name)),
                        in.state().get(StateKeys.optimStep(name)), in.lr(), s.decays() ? in.weightDecay() : null);
                Tensor np = u.param(), m = u.expAvg(), v = u.expAvgSq(), t = u.step();
                if (s.lastLayer()) {
                    // Frozen last layer: no update, no moment change, no step-count increment.
                    Tensor f = in.freezeLastLayer();
                    np = where(g, f, p, np);
                    m = where(g, f, in.state().get(StateKeys.expAvg(name)), m);
                    v = where(g, f, in.state().get(StateKeys.expAvgSq(name)), v);
                    t = where(g, f, in.state().get(StateKeys.optimStep(name)), t);
                }
                if (overflow != null) {
                    np = where(g, overflow, p, np);
                    m = where(g, overflow, in.state().get(StateKeys.expAvg(name)), m);
                    v = where(g, overflow, in.state().get(StateKeys.expAvgSq(name)), v);
                    t = where(g, overflow, in.state().get(StateKeys.optimStep(name)), t);
                }
                nextStudent.put(name, np);
                next.put(StateKeys.expAvg(name), m);
                next.put(StateKeys.expAvgSq(name), v);
                next.put(StateKeys.optimStep(name), t);
            }
            // 7. Teacher EMA over every parameter pair, frozen weight_g included.
            g.phase("ema");
            for (ParamSpec s : specs) {
                next.put(StateKeys.student(s.name()), nextStudent.get(s.name()));
                next.put(StateKeys.teacher(s.name()),
                        teacherEma(g, teacher.get(s.name()), nextStudent.get(s.name()), in.momentum()));
            }
            next.put(StateKeys.CENTER, nextCenter);
            next.put(StateKeys.STEP, add(g, in.state().get(StateKeys.STEP),
                    g.scalar(1, DType.INT64)));
            if (overflow != null) {
                LossScaler.Next scaler = LossScaler.update(g, lossScale, in.state().get(StateKeys.GROWTH_TRACKER), overflow);
                next.put(StateKeys.LOSS_SCALE, scaler.scale());
                next.put(StateKeys.GROWTH_TRACKER, scaler.growthTracker());
            }
            g.phase("");
            return new Outputs(next, loss.loss(), loss.teacherEntropy(), loss.kl(), teacherFeatures);
        });
    }

    /** The teacher's update, momentum * teacher + (1 - momentum) * student (not the optimizer's: no gradient). */
    static Tensor teacherEma(Graph g, Tensor teacher, Tensor student, Tensor momentum) {
        return add(g, mul(g, teacher, momentum), mul(g, student, sub(g, g.scalar(1, momentum.dtype), momentum)));
    }

    private static VisionTransformer.DropPath masks(Inputs in, int pass) {
        if (in.dropPathMasks().isEmpty()) return null;
        return (block, branch) -> in.dropPathMasks().get(dropPathMask(pass, block, branch));
    }

    // ------------------------------------------------------------------ models

    /** A compiled train-step model and what its caller needs to feed it; {@code matmulFlops} counts a whole run (all K steps). */
    public record Model(byte[] onnx, DinoConfig config, int batch, int stepsPerRun,
                        Map<String, long[]> dropPathMasks, int nodes, long matmulFlops) {}

    /** The drop-path mask inputs of a configuration and batch (empty when drop_path is 0). */
    public static Map<String, long[]> dropPathInputs(DinoConfig c, int batch) {
        Map<String, long[]> m = new LinkedHashMap<>();
        double[] rates = dropPathRates(c);
        int[] passBatch = c.nLocal > 0 ? new int[]{2 * batch, c.nLocal * batch} : new int[]{2 * batch};
        for (int pass = 0; pass < passBatch.length; pass++) {
            for (int i = 0; i < c.depth; i++) {
                if (rates[i] == 0) continue;
                for (String branch : new String[]{"attn", "mlp"}) {
                    m.put(dropPathMask(pass, i, branch), new long[]{passBatch[pass], 1, 1});
                }
            }
        }
        return m;
    }

    /** The single-step model. */
    public static Model build(DinoConfig c, int batch) {
        return build(c, batch, false);
    }

    /**
     * The single-step model of a bf16 or fp16 configuration with its products on tensors of that type
     * (Cast, Gemm or MatMul, Cast back; the gradients likewise), for providers with such kernels
     * (CUDA). ONNX Runtime's CPU provider has no bf16 ones, so this graph is only checked (ONNX
     * checker), not run here; {@link #build} is the emulated form every provider runs.
     */
    public static Model buildNative(DinoConfig c, int batch) {
        if (c.precision() == DinoConfig.Precision.FP32) throw new IllegalArgumentException("a native low-precision graph needs precision bf16 or fp16");
        return build(c, batch, true);
    }

    /**
     * The single-step model for where it runs: on a GPU a bf16 or fp16 configuration gets its products
     * on tensors of that type ({@link #buildNative}); elsewhere, and for float32, {@link #build}.
     */
    public static Model buildFor(DinoConfig c, int batch, boolean onGpu) {
        return onGpu && c.precision() != DinoConfig.Precision.FP32 ? buildNative(c, batch) : build(c, batch);
    }

    private static Model build(DinoConfig c, int batch, boolean nativeProducts) {
        Graph g = new Graph("dino_train_step");
        Map<String, Tensor> state = declareState(g, c, "");
        Tensor[] crops = new Tensor[c.nCrops()];
        for (int v = 0; v < crops.length; v++) crops[v] = g.input(crop(v), DType.FLOAT, cropShape(c, batch, v));
        Map<String, Tensor> masks = new HashMap<>();
        dropPathInputs(c, batch).forEach((k, s) -> masks.put(k, g.input(k, DType.FLOAT, s)));
        Inputs in = new Inputs(state, crops,
                g.input(LR, DType.FLOAT), g.input(WEIGHT_DECAY, DType.FLOAT), g.input(TEACHER_TEMP, DType.FLOAT),
                g.input(MOMENTUM, DType.FLOAT), g.input(FREEZE_LAST_LAYER, DType.BOOL), masks);
        Outputs out = emit(g, c, batch, in, nativeProducts);
        for (String key : StateKeys.all(c)) g.output(out.next().get(key), StateKeys.NEXT + key);
        g.output(out.loss(), LOSS);
        g.output(out.teacherEntropy(), TEACHER_ENTROPY);
        g.output(out.kl(), KL);
        g.output(out.teacherFeatures(), TEACHER_FEATURES);
        g.output(stateSum(g, c, out.next()), STATE_SUM);
        g.metadata("dinostream.config", c.toJson());
        return new Model(g.toBytes(), c, batch, 1, dropPathInputs(c, batch), g.nodeCount(), g.matmulFlops());
    }

    /**
     * K steps in one run: an ONNX Loop whose body is the step, with the state loop-carried, so a
     * GPU session copies the state between host and device once per K steps instead of every step.
     * Per-step inputs gain a leading [K] axis; loss, teacher_entropy and kl become [K].
     */
    public static Model buildLoop(DinoConfig c, int batch, int steps) {
        Graph g = new Graph("dino_train_loop");
        List<String> keys = StateKeys.all(c);
        Map<String, Tensor> outerState = declareState(g, c, "");
        Tensor[] outerCrops = new Tensor[c.nCrops()];
        for (int v = 0; v < outerCrops.length; v++) outerCrops[v] = g.input(crop(v), DType.FLOAT, prepend(steps, cropShape(c, batch, v)));
        Map<String, long[]> maskShapes = dropPathInputs(c, batch);
        Map<String, Tensor> outerMasks = new HashMap<>();
        maskShapes.forEach((k, s) -> outerMasks.put(k, g.input(k, DType.FLOAT, prepend(steps, s))));
        Tensor[] outerScalars = {g.input(LR, DType.FLOAT, steps), g.input(WEIGHT_DECAY, DType.FLOAT, steps),
                g.input(TEACHER_TEMP, DType.FLOAT, steps), g.input(MOMENTUM, DType.FLOAT, steps),
                g.input(FREEZE_LAST_LAYER, DType.BOOL, steps)};

        Graph body = g.subgraph("step");
        Tensor iter = body.input("iter", DType.INT64);
        Tensor cond = body.input("cond_in", DType.BOOL);
        Map<String, Tensor> state = declareState(body, c, "carried/");
        Tensor[] crops = new Tensor[outerCrops.length];
        for (int v = 0; v < crops.length; v++) crops[v] = pick(body, outerCrops[v], iter);
        Map<String, Tensor> masks = new HashMap<>();
        outerMasks.forEach((k, t) -> masks.put(k, pick(body, t, iter)));
        Tensor[] s = new Tensor[outerScalars.length];
        for (int i = 0; i < s.length; i++) s[i] = pick(body, outerScalars[i], iter);
        Outputs out = emit(body, c, batch, new Inputs(state, crops, s[0], s[1], s[2], s[3], s[4], masks));
        body.output(body.node1("Identity", new Tensor[]{cond}, DType.BOOL, new long[0]), "cond_out");
        for (String key : keys) body.output(out.next().get(key), "carried_next/" + key);
        body.output(out.loss(), "step_loss");
        body.output(out.teacherEntropy(), "step_teacher_entropy");
        body.output(out.kl(), "step_kl");

        List<Tensor> loopIn = new ArrayList<>();
        loopIn.add(g.constant("trip_count", DType.INT64, new long[0], new double[]{steps}));
        loopIn.add(g.constant("true", DType.BOOL, new long[0], new double[]{1}));
        List<DType> types = new ArrayList<>();
        List<long[]> shapes = new ArrayList<>();
        for (StateKeys.Spec spec : StateKeys.specs(c)) {
            loopIn.add(outerState.get(spec.key()));
            types.add(spec.int64() ? DType.INT64 : DType.FLOAT);
            shapes.add(spec.shape());
        }
        for (int i = 0; i < 3; i++) {
            types.add(DType.FLOAT);
            shapes.add(new long[]{steps});
        }
        Tensor[] results = g.node("Loop", loopIn.toArray(new Tensor[0]), types.toArray(new DType[0]),
                shapes.toArray(new long[0][]), Attr.graph("body", body.toGraphProto()));
        Map<String, Tensor> next = new HashMap<>();
        for (int i = 0; i < keys.size(); i++) {
            g.output(results[i], StateKeys.NEXT + keys.get(i));
            next.put(keys.get(i), results[i]);
        }
        g.output(stateSum(g, c, next), STATE_SUM);
        g.output(results[keys.size()], LOSS);
        g.output(results[keys.size() + 1], TEACHER_ENTROPY);
        g.output(results[keys.size() + 2], KL);
        g.metadata("dinostream.config", c.toJson());
        return new Model(g.toBytes(), c, batch, steps, maskShapes, g.nodeCount() + body.nodeCount(),
                g.matmulFlops() + steps * body.matmulFlops());
    }

    /**
     * The sum of every float32 tensor of the new state, one scalar: NaN or infinite exactly when
     * some element is (or, for finite values, past 3e38, which no sane state reaches). One read of
     * the state, so that a caller can refuse a step without copying the state out of the runtime.
     * Plain graph nodes, no gradient: it is an output, not part of the loss.
     */
    static Tensor stateSum(Graph g, DinoConfig c, Map<String, Tensor> next) {
        List<Tensor> floats = new ArrayList<>();
        for (StateKeys.Spec s : StateKeys.specs(c)) if (!s.int64()) floats.add(next.get(s.key()));
        return Reductions.totalSum(g, floats);
    }

    /** Declares the state as inputs; the trainable student parameters are differentiated. */
    private static Map<String, Tensor> declareState(Graph g, DinoConfig c, String prefix) {
        Map<String, Boolean> trainable = new HashMap<>();
        for (ParamSpec s : ParamSpec.of(c)) trainable.put(StateKeys.student(s.name()), s.trainable());
        Map<String, Tensor> state = new LinkedHashMap<>();
        for (StateKeys.Spec s : StateKeys.specs(c)) {
            DType t = s.int64() ? DType.INT64 : DType.FLOAT;
            String name = prefix + s.key();
            state.put(s.key(), trainable.getOrDefault(s.key(), false) ? g.parameter(name, t, s.shape()) : g.input(name, t, s.shape()));
        }
        return state;
    }

    /** Row {@code iter} of an outer-scope [K, ...] input, inside a Loop body. */
    private static Tensor pick(Graph body, Tensor outer, Tensor iter) {
        Tensor src = body.outerValue(outer);
        long[] shape = src.shape();
        long[] row = java.util.Arrays.copyOfRange(shape, 1, shape.length);
        return body.node1("Gather", new Tensor[]{src, iter}, src.dtype, row, Attr.i("axis", 0));
    }

    private static long[] prepend(long k, long[] shape) {
        long[] s = new long[shape.length + 1];
        s[0] = k;
        System.arraycopy(shape, 0, s, 1, shape.length);
        return s;
    }
}
