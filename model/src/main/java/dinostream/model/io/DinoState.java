package dinostream.model.io;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.LossScaler;
import dinostream.model.dino.ParamSpec;
import dinostream.model.dino.StateKeys;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;

/**
 * The complete DINO training state with the key layout of model/docs/state-format.md (the PyTorch reference's):
 * {@code student/<name>} and {@code teacher/<name>} for every parameter, per trainable parameter
 * {@code optim/exp_avg/<name>}, {@code optim/exp_avg_sq/<name>} (float32, parameter shape) and
 * {@code optim/step/<name>} (int64 scalar), {@code center} (float32 [1, out_dim]) and {@code step}
 * (int64 scalar). Tensors are immutable, so {@link #put} replaces and {@link #copy} is cheap.
 */
public final class DinoState {
    /** The {@code format} metadata this class writes. */
    public static final String FORMAT = "dinostream/1";
    /** Formats whose layout {@link #load} understands: ours and the PyTorch reference's. */
    public static final Set<String> READABLE_FORMATS = Set.of(FORMAT, "dino_ref/1");
    /** Metadata key holding {@link DinoConfig#toJson()}. */
    public static final String CONFIG_KEY = "config";
    public static final String FORMAT_KEY = "format";
    /** An extra tensor reference fixtures store next to the state; {@link #load} skips it. */
    public static final String LOSS_KEY = "loss";


    /** What one state key must hold. */
    public record KeySpec(String key, DType dtype, long[] shape) {
        public boolean matches(TensorData t) {
            return t.dtype() == dtype && t.hasShape(shape);
        }

        String describe() {
            return dtype + Arrays.toString(shape);
        }
    }

    private final DinoConfig config;
    private final Map<String, KeySpec> specs;
    private final LinkedHashMap<String, TensorData> tensors;

    private DinoState(DinoConfig config, Map<String, KeySpec> specs, LinkedHashMap<String, TensorData> tensors) {
        this.config = config;
        this.specs = specs;
        this.tensors = tensors;
    }

    /** Every state key in the reference's order, with its dtype and shape. */
    public static List<KeySpec> stateSpecs(DinoConfig cfg) {
        return StateKeys.specs(cfg).stream()
                .map(s -> new KeySpec(s.key(), s.int64() ? DType.I64 : DType.F32, s.shape())).toList();
    }

    /** The state keys in order (the names of the train-step graph's state inputs and outputs). */
    public static List<String> stateKeys(DinoConfig cfg) {
        return stateSpecs(cfg).stream().map(KeySpec::key).toList();
    }

    /**
     * A fresh state: parameters initialized as DINO does (model/docs/algorithm.md §2, §3), teacher
     * equal to the student, optimizer moments, counters and center zero.
     *
     * <p>Each parameter draws from its own {@link SplittableRandom} seeded from {@code seed} and
     * the parameter's name, so adding a parameter leaves the others' values unchanged. Normal
     * samples come from Box-Muller with {@link StrictMath}, so the values are the same on every JVM.
     */
    public static DinoState init(DinoConfig cfg, long seed) {
        DinoConfig c = cfg.copy();
        List<ParamSpec> params = ParamSpec.of(c);
        Map<String, ParamSpec> byName = new LinkedHashMap<>();
        for (ParamSpec p : params) byName.put(p.name(), p);

        Map<String, TensorData> values = new LinkedHashMap<>();
        for (ParamSpec p : params) values.put(p.name(), initParam(p, byName, seed));

        // Tensors are immutable, so the teacher shares the student's and equal-shaped zeros share one buffer.
        Map<String, TensorData> zeros = new LinkedHashMap<>();
        LinkedHashMap<String, TensorData> t = new LinkedHashMap<>();
        for (KeySpec s : stateSpecs(c)) {
            String k = s.key();
            TensorData v;
            if (k.startsWith(StateKeys.student(""))) v = values.get(k.substring(StateKeys.student("").length()));
            else if (k.startsWith(StateKeys.teacher(""))) v = values.get(k.substring(StateKeys.teacher("").length()));
            else if (k.equals(StateKeys.LOSS_SCALE)) v = TensorData.scalarFloat(LossScaler.INIT_SCALE);
            else v = zeros.computeIfAbsent(s.describe(), d -> TensorData.zeros(s.dtype(), s.shape()));
            t.put(k, v);
        }
        return new DinoState(c, indexSpecs(c), t);
    }

    /**
     * The same model under another precision: fp16 adds a fresh loss scaler ({@link LossScaler#INIT_SCALE},
     * no good steps yet) where the tensors have none, the others drop it; the weights, moments and
     * counters are kept. Any other difference from {@code cfg}'s keys is an error, as in {@link #of(DinoConfig, Map)}.
     */
    public static DinoState withPrecision(DinoConfig cfg, Map<String, TensorData> tensors) {
        Map<String, TensorData> t = new LinkedHashMap<>(tensors);
        if (cfg.precision() == DinoConfig.Precision.FP16) {
            t.putIfAbsent(StateKeys.LOSS_SCALE, TensorData.scalarFloat(LossScaler.INIT_SCALE));
            t.putIfAbsent(StateKeys.GROWTH_TRACKER, TensorData.scalarLong(0));
        } else {
            t.remove(StateKeys.LOSS_SCALE);
            t.remove(StateKeys.GROWTH_TRACKER);
        }
        return of(cfg, t);
    }

    /**
     * Reads a state written by {@link #save} or by the reference's {@code DINO.save}: the
     * configuration from metadata {@code config}, then every tensor checked against it.
     *
     * @throws IllegalArgumentException one line naming the file and the first offending key: a
     *     missing or unexpected key, a wrong dtype or shape, a NaN or infinite value
     */
    public static DinoState load(Path path) throws IOException {
        return of(SafeTensors.read(path), path);
    }

    /** A state from safetensors bytes in memory (e.g. checkpointed in Flink state), checked as {@link #load}. */
    public static DinoState fromBytes(byte[] bytes, String source) {
        return of(SafeTensors.read(bytes, source), source);
    }

    /** The state as safetensors bytes, with the same metadata as {@link #save}. */
    public byte[] toBytes() {
        return SafeTensors.toBytes(tensors, metadata());
    }

    private static DinoState of(SafeTensorsFile file, Object path) {
        String format = file.metadata().get(FORMAT_KEY);
        if (format != null && !READABLE_FORMATS.contains(format)) {
            throw new IllegalArgumentException(path + ": format '" + format + "' is not a DINO state (readable: "
                    + String.join(", ", READABLE_FORMATS.stream().sorted().toList()) + ")");
        }
        String json = file.metadata().get(CONFIG_KEY);
        if (json == null) throw new IllegalArgumentException(path + ": no '" + CONFIG_KEY + "' in the header's __metadata__");
        DinoConfig cfg;
        try {
            cfg = DinoConfig.fromJson(json);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(path + ": " + e.getMessage(), e);
        }

        Map<String, KeySpec> specs = indexSpecs(cfg);
        LinkedHashMap<String, TensorData> t = checkedInOrder(specs, file.tensors(), Set.of(LOSS_KEY), path.toString());
        for (Map.Entry<String, TensorData> e : t.entrySet()) {
            long i = e.getValue().firstNonFinite();
            if (i >= 0) {
                throw new IllegalArgumentException(path + ": " + e.getKey() + " holds a non-finite value ("
                        + e.getValue().doubleAt(i) + ") at flat index " + i);
            }
        }
        return new DinoState(cfg, specs, t);
    }

    /**
     * A state from tensors computed elsewhere (e.g. the train step's outputs): exactly the keys of
     * {@link #stateKeys}, each with its dtype and shape, stored in that order. Values are not
     * scanned for NaN here (that is {@link #load}'s job), so this stays cheap on the training path.
     *
     * @throws IllegalArgumentException naming the first missing, unexpected or mis-shaped key
     */
    public static DinoState of(DinoConfig cfg, Map<String, TensorData> tensors) {
        DinoConfig c = cfg.copy();
        Map<String, KeySpec> specs = indexSpecs(c);
        return new DinoState(c, specs, checkedInOrder(specs, tensors, Set.of(), "DinoState.of"));
    }

    /** Writes the state atomically with metadata {@code config} and {@code format}. */
    public void save(Path path) throws IOException {
        save(path, Map.of());
    }

    /** As {@link #save(Path)}, with additional tensors (e.g. a float32 scalar {@code loss}). */
    public void save(Path path, Map<String, TensorData> extra) throws IOException {
        LinkedHashMap<String, TensorData> all = new LinkedHashMap<>(tensors);
        for (Map.Entry<String, TensorData> e : extra.entrySet()) {
            if (all.containsKey(e.getKey())) throw new IllegalArgumentException("extra tensor " + e.getKey() + " would replace a state key");
            all.put(e.getKey(), e.getValue());
        }
        SafeTensors.write(path, all, metadata());
    }

    private Map<String, String> metadata() {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put(CONFIG_KEY, config.toJson());
        meta.put(FORMAT_KEY, FORMAT);
        return meta;
    }

    /** A copy of the configuration (the state's own one must not change under its tensors). */
    public DinoConfig config() {
        return config.copy();
    }

    /** All state tensors in {@link #stateKeys} order; unmodifiable, reflects later {@link #put}s. */
    public Map<String, TensorData> tensors() {
        return Collections.unmodifiableMap(tensors);
    }

    public TensorData get(String key) {
        TensorData t = tensors.get(key);
        if (t == null) throw new IllegalArgumentException("unknown state key " + key);
        return t;
    }

    /** Replaces one tensor; it must have the key's dtype and shape. */
    public void put(String key, TensorData value) {
        KeySpec s = specs.get(key);
        if (s == null) throw new IllegalArgumentException("unknown state key " + key);
        if (!s.matches(value)) throw new IllegalArgumentException("put " + key + ": got " + value + ", expected " + s.describe());
        tensors.put(key, value);
    }

    /** The global step counter (tensor {@code step}). */
    public long step() {
        return get(StateKeys.STEP).longValue();
    }

    /** An independent state sharing the (immutable) tensors. */
    public DinoState copy() {
        return new DinoState(config, specs, new LinkedHashMap<>(tensors));
    }

    /** {@code in}'s tensors in spec order, or an exception naming the first problem and how many more there are. */
    private static LinkedHashMap<String, TensorData> checkedInOrder(Map<String, KeySpec> specs, Map<String, TensorData> in,
                                                                    Set<String> ignored, String where) {
        List<String> problems = new ArrayList<>();
        LinkedHashMap<String, TensorData> t = new LinkedHashMap<>();
        for (KeySpec s : specs.values()) {
            TensorData v = in.get(s.key());
            if (v == null) problems.add("missing key " + s.key());
            else if (v.dtype() != s.dtype()) problems.add(s.key() + " is " + v.dtype() + ", expected " + s.dtype());
            else if (!v.hasShape(s.shape())) {
                problems.add(s.key() + " has shape " + Arrays.toString(v.shape()) + ", expected " + Arrays.toString(s.shape()));
            } else t.put(s.key(), v);
        }
        for (String k : in.keySet()) {
            if (!specs.containsKey(k) && !ignored.contains(k)) problems.add("unexpected key " + k);
        }
        if (!problems.isEmpty()) {
            String more = problems.size() > 1 ? " (and " + (problems.size() - 1) + " more problems)" : "";
            throw new IllegalArgumentException(where + ": " + problems.get(0) + more);
        }
        return t;
    }

    private static Map<String, KeySpec> indexSpecs(DinoConfig cfg) {
        Map<String, KeySpec> m = new LinkedHashMap<>();
        for (KeySpec s : stateSpecs(cfg)) m.put(s.key(), s);
        return Collections.unmodifiableMap(m);
    }

    // ------------------------------------------------------------------ initialization

    static TensorData initParam(ParamSpec p, Map<String, ParamSpec> byName, long seed) {
        return switch (p.init()) {
            case ZEROS -> TensorData.zeros(DType.F32, p.shape());
            case ONES -> TensorData.fullFloats(p.shape(), 1f);
            case TRUNC_NORMAL_002 -> fill(p, new TruncNormal(stream(seed, p.name()), 0.02, -2.0, 2.0)::next);
            case UNIFORM_FAN_IN -> {
                double bound = 1.0 / StrictMath.sqrt(fanIn(p, byName));
                SplittableRandom r = stream(seed, p.name());
                yield fill(p, () -> (2.0 * r.nextDouble() - 1.0) * bound);
            }
        };
    }

    /**
     * PyTorch's fan-in for its default Linear/Conv init: the product of the weight's dimensions
     * after the first; a bias uses its weight's (model/docs/algorithm.md §2: C·p² for the patch embedding).
     */
    static long fanIn(ParamSpec p, Map<String, ParamSpec> byName) {
        ParamSpec w = p;
        if (p.name().endsWith(".bias")) {
            String wn = p.name().substring(0, p.name().length() - ".bias".length()) + ".weight";
            w = byName.get(wn);
            if (w == null) throw new IllegalStateException("no weight " + wn + " to take the fan-in of " + p.name() + " from");
        }
        long[] s = w.shape();
        if (s.length < 2) throw new IllegalStateException(w.name() + " has no fan-in: shape " + Arrays.toString(s));
        long f = 1;
        for (int i = 1; i < s.length; i++) f *= s[i];
        return f;
    }

    /**
     * The parameter's own random stream: SplittableRandom seeded from the run seed and a 64-bit
     * FNV-1a hash of the name, each passed through SplittableRandom's mix function so that
     * neighbouring seeds do not give overlapping streams.
     */
    static SplittableRandom stream(long seed, String name) {
        long h = 0xcbf29ce484222325L;
        for (byte b : name.getBytes(StandardCharsets.UTF_8)) {
            h ^= b & 0xff;
            h *= 0x100000001b3L;
        }
        return new SplittableRandom(mix64(mix64(seed) ^ h));
    }

    private static long mix64(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    private static TensorData fill(ParamSpec p, DoubleSupplier values) {
        int n = Math.toIntExact(p.numel());
        // On the heap: a runtime copies it into memory it accounts for (TrainSession frees its copy after the first step).
        ByteBuffer b = ByteBuffer.allocate(Math.multiplyExact(n, 4)).order(ByteOrder.LITTLE_ENDIAN);
        FloatBuffer f = b.asFloatBuffer();
        for (int i = 0; i < n; i++) f.put(i, (float) values.getAsDouble());
        return TensorData.wrap(DType.F32, p.shape(), b);
    }

    /** Normal(0, std) resampled until it lies in [lo, hi], as torch.nn.init.trunc_normal_ defines it. */
    private static final class TruncNormal {
        private final SplittableRandom r;
        private final double std, lo, hi;
        private double spare;
        private boolean hasSpare;

        TruncNormal(SplittableRandom r, double std, double lo, double hi) {
            this.r = r;
            this.std = std;
            this.lo = lo;
            this.hi = hi;
        }

        double next() {
            double x;
            do {
                x = std * standardNormal();
            } while (x < lo || x > hi);
            return x;
        }

        private double standardNormal() {
            if (hasSpare) {
                hasSpare = false;
                return spare;
            }
            double u1 = 1.0 - r.nextDouble(); // (0, 1]: log stays finite
            double u2 = r.nextDouble();
            double radius = StrictMath.sqrt(-2.0 * StrictMath.log(u1));
            double angle = 2.0 * Math.PI * u2;
            spare = radius * StrictMath.sin(angle);
            hasSpare = true;
            return radius * StrictMath.cos(angle);
        }
    }
}
