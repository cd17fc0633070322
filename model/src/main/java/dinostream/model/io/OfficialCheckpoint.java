package dinostream.model.io;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.LossScaler;
import dinostream.model.dino.ParamSpec;
import dinostream.model.dino.Presets;
import dinostream.model.dino.StateKeys;
import dinostream.model.io.torch.TorchFile;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * The mapping between the official DINO code's {@code .pth} files (facebookresearch/dino) and {@link DinoState}
 * (model/docs/state-format.md, "Official DINO checkpoints"): full training checkpoints of {@code main_dino.py}
 * and backbone-only release files are read; full checkpoints are written. Tensors move unchanged (the state's
 * parameter names are the official ones); only their containers and the optimizer's numbering differ.
 */
public final class OfficialCheckpoint {
    private OfficialCheckpoint() {}

    /**
     * @param heads attention heads; null: from {@code arch}, else from the file's {@code args.arch}, else refused
     * @param arch {@code vit_tiny}, {@code vit_small} or {@code vit_base} (heads 3, 6, 12); null: the file's {@code args.arch}
     * @param checkpointKey a key of the file's top-level dict whose backbone to import alone ({@code teacher},
     *     {@code student}); null: the whole file (a full checkpoint, a bare state_dict, else its {@code teacher})
     * @param seed initialization seed of the head when the file holds a backbone only
     * @param base what the file does not hold: crop sizes, mean/std, and for a backbone-only file the head sizes
     *     and training fields; may be null for a full checkpoint
     */
    public record Options(Integer heads, String arch, String checkpointKey, long seed, DinoConfig base) {}

    /** The official architectures (vision_transformer.py {@code vit_tiny}, ...): name → {dim, heads}; depth 12, mlp ratio 4. */
    private static final Map<String, int[]> ARCHS = new LinkedHashMap<>();

    static {
        ARCHS.put("vit_tiny", new int[]{192, 3});
        ARCHS.put("vit_small", new int[]{384, 6});
        ARCHS.put("vit_base", new int[]{768, 12});
    }

    private static final String MODULE = "module.", BACKBONE = "backbone.", HEAD = "head.";

    public static DinoState read(Path pth, Options o) throws IOException {
        return fromObject(TorchFile.read(pth), pth.toString(), o);
    }

    public static DinoState read(byte[] bytes, String name, Options o) throws IOException {
        return fromObject(TorchFile.read(bytes, name), name, o);
    }

    // ------------------------------------------------------------------ reading

    private static DinoState fromObject(Object root, String src, Options o) {
        if (!(root instanceof Map<?, ?> m)) throw bad(src, "holds a " + typeName(root) + ", not a checkpoint dict");
        if (o.checkpointKey() != null) {
            Object sub = m.get(o.checkpointKey());
            if (sub == null) throw bad(src, "no key '" + o.checkpointKey() + "' in the checkpoint (keys: " + keyList(m) + ")");
            return backboneOnly(tensorDict(sub, src, o.checkpointKey()), src, o);
        }
        if (m.containsKey("state_dict") && m.get("state_dict") instanceof Map<?, ?> sd && hasKeyContaining(sd, "linear.")) {
            throw bad(src, "is a linear-evaluation checkpoint of eval_linear.py (a classifier over frozen features, no backbone);"
                    + " import the pretrained weights it was trained on");
        }
        boolean student = m.containsKey("student"), teacher = m.containsKey("teacher");
        if (student && teacher && m.containsKey("optimizer")) return full(m, src, o);
        if (student && teacher) {
            throw bad(src, "has student and teacher but no optimizer: not a full main_dino.py checkpoint;"
                    + " --checkpoint-key teacher imports the teacher's backbone alone");
        }
        // eval_knn.py / eval_linear.py read checkpoint_key "teacher" by default and fall back to the whole dict.
        if (teacher) return backboneOnly(tensorDict(m.get("teacher"), src, "teacher"), src, o);
        if (m.containsKey("state_dict")) return backboneOnly(tensorDict(m.get("state_dict"), src, "state_dict"), src, o);
        if (!m.isEmpty() && m.values().stream().allMatch(v -> v instanceof TensorData)) return backboneOnly(tensorDict(m, src, null), src, o);
        throw bad(src, "is not a DINO checkpoint: top-level keys " + keyList(m)
                + " (expected a backbone state_dict, or student, teacher, optimizer as main_dino.py saves them)");
    }

    /** A release file or one network of a checkpoint: keys stripped as utils.load_pretrained_weights strips them. */
    private static DinoState backboneOnly(Map<String, TensorData> dict, String src, Options o) {
        Map<String, TensorData> bb = new LinkedHashMap<>();
        for (Map.Entry<String, TensorData> e : dict.entrySet()) {
            String k = e.getKey().replace(MODULE, "").replace(BACKBONE, "");
            if (k.startsWith(HEAD)) continue;   // the DINO head (or a classifier): not part of the backbone
            bb.put(k, e.getValue());
        }
        DinoConfig base = o.base();
        if (base == null) {
            throw bad(src, "holds a backbone only: the head sizes, out_dim and crops must come from a preset or"
                    + " configuration (--preset / --config)");
        }
        DinoConfig c = base.copy();
        backboneShapes(bb, src, c);
        c.heads = heads(o, null, c.dim, src);
        finish(c, base, src);

        List<ParamSpec> params = ParamSpec.of(c);
        Map<String, ParamSpec> byName = new LinkedHashMap<>();
        for (ParamSpec p : params) byName.put(p.name(), p);
        Map<String, TensorData> prefixed = new LinkedHashMap<>();
        bb.forEach((k, v) -> prefixed.put(BACKBONE + k, v));
        checkNetwork(prefixed, params, true, src, "the backbone");

        Map<String, TensorData> t = new LinkedHashMap<>();
        for (ParamSpec p : params) {
            // The head as DinoState.init initializes it (its own stream per parameter, so equal to a fresh init's head).
            TensorData v = p.name().startsWith(BACKBONE) ? f32(prefixed.get(p.name())) : DinoState.initParam(p, byName, o.seed());
            t.put(StateKeys.student(p.name()), v);
            t.put(StateKeys.teacher(p.name()), v);
        }
        zeroOptimizer(params, t);
        t.put(StateKeys.CENTER, TensorData.zeros(DType.F32, new long[]{1, c.outDim}));
        t.put(StateKeys.STEP, TensorData.scalarLong(0));
        return checked(c, t, src);
    }

    /** A main_dino.py checkpoint: student (DDP), teacher, AdamW over utils.get_params_groups(student), dino_loss, args. */
    private static DinoState full(Map<?, ?> m, String src, Options o) {
        Map<String, TensorData> student = stripModule(tensorDict(m.get("student"), src, "student"));
        Map<String, TensorData> teacher = stripModule(tensorDict(m.get("teacher"), src, "teacher"));
        Map<?, ?> args = m.get("args") instanceof Map<?, ?> a ? a : Map.of();
        Object optimizer = args.get("optimizer");
        if (optimizer != null && !"adamw".equals(optimizer)) {
            throw bad(src, "was trained with optimizer '" + optimizer + "'; only AdamW's state maps onto dinostream's");
        }

        DinoConfig base = o.base();
        DinoConfig c = base != null ? base.copy() : new DinoConfig();
        Map<String, TensorData> bb = new LinkedHashMap<>();
        student.forEach((k, v) -> {
            if (k.startsWith(BACKBONE)) bb.put(k.substring(BACKBONE.length()), v);
        });
        backboneShapes(bb, src, c);
        c.headHidden = dim(need(student, "head.mlp.0.weight", 2, src), 0);
        c.bottleneck = dim(need(student, "head.mlp.4.weight", 2, src), 0);
        c.outDim = dim(need(student, "head.last_layer.weight_v", 2, src), 0);
        c.heads = heads(o, args, c.dim, src);

        Map<?, ?> opt = map(m.get("optimizer"), src, "optimizer");
        List<?> groups = list(opt.get("param_groups"), src, "optimizer.param_groups");
        Map<?, ?> state = opt.get("state") == null ? Map.of() : map(opt.get("state"), src, "optimizer.state");
        if (groups.size() != 2) {
            throw bad(src, "optimizer has " + groups.size() + " param_groups; utils.get_params_groups makes 2 (decayed, not decayed)");
        }
        List<List<?>> ids = new ArrayList<>();
        for (int g = 0; g < 2; g++) ids.add(list(map(groups.get(g), src, "param_groups[" + g + "]").get("params"), src, "param_groups[" + g + "].params"));
        // head.last_layer.weight_g is trainable unless norm_last_layer; the optimizer lists trainable parameters only.
        if (args.get("norm_last_layer") instanceof Boolean b) c.normLastLayer = b;
        else c.normLastLayer = ids.get(0).size() + ids.get(1).size() != ParamSpec.of(c).size();
        Map<?, ?> g0 = map(groups.get(0), src, "param_groups[0]");
        if (g0.get("betas") instanceof List<?> betas && betas.size() == 2) {
            c.beta1 = number(betas.get(0), src, "betas");
            c.beta2 = number(betas.get(1), src, "betas");
        }
        if (g0.get("eps") != null) c.adamEps = number(g0.get("eps"), src, "eps");
        if (args.get("drop_path_rate") != null) c.dropPath = number(args.get("drop_path_rate"), src, "args.drop_path_rate");
        if (args.get("clip_grad") != null) c.clipGrad = number(args.get("clip_grad"), src, "args.clip_grad");
        // Epochs, as in the reference's Cfg; the step does not read it (model/docs/algorithm.md §5).
        if (args.get("freeze_last_layer") != null) c.freezeLastLayer = (int) number(args.get("freeze_last_layer"), src, "args.freeze_last_layer");
        if (args.get("local_crops_number") != null) c.nLocal = (int) number(args.get("local_crops_number"), src, "args.local_crops_number");
        // DINOLoss's defaults, which main_dino.py never changes.
        c.studentTemp = 0.1;
        c.centerMomentum = 0.9;
        finish(c, base, src);

        List<ParamSpec> params = ParamSpec.of(c);
        checkNetwork(student, params, false, src, "student");
        checkNetwork(teacher, params, false, src, "teacher");
        Map<String, TensorData> t = new LinkedHashMap<>();
        for (ParamSpec p : params) t.put(StateKeys.student(p.name()), f32(student.get(p.name())));
        for (ParamSpec p : params) t.put(StateKeys.teacher(p.name()), f32(teacher.get(p.name())));
        long step = optimizer(params, ids, state, t, src);
        t.put(StateKeys.CENTER, center(m.get("dino_loss"), c, src));
        t.put(StateKeys.STEP, TensorData.scalarLong(step));
        // An fp16 job continues the run's loss scale (main_dino.py --use_fp16 saves its GradScaler); else withPrecision starts one.
        if (c.precision() == DinoConfig.Precision.FP16 && m.get("fp16_scaler") instanceof Map<?, ?> scaler && scaler.get("scale") != null) {
            t.put(StateKeys.LOSS_SCALE, TensorData.scalarFloat((float) number(scaler.get("scale"), src, "fp16_scaler.scale")));
            Object tracker = scaler.get("_growth_tracker");
            t.put(StateKeys.GROWTH_TRACKER, TensorData.scalarLong(tracker == null ? 0 : (long) number(tracker, src, "fp16_scaler._growth_tracker")));
        }
        return checked(c, t, src);
    }

    /**
     * torch numbers the optimizer's parameters group by group in each group's {@code params} list; the groups are
     * utils.get_params_groups's over the student's named_parameters() (trainable only), which is ParamSpec order
     * split by {@link ParamSpec#decays()}. A parameter without an entry never had a gradient: zeros, step 0.
     *
     * @return the largest per-parameter step: the number of optimizer steps taken
     */
    private static long optimizer(List<ParamSpec> params, List<List<?>> ids, Map<?, ?> state, Map<String, TensorData> t, String src) {
        List<List<ParamSpec>> groups = List.of(new ArrayList<>(), new ArrayList<>());
        for (ParamSpec p : params) if (p.trainable()) groups.get(p.decays() ? 0 : 1).add(p);
        for (int g = 0; g < 2; g++) {
            if (ids.get(g).size() != groups.get(g).size()) {
                throw bad(src, "optimizer param_groups hold " + ids.get(0).size() + " and " + ids.get(1).size() + " parameters, the model has "
                        + groups.get(0).size() + " and " + groups.get(1).size() + " trainable ones (is args.norm_last_layer right?)");
            }
        }
        long maxStep = 0;
        for (int g = 0; g < 2; g++) {
            for (int j = 0; j < ids.get(g).size(); j++) {
                ParamSpec p = groups.get(g).get(j);
                Object entry = state.get(ids.get(g).get(j));
                TensorData m1, m2;
                long step;
                if (entry == null) {
                    m1 = m2 = TensorData.zeros(DType.F32, p.shape());
                    step = 0;
                } else {
                    Map<?, ?> e = map(entry, src, "optimizer.state[" + ids.get(g).get(j) + "]");
                    String what = "optimizer state of " + p.name();
                    if (!e.containsKey("exp_avg") || !e.containsKey("exp_avg_sq") || !e.containsKey("step")) {
                        throw bad(src, what + " has keys " + keyList(e) + ", not AdamW's step, exp_avg, exp_avg_sq");
                    }
                    m1 = shaped(e.get("exp_avg"), p.shape(), src, what + ": exp_avg");
                    m2 = shaped(e.get("exp_avg_sq"), p.shape(), src, what + ": exp_avg_sq");
                    step = count(e.get("step"), src, what + ": step");
                }
                t.put(StateKeys.expAvg(p.name()), m1);
                t.put(StateKeys.expAvgSq(p.name()), m2);
                t.put(StateKeys.optimStep(p.name()), TensorData.scalarLong(step));
                maxStep = Math.max(maxStep, step);
            }
        }
        return maxStep;
    }

    /** AdamW's step: an int before torch 1.12, a float32 scalar tensor since. */
    private static long count(Object v, String src, String what) {
        double d;
        if (v instanceof Long l) return l;
        if (v instanceof TensorData td && td.numel() == 1) d = td.dtype() == DType.I64 ? td.longValue() : td.doubleValue();
        else if (v instanceof Double x) d = x;
        else throw bad(src, what + " is a " + typeName(v) + ", not a count");
        if (d < 0 || d != Math.rint(d) || d > 1e15) throw bad(src, what + " is " + d + ", not a count");
        return (long) d;
    }

    private static TensorData center(Object loss, DinoConfig c, String src) {
        Object v = loss instanceof Map<?, ?> l ? l.get("center") : null;
        if (v == null) throw bad(src, "has no dino_loss.center (the loss's centre, [1, " + c.outDim + "])");
        return shaped(v, new long[]{1, c.outDim}, src, "dino_loss.center");
    }

    /** Reads the backbone's shapes (dim, depth, patch, channels, image size, mlp ratio) from its tensors into {@code c}. */
    private static void backboneShapes(Map<String, TensorData> bb, String src, DinoConfig c) {
        refuseOtherArchitectures(bb.keySet(), src);
        TensorData proj = need(bb, "patch_embed.proj.weight", 4, src);
        long[] ps = proj.shape();
        if (ps[2] != ps[3]) throw bad(src, "patch_embed.proj.weight " + Arrays.toString(ps) + " has non-square patches");
        c.dim = dim(need(bb, "cls_token", 3, src), 2);
        c.inChans = (int) ps[1];
        c.patch = (int) ps[2];
        long tokens = need(bb, "pos_embed", 3, src).shape()[1] - 1;
        long g = Math.round(Math.sqrt(tokens));
        if (g * g != tokens || g == 0) throw bad(src, "pos_embed holds " + tokens + " patch positions, not a square grid");
        c.imgSize = (int) (g * c.patch);
        int depth = 0;
        while (bb.containsKey("blocks." + depth + ".norm1.weight")) depth++;
        if (depth == 0) throw bad(src, "has no transformer blocks (blocks.0.norm1.weight)");
        c.depth = depth;
        if (!bb.containsKey("blocks.0.attn.qkv.bias")) throw bad(src, "attn.qkv has no bias; every DINO ViT has one (qkv_bias=True)");
        c.mlpRatio = dim(need(bb, "blocks.0.mlp.fc1.weight", 2, src), 0) / (double) c.dim;
        c.qkvBias = true;
        c.lnEps = 1e-6;   // vision_transformer.py: partial(nn.LayerNorm, eps=1e-6) in every vit_*
    }

    private static void refuseOtherArchitectures(java.util.Set<String> keys, String src) {
        for (String k : keys) {
            if (k.startsWith("cls_attn_blocks.") || k.startsWith("pos_embeder.") || k.endsWith("attn.temperature") || k.contains(".local_mp.")) {
                throw bad(src, "holds an XCiT (key " + k + "); only the official ViT backbones can be imported");
            }
            if (k.equals("conv1.weight") || k.startsWith("layer1.") || k.startsWith("bn1.")) {
                throw bad(src, "holds a ResNet (key " + k + "); only the official ViT backbones can be imported");
            }
        }
        if (!keys.contains("cls_token") || !keys.contains("pos_embed") || !keys.contains("patch_embed.proj.weight")) {
            List<String> some = keys.stream().limit(5).toList();
            throw bad(src, "holds no ViT backbone (cls_token, pos_embed, patch_embed.proj.weight); keys include " + some);
        }
    }

    /** Heads are not stored: --heads, else the architecture's (checked against the file's dim), else refused. */
    private static int heads(Options o, Map<?, ?> args, int dim, String src) {
        if (o.heads() != null) {
            if (o.heads() <= 0 || dim % o.heads() != 0) throw bad(src, "--heads " + o.heads() + " does not divide the file's dim " + dim);
            return o.heads();
        }
        String arch = o.arch();
        String from = "--arch";
        if (arch == null && args != null && args.get("arch") instanceof String a) {
            arch = a.replace("deit", "vit");   // main_dino.py accepts deit_* for vit_*
            from = "args.arch";
        }
        if (arch == null || !ARCHS.containsKey(arch)) {
            throw bad(src, "the number of attention heads is not stored in the file" + (arch != null ? " (" + from + " is '" + arch + "')" : "")
                    + "; give --heads N or --arch " + String.join("|", ARCHS.keySet()));
        }
        int[] a = ARCHS.get(arch);
        if (a[0] != dim) throw bad(src, from + " " + arch + " has dim " + a[0] + " but the tensors have dim " + dim + "; give --heads N");
        return a[1];
    }

    /** Fields the file cannot hold come from {@code base}; the preset's name is kept only when nothing differs. */
    private static void finish(DinoConfig c, DinoConfig base, String src) {
        if (base == null) {
            // The official local crops are 96 px for 224-px images; scaled for other sizes, on the patch grid.
            c.localSize = Math.max(c.patch, (int) Math.round(c.imgSize * 96.0 / 224 / c.patch) * c.patch);
            c.mean = null;
            c.std = null;
        }
        c.preset = null;
        if (base != null && base.preset != null) {
            DinoConfig p = c.copy();
            p.preset = base.preset;
            try {
                if (Presets.get(base.preset).toJson().equals(p.toJson())) c.preset = base.preset;
            } catch (IllegalArgumentException unknownPreset) {
                // a configuration that names no known preset keeps none
            }
        }
        try {
            c.validate();
        } catch (IllegalArgumentException e) {
            throw bad(src, e.getMessage());
        }
    }

    /** Exactly the network's parameters (with {@code backboneOnly}: its backbone's), each with its shape. */
    private static void checkNetwork(Map<String, TensorData> net, List<ParamSpec> params, boolean backboneOnly, String src, String what) {
        List<String> problems = new ArrayList<>();
        TreeSet<String> expected = new TreeSet<>();
        for (ParamSpec p : params) {
            if (backboneOnly && !p.name().startsWith(BACKBONE)) continue;
            expected.add(p.name());
            TensorData v = net.get(p.name());
            if (v == null) problems.add("missing " + p.name());
            else if (v.dtype() == DType.I64) problems.add(p.name() + " is int64");
            else if (!v.hasShape(p.shape())) problems.add(p.name() + " has shape " + Arrays.toString(v.shape()) + ", expected " + Arrays.toString(p.shape()));
        }
        for (String k : net.keySet()) if (!expected.contains(k)) problems.add("unexpected " + k);
        if (!problems.isEmpty()) {
            String more = problems.size() > 1 ? " (and " + (problems.size() - 1) + " more)" : "";
            throw bad(src, what + ": " + problems.get(0) + more);
        }
    }

    private static void zeroOptimizer(List<ParamSpec> params, Map<String, TensorData> t) {
        for (ParamSpec p : params) {
            if (!p.trainable()) continue;
            TensorData z = TensorData.zeros(DType.F32, p.shape());
            t.put(StateKeys.expAvg(p.name()), z);
            t.put(StateKeys.expAvgSq(p.name()), z);
            t.put(StateKeys.optimStep(p.name()), TensorData.scalarLong(0));
        }
    }

    /** The state, refused as {@link DinoState#load} refuses a non-finite value. */
    private static DinoState checked(DinoConfig c, Map<String, TensorData> t, String src) {
        for (Map.Entry<String, TensorData> e : t.entrySet()) {
            long i = e.getValue().firstNonFinite();
            if (i >= 0) throw bad(src, e.getKey() + " holds a non-finite value (" + e.getValue().doubleAt(i) + ") at flat index " + i);
        }
        try {
            return DinoState.withPrecision(c, t);
        } catch (IllegalArgumentException e) {
            throw bad(src, e.getMessage());
        }
    }

    // ------------------------------------------------------------------ writing

    /**
     * A full checkpoint in main_dino.py's layout (the student under DDP's {@code module.} prefix, the teacher plain,
     * torch.optim.AdamW's state_dict as torch 1.13 writes it, {@code args} as a plain dict so that
     * {@code torch.load(weights_only=True)} reads it), loadable by utils.load_pretrained_weights (eval_knn.py,
     * eval_linear.py) and utils.restart_from_checkpoint. Parameters with step 0 get no optimizer entry, as in torch.
     */
    public static void write(DinoState state, Path out) throws IOException {
        TorchFile.write(out, toMap(state));
    }

    static Map<String, Object> toMap(DinoState state) {
        DinoConfig c = state.config();
        List<ParamSpec> params = ParamSpec.of(c);
        Map<String, Object> student = new LinkedHashMap<>(), teacher = new LinkedHashMap<>();
        for (ParamSpec p : params) student.put(MODULE + p.name(), state.get(StateKeys.student(p.name())));
        for (ParamSpec p : params) teacher.put(p.name(), state.get(StateKeys.teacher(p.name())));

        Map<Object, Object> optState = new LinkedHashMap<>();
        List<Object> groups = new ArrayList<>();
        long id = 0;
        for (boolean decayed : new boolean[]{true, false}) {
            List<Object> ids = new ArrayList<>();
            for (ParamSpec p : params) {
                if (!p.trainable() || p.decays() != decayed) continue;
                long step = state.get(StateKeys.optimStep(p.name())).longValue();
                if (step > 0) {
                    Map<String, Object> e = new LinkedHashMap<>();
                    e.put("step", TensorData.scalarFloat(step));   // a float32 scalar tensor since torch 1.12
                    e.put("exp_avg", state.get(StateKeys.expAvg(p.name())));
                    e.put("exp_avg_sq", state.get(StateKeys.expAvgSq(p.name())));
                    optState.put(id, e);
                }
                ids.add(id++);
            }
            // torch 1.13's AdamW group fields; lr and weight_decay are the official schedules' first values (the lr
            // warm-up starts at 0); main_dino.py sets both every iteration, so a restarted run overwrites them.
            Map<String, Object> g = new LinkedHashMap<>();
            g.put("lr", 0.0);
            g.put("betas", List.of(c.beta1, c.beta2));
            g.put("eps", c.adamEps);
            g.put("weight_decay", decayed ? 0.04 : 0.0);
            g.put("amsgrad", false);
            g.put("foreach", null);
            g.put("maximize", false);
            g.put("capturable", false);
            g.put("params", ids);
            groups.add(g);
        }
        Map<String, Object> optimizer = new LinkedHashMap<>();
        optimizer.put("state", optState);
        optimizer.put("param_groups", groups);

        Map<String, Object> loss = new LinkedHashMap<>();
        loss.put("center", state.get(StateKeys.CENTER));
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("student", student);
        root.put("teacher", teacher);
        root.put("optimizer", optimizer);
        root.put("epoch", 0L);   // no epoch is known: a stream has none (model/docs/state-format.md)
        root.put("args", args(c));
        root.put("dino_loss", loss);
        if (c.precision() == DinoConfig.Precision.FP16) {
            // GradScaler.state_dict() of torch 1.13, so that main_dino.py --use_fp16 resumes with this scale.
            Map<String, Object> scaler = new LinkedHashMap<>();
            scaler.put("scale", (double) state.get(StateKeys.LOSS_SCALE).toFloatArray()[0]);
            scaler.put("growth_factor", 2.0);
            scaler.put("backoff_factor", 0.5);
            scaler.put("growth_interval", LossScaler.GROWTH_INTERVAL);
            scaler.put("_growth_tracker", state.get(StateKeys.GROWTH_TRACKER).longValue());
            root.put("fp16_scaler", scaler);
        }
        return root;
    }

    /** main_dino.py's arguments that describe the model; {@code arch} is an official one only when every size matches. */
    private static Map<String, Object> args(DinoConfig c) {
        String arch = "vit_custom";
        for (Map.Entry<String, int[]> e : ARCHS.entrySet()) {
            if (e.getValue()[0] == c.dim && e.getValue()[1] == c.heads && c.depth == 12 && c.mlpRatio == 4.0 && c.inChans == 3) arch = e.getKey();
        }
        Map<String, Object> a = new LinkedHashMap<>();
        a.put("arch", arch);
        a.put("patch_size", (long) c.patch);
        a.put("out_dim", (long) c.outDim);
        a.put("norm_last_layer", c.normLastLayer);
        a.put("use_bn_in_head", false);
        a.put("drop_path_rate", c.dropPath);
        a.put("local_crops_number", (long) c.nLocal);
        a.put("clip_grad", c.clipGrad);
        a.put("freeze_last_layer", (long) c.freezeLastLayer);
        a.put("optimizer", "adamw");
        a.put("use_fp16", c.precision() == DinoConfig.Precision.FP16);
        return a;
    }

    // ------------------------------------------------------------------ small helpers

    private static Map<String, TensorData> tensorDict(Object o, String src, String key) {
        String where = key == null ? "the file" : "'" + key + "'";
        if (!(o instanceof Map<?, ?> m)) throw bad(src, where + " is a " + typeName(o) + ", not a state_dict");
        Map<String, TensorData> out = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : m.entrySet()) {
            if (!(e.getKey() instanceof String k) || !(e.getValue() instanceof TensorData t)) {
                throw bad(src, where + " is not a state_dict: entry " + e.getKey() + " is a " + typeName(e.getValue()));
            }
            out.put(k, t);
        }
        return out;
    }

    private static Map<String, TensorData> stripModule(Map<String, TensorData> m) {
        Map<String, TensorData> out = new LinkedHashMap<>();
        m.forEach((k, v) -> out.put(k.startsWith(MODULE) ? k.substring(MODULE.length()) : k, v));
        return out;
    }

    private static TensorData need(Map<String, TensorData> m, String key, int rank, String src) {
        TensorData t = m.get(key);
        if (t == null) throw bad(src, "has no " + key);
        if (t.rank() != rank) throw bad(src, key + " has shape " + Arrays.toString(t.shape()) + ", expected " + rank + " dimensions");
        return t;
    }

    private static int dim(TensorData t, int axis) {
        return Math.toIntExact(t.shape()[axis]);
    }

    private static TensorData shaped(Object v, long[] shape, String src, String what) {
        if (!(v instanceof TensorData t) || t.dtype() == DType.I64) throw bad(src, what + " is a " + typeName(v) + ", not a float tensor");
        if (!t.hasShape(shape)) throw bad(src, what + " has shape " + Arrays.toString(t.shape()) + ", expected " + Arrays.toString(shape));
        return f32(t);
    }

    /** float64 checkpoints are rounded to the state's float32. */
    private static TensorData f32(TensorData t) {
        return t.dtype() == DType.F32 ? t : TensorData.ofFloats(t.shape(), t.toFloatArray());
    }

    private static Map<?, ?> map(Object o, String src, String what) {
        if (o instanceof Map<?, ?> m) return m;
        throw bad(src, what + " is a " + typeName(o) + ", not a dict");
    }

    private static List<?> list(Object o, String src, String what) {
        if (o instanceof List<?> l) return l;
        throw bad(src, what + " is a " + typeName(o) + ", not a list");
    }

    private static double number(Object o, String src, String what) {
        if (o instanceof Number n) return n.doubleValue();
        if (o instanceof TensorData t && t.numel() == 1 && t.dtype() != DType.I64) return t.doubleValue();
        throw bad(src, what + " is a " + typeName(o) + ", not a number");
    }

    private static boolean hasKeyContaining(Map<?, ?> m, String part) {
        return m.keySet().stream().anyMatch(k -> k instanceof String s && s.contains(part));
    }

    private static String keyList(Map<?, ?> m) {
        List<String> ks = m.keySet().stream().map(String::valueOf).limit(8).toList();
        return ks + (m.size() > 8 ? " and " + (m.size() - 8) + " more" : "");
    }

    private static String typeName(Object o) {
        if (o == null) return "None";
        if (o instanceof TensorData t) return "tensor " + t;
        if (o instanceof Map<?, ?>) return "dict";
        if (o instanceof List<?>) return "list";
        return o.getClass().getSimpleName();
    }

    private static IllegalArgumentException bad(String src, String message) {
        return new IllegalArgumentException(message.startsWith(src) ? message : src + ": " + message);
    }
}
