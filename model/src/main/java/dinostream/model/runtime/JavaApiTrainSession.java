package dinostream.model.runtime;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.StateKeys;
import dinostream.model.dino.TrainStep;
import dinostream.model.io.DType;
import dinostream.model.io.DinoState;
import dinostream.model.io.SafeTensors;
import dinostream.model.io.TensorData;
import dinostream.model.io.TensorSource;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The train step on ONNX Runtime's Java API. The state stays in ONNX Runtime's own tensors in host
 * memory: each run's {@code next/*} outputs are fed straight back as the next run's inputs, so no
 * parameter is copied through Java arrays between steps; {@link #state()} copies it out only when
 * asked. On a GPU the Java API has no way to keep outputs on the device, so every run copies the
 * state up and back: {@link BoundTrainSession} is the GPU's runtime.
 */
final class JavaApiTrainSession implements TrainSession {
    private final OrtEnvironment env = Sessions.env();
    private final TrainStep.Model model;
    private final DinoConfig config;
    private final OrtSession session;
    private final List<String> keys;
    private final Map<String, OnnxTensor> state = new HashMap<>();
    private final List<AutoCloseable> owned = new ArrayList<>();   // what holds the current state
    private final SplittableRandom dropPathRng;
    /** Direct copies of the initial state, read by ONNX Runtime until the first step replaces it. */
    private final List<ByteBuffer> loadCopies = new ArrayList<>();
    /** Crops given in heap buffers go through these, one per view, instead of a new direct buffer per step. */
    private final InputBuffer[] cropBuffers;
    private OnnxTensor lastFeatures;   // held by the current result

    JavaApiTrainSession(TrainStep.Model model, DinoState initial, RuntimeOptions options, long dropPathSeed) {
        this.model = model;
        this.config = model.config();
        this.keys = StateKeys.all(config);
        this.session = Sessions.create(model.onnx(), options);
        this.dropPathRng = new SplittableRandom(dropPathSeed);
        this.cropBuffers = new InputBuffer[config.nCrops()];
        for (int v = 0; v < cropBuffers.length; v++) cropBuffers[v] = new InputBuffer();
        try {
            for (String k : keys) {
                OnnxTensor t = toOrt(initial.get(k));
                state.put(k, t);
                owned.add(t);
            }
        } catch (OrtException e) {
            close();
            throw new IllegalStateException("could not load the state into ONNX Runtime: " + e.getMessage(), e);
        }
    }

    @Override
    public DinoConfig config() {
        return config;
    }

    @Override
    public TrainStep.Model model() {
        return model;
    }

    @Override
    public Stats[] run(FloatBuffer[] crops, Map<String, FloatBuffer> dropPathMasks, Hyper... hyper) {
        StepInputs inputs = StepInputs.of(model, crops, dropPathMasks, dropPathRng, hyper);
        List<OnnxTensor> transient_ = new ArrayList<>();
        try {
            Map<String, OnnxTensor> in = new HashMap<>(state);
            int v = 0;
            for (Map.Entry<String, StepInputs.Floats> e : inputs.floats().entrySet()) {
                FloatBuffer data = e.getValue().data();
                // Crops in heap buffers go through one reused direct buffer per view.
                if (e.getKey().startsWith("crops/") && !data.isDirect()) data = cropBuffers[v++].fill(data);
                in.put(e.getKey(), keep(transient_, OnnxTensor.createTensor(env, data, e.getValue().shape())));
            }
            boolean[] freeze = inputs.freeze();
            in.put(TrainStep.FREEZE_LAST_LAYER, keep(transient_, freeze.length == 1 && inputs.freezeShape().length == 0
                    ? OnnxTensor.createTensor(env, freeze[0]) : OnnxTensor.createTensor(env, freeze)));

            OrtSession.Result r = session.run(in);
            float[] loss = floats(r.get(TrainStep.LOSS).orElseThrow());
            float stateSum = r.get(TrainStep.STATE_SUM).map(JavaApiTrainSession::floats).map(f -> f[0]).orElse(0f);
            if (!StepInputs.finite(loss, stateSum)) {
                // Not applied: the state stays what it was before the run.
                r.close();
                throw new NonFiniteStepException(step(), loss, stateSum);
            }
            Map<String, OnnxTensor> next = new HashMap<>();
            for (String key : keys) next.put(key, (OnnxTensor) r.get(StateKeys.NEXT + key).orElseThrow());
            float[] ent = floats(r.get(TrainStep.TEACHER_ENTROPY).orElseThrow());
            float[] kl = floats(r.get(TrainStep.KL).orElseThrow());
            lastFeatures = (OnnxTensor) r.get(TrainStep.TEACHER_FEATURES).orElse(null);
            // The new state is the result's tensors; release what held the old one.
            closeOwned();
            freeLoadCopies();
            owned.add(r);
            state.putAll(next);
            return StepInputs.stats(step(), loss, ent, kl);
        } catch (OrtException e) {
            throw new IllegalStateException("the train step failed in ONNX Runtime: " + e.getMessage(), e);
        } finally {
            transient_.forEach(OnnxTensor::close);
        }
    }

    /**
     * The teacher's CLS features of the last step's global crops, [2B, D] (a copy), for collapse
     * monitors; null before the first step and for a Loop model.
     */
    @Override
    public float[][] teacherFeatures() {
        if (lastFeatures == null) return null;
        long[] shape = lastFeatures.getInfo().getShape();
        FloatBuffer b = lastFeatures.getFloatBuffer();
        float[][] f = new float[(int) shape[0]][(int) shape[1]];
        for (float[] row : f) b.get(row);
        return f;
    }

    @Override
    public long step() {
        return state.get(StateKeys.STEP).getLongBuffer().get(0);
    }

    @Override
    public DinoState state() {
        Map<String, TensorData> t = new LinkedHashMap<>();
        for (String k : keys) t.put(k, fromOrt(state.get(k)));
        return DinoState.of(config, t);
    }

    /**
     * The current state as safetensors bytes (what {@link DinoState#toBytes()} of {@link #state()}
     * gives) with one copy fewer per tensor: for checkpointing the live state.
     */
    @Override
    public byte[] stateBytes() {
        Map<String, TensorSource> t = new LinkedHashMap<>();
        for (String k : keys) t.put(k, new OrtSource(state.get(k)));
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put(DinoState.CONFIG_KEY, config.toJson());
        meta.put(DinoState.FORMAT_KEY, DinoState.FORMAT);
        return SafeTensors.toBytes(t, meta);
    }

    /** A state tensor as a safetensors source, copied straight from ONNX Runtime's output. */
    private record OrtSource(OnnxTensor t) implements TensorSource {
        @Override
        public DType dtype() {
            return t.getInfo().type == ai.onnxruntime.OnnxJavaType.INT64 ? DType.I64 : DType.F32;
        }

        @Override
        public long[] shape() {
            return t.getInfo().getShape();
        }

        @Override
        public long byteSize() {
            return t.getInfo().getNumElements() * dtype().size();
        }

        @Override
        public void copyTo(ByteBuffer dst) {
            ByteBuffer le = dst.slice().order(ByteOrder.LITTLE_ENDIAN);
            if (dtype() == DType.I64) le.asLongBuffer().put(t.getLongBuffer());
            else le.asFloatBuffer().put(t.getFloatBuffer());
            dst.position(dst.position() + (int) byteSize());
        }
    }

    /** The current value of one state tensor (a copy). */
    @Override
    public TensorData get(String key) {
        OnnxTensor t = state.get(key);
        if (t == null) throw new IllegalArgumentException("no state key " + key);
        return fromOrt(t);
    }

    // ------------------------------------------------------------------

    private static <T> T keep(List<? super T> list, T t) {
        list.add(t);
        return t;
    }

    private OnnxTensor toOrt(TensorData d) throws OrtException {
        return switch (d.dtype()) {
            case F32 -> OnnxTensor.createTensor(env, direct(d).asFloatBuffer(), d.shape());
            case I64 -> OnnxTensor.createTensor(env, direct(d).asLongBuffer(), d.shape());
            case F64 -> throw new IllegalArgumentException("float64 state tensors are not supported by the float32 train step");
        };
    }

    /**
     * ONNX Runtime reads direct native-order buffers in place; anything else is copied once here,
     * into a buffer freed as soon as the first step has replaced the initial state.
     */
    private ByteBuffer direct(TensorData d) {
        ByteBuffer b = d.data();
        if (b.isDirect() && ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN) return b.order(ByteOrder.nativeOrder());
        ByteBuffer c = DirectMemory.allocate(b.remaining());
        loadCopies.add(c);
        c.put(b).flip();
        return c;
    }

    private void freeLoadCopies() {
        loadCopies.forEach(DirectMemory::free);
        loadCopies.clear();
    }

    /** A heap copy: state copies (snapshots, teacher exports) must not draw on the direct-buffer pool. */
    private static TensorData fromOrt(OnnxTensor t) {
        long[] shape = t.getInfo().getShape();
        return switch (t.getInfo().type) {
            case FLOAT -> {
                FloatBuffer f = t.getFloatBuffer();
                ByteBuffer b = ByteBuffer.allocate(f.remaining() * 4).order(ByteOrder.LITTLE_ENDIAN);
                b.asFloatBuffer().put(f);
                yield TensorData.wrap(DType.F32, shape, b);
            }
            case INT64 -> {
                LongBuffer l = t.getLongBuffer();
                ByteBuffer b = ByteBuffer.allocate(l.remaining() * 8).order(ByteOrder.LITTLE_ENDIAN);
                b.asLongBuffer().put(l);
                yield TensorData.wrap(DType.I64, shape, b);
            }
            default -> throw new IllegalStateException("unexpected output type " + t.getInfo().type);
        };
    }

    private static float[] floats(OnnxValue v) {
        FloatBuffer b = ((OnnxTensor) v).getFloatBuffer();
        float[] f = new float[b.remaining()];
        b.get(f);
        return f;
    }

    private void closeOwned() {
        for (AutoCloseable c : owned) {
            try {
                c.close();
            } catch (Exception ignored) {
                // closing native memory does not fail in practice; nothing to recover
            }
        }
        owned.clear();
    }

    /** Stops ONNX Runtime's profiler (when the options enabled it) and returns the trace file it wrote. */
    @Override
    public String endProfiling() {
        try {
            return session.endProfiling();
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime could not write its profile: " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        closeOwned();
        freeLoadCopies();
        for (InputBuffer b : cropBuffers) b.close();
        state.clear();
        try {
            session.close();
        } catch (OrtException ignored) {
            // the session is gone either way
        }
    }
}
