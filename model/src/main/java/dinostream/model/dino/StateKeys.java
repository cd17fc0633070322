package dinostream.model.dino;

import java.util.ArrayList;
import java.util.List;

/**
 * Names of the training state's tensors: the safetensors keys of model/docs/state-format.md (the PyTorch reference's layout),
 * used unchanged as the train-step model's input names ("next/" + key for its outputs).
 */
public final class StateKeys {
    private StateKeys() {}

    public static final String CENTER = "center";
    public static final String STEP = "step";
    public static final String NEXT = "next/";
    /** fp16 only: the dynamic loss scale (float32 scalar) and the steps since it last changed (int64), as torch's GradScaler. */
    public static final String LOSS_SCALE = "amp/loss_scale";
    public static final String GROWTH_TRACKER = "amp/growth_tracker";

    public static String student(String param) { return "student/" + param; }
    public static String teacher(String param) { return "teacher/" + param; }
    public static String expAvg(String param) { return "optim/exp_avg/" + param; }
    public static String expAvgSq(String param) { return "optim/exp_avg_sq/" + param; }
    public static String optimStep(String param) { return "optim/step/" + param; }

    /** One state tensor: its key, whether it holds int64 counters (else float32), and its shape. */
    public record Spec(String key, boolean int64, long[] shape) {}

    /** Every tensor of a configuration's state, in file order: student, teacher, optimizer, center, step (and fp16's loss scaler). */
    public static List<Spec> specs(DinoConfig c) {
        List<ParamSpec> params = ParamSpec.of(c);
        List<Spec> out = new ArrayList<>();
        for (ParamSpec p : params) out.add(new Spec(student(p.name()), false, p.shape()));
        for (ParamSpec p : params) out.add(new Spec(teacher(p.name()), false, p.shape()));
        for (ParamSpec p : params) {
            if (!p.trainable()) continue;
            out.add(new Spec(expAvg(p.name()), false, p.shape()));
            out.add(new Spec(expAvgSq(p.name()), false, p.shape()));
            out.add(new Spec(optimStep(p.name()), true, new long[0]));
        }
        out.add(new Spec(CENTER, false, new long[]{1, c.outDim}));
        out.add(new Spec(STEP, true, new long[0]));
        if (c.precision() == DinoConfig.Precision.FP16) {
            out.add(new Spec(LOSS_SCALE, false, new long[0]));
            out.add(new Spec(GROWTH_TRACKER, true, new long[0]));
        }
        return out;
    }

    /** The keys of {@link #specs}, in order. */
    public static List<String> all(DinoConfig c) {
        return specs(c).stream().map(Spec::key).toList();
    }
}
