package dinostream.model.dino;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dinostream.model.io.DinoState;
import dinostream.model.io.SafeTensors;
import dinostream.model.io.SafeTensorsFile;
import dinostream.model.io.TensorData;
import dinostream.model.runtime.RuntimeOptions;
import dinostream.model.runtime.TrainSession;

import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A train-step fixture of the PyTorch reference (in.safetensors, crops.safetensors with any recorded
 * stochastic-depth masks, hparams.json, out.safetensors; model/docs/step-compiler.md, "Correctness"),
 * run with dinostream on any runtime and device, and judged by the fixture's precision: the model's
 * tests run them on the CPU, {@code dinostream parity} on a GPU (ops/gpu/).
 */
public final class ReferenceFixture {
    private ReferenceFixture() {}

    /** float32: the worst per-tensor relative error of the state (StateComparison). */
    public static final double FP32_TOLERANCE = 1e-4;
    /** bf16 keeps 8 significant bits: u = 2^-9; the loss within u, the student's update within 2u (Bf16ParityTest). */
    public static final double BF16_U = 0x1p-9;
    /** fp16 keeps 11: u = 2^-11 (Fp16ParityTest). */
    public static final double FP16_U = 0x1p-11;

    /** The verdict on one fixture: the measured errors against their tolerances. */
    public record Check(String name, String precision, double stateError, double updateError, double lossError,
                        double stateTolerance, double updateTolerance, double lossTolerance, String worstKey) {
        public boolean ok() {
            return stateError <= stateTolerance && updateError <= updateTolerance && lossError <= lossTolerance;
        }
    }

    /** Whether {@code dir} holds a fixture this class runs: its four files, and a step that was applied (not an fp16 overflow). */
    public static boolean runnable(Path dir) throws IOException {
        for (String f : new String[]{"hparams.json", "in.safetensors", "crops.safetensors", "out.safetensors"}) {
            if (!Files.isRegularFile(dir.resolve(f))) return false;
        }
        TensorData inf = SafeTensors.read(dir.resolve("out.safetensors")).tensors().get("found_inf");
        return inf == null || inf.longValue() == 0;
    }

    /** Runs the fixture in {@code dir} from its own start state and judges the result. */
    public static Check check(Path dir, RuntimeOptions options) throws IOException {
        JsonNode hp = hparams(dir);
        DinoState in = DinoState.load(dir.resolve("in.safetensors"));
        Map<String, TensorData> want = SafeTensors.read(dir.resolve("out.safetensors")).tensors();
        String precision = hp.has("precision") ? hp.get("precision").asText() : "fp32";
        String name = dir.getFileName().toString();
        switch (precision) {
            case "fp32" -> {
                StateComparison.Report r = StateComparison.compare(run(dir, in, 1, null, options), want);
                double err = r.missing().isEmpty() && r.intMismatch().isEmpty() ? r.worst() : Double.POSITIVE_INFINITY;
                return new Check(name, precision, err, 0, 0, FP32_TOLERANCE, 0, 0, r.worstKey());
            }
            case "bf16", "fp16" -> {
                boolean bf16 = precision.equals("bf16");
                DinoState low = bf16 ? DinoState.of(in.config().precision(DinoConfig.Precision.BF16), in.tensors())
                        : fp16(in, (float) hp.get("loss_scale").asDouble(), 0);
                Map<String, TensorData> got = run(dir, low, 1, null, options);
                double u = bf16 ? BF16_U : FP16_U;
                return new Check(name, precision, 0, updateError(in.tensors(), got, want), lossError(got, want), 0, 2 * u, u, null);
            }
            default -> throw new IllegalArgumentException(dir + ": unknown precision " + precision);
        }
    }

    /** An fp16 start state: the float32 tensors plus the loss scaler's scale and growth tracker. */
    public static DinoState fp16(DinoState in, float scale, long tracker) {
        DinoState s = DinoState.withPrecision(in.config().precision(DinoConfig.Precision.FP16), in.tensors());
        s.put(StateKeys.LOSS_SCALE, TensorData.scalarFloat(scale));
        s.put(StateKeys.GROWTH_TRACKER, TensorData.scalarLong(tracker));
        return s;
    }

    /**
     * Runs the fixture's steps from {@code in} and returns the resulting state plus the last loss
     * ("loss"). {@code loopSteps > 1} runs them as one Loop model; {@code freezeOverride} replaces
     * the fixture's freeze flag (null: the fixture's).
     */
    public static Map<String, TensorData> run(Path dir, DinoState in, int loopSteps, Boolean freezeOverride,
                                              RuntimeOptions options) throws IOException {
        JsonNode hp = hparams(dir);
        SafeTensorsFile crops = SafeTensors.read(dir.resolve("crops.safetensors"));
        DinoConfig c = in.config();
        int batch = (int) crops.tensors().get("crops/0").shape()[0];
        if (c.nCrops() > 2) c.localSize = (int) crops.tensors().get("crops/2").shape()[2];
        int steps = hp.get("steps").asInt();
        TrainSession.Hyper h = new TrainSession.Hyper((float) hp.get("lr").asDouble(), (float) hp.get("weight_decay").asDouble(),
                (float) hp.get("teacher_temp").asDouble(), (float) hp.get("momentum").asDouble(),
                freezeOverride != null ? freezeOverride : hp.get("freeze_last_layer").asBoolean());
        if (loopSteps <= 1) {
            // On a GPU a bf16 or fp16 step runs its products in that type; on the CPU they are emulated.
            boolean gpu = options.device() == RuntimeOptions.Device.CUDA;
            try (TrainSession s = TrainSession.open(TrainStep.buildFor(c, batch, gpu), in, options, 0)) {
                TrainSession.Stats[] st = null;
                for (int i = 0; i < steps; i++) st = s.run(viewBuffers(crops, c, 1), masks(crops), h);
                return withLoss(s.state(), st[0].loss());
            }
        }
        try (TrainSession s = TrainSession.open(TrainStep.buildLoop(c, batch, steps), in, options, 0)) {
            TrainSession.Hyper[] hs = new TrainSession.Hyper[steps];
            Arrays.fill(hs, h);
            TrainSession.Stats[] st = s.run(viewBuffers(crops, c, steps), hs);
            return withLoss(s.state(), st[steps - 1].loss());
        }
    }

    /** Stochastic-depth masks recorded with a fixture (make_droppath_fixture.py), or null. */
    public static Map<String, FloatBuffer> masks(SafeTensorsFile crops) {
        Map<String, FloatBuffer> m = new LinkedHashMap<>();
        crops.tensors().forEach((k, t) -> {
            if (k.startsWith("drop_path/")) m.put(k, FloatBuffer.wrap(t.toFloatArray()));
        });
        return m.isEmpty() ? null : m;
    }

    /** The fixture's crops, each view repeated {@code repeat} times (a Loop model's K steps). */
    public static FloatBuffer[] viewBuffers(SafeTensorsFile crops, DinoConfig c, int repeat) {
        FloatBuffer[] b = new FloatBuffer[c.nCrops()];
        for (int v = 0; v < b.length; v++) {
            float[] one = crops.tensors().get("crops/" + v).toFloatArray();
            float[] all = new float[one.length * repeat];
            for (int r = 0; r < repeat; r++) System.arraycopy(one, 0, all, r * one.length, one.length);
            b[v] = FloatBuffer.wrap(all);
        }
        return b;
    }

    /** The student's update (next - before) over every trainable tensor, as one vector's relative error. */
    public static double updateError(Map<String, TensorData> in, Map<String, TensorData> got, Map<String, TensorData> want) {
        double diff = 0, norm = 0;
        for (String k : want.keySet()) {
            if (!k.startsWith("student/") || k.endsWith("weight_g")) continue;
            double[] b = in.get(k).toDoubleArray(), g = got.get(k).toDoubleArray(), w = want.get(k).toDoubleArray();
            if (k.endsWith("attn.qkv.bias")) {   // the key third's true gradient is zero: Adam moves it by noise
                int d = b.length / 3;
                for (int i = d; i < 2 * d; i++) g[i] = w[i] = b[i];
            }
            for (int i = 0; i < b.length; i++) {
                double dg = g[i] - b[i], dw = w[i] - b[i];
                diff += (dg - dw) * (dg - dw);
                norm += dw * dw;
            }
        }
        return Math.sqrt(diff / norm);
    }

    /** The loss's relative error. */
    public static double lossError(Map<String, TensorData> got, Map<String, TensorData> want) {
        double l = want.get("loss").toDoubleArray()[0];
        return Math.abs(got.get("loss").toDoubleArray()[0] - l) / Math.abs(l);
    }

    private static JsonNode hparams(Path dir) throws IOException {
        return new ObjectMapper().readTree(Files.readString(dir.resolve("hparams.json")));
    }

    private static Map<String, TensorData> withLoss(DinoState s, float loss) {
        Map<String, TensorData> m = new LinkedHashMap<>(s.tensors());
        m.put("loss", TensorData.scalarFloat(loss));
        return m;
    }
}
