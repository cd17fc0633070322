package dinostream.model.runtime;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.StateKeys;
import dinostream.model.dino.TrainStep;
import dinostream.model.graph.Graph;
import dinostream.model.graph.Tensor;
import dinostream.model.io.DType;
import dinostream.model.io.DinoState;
import dinostream.model.io.SafeTensors;
import dinostream.model.io.TensorData;
import dinostream.model.io.TensorSource;
import org.bytedeco.javacpp.BoolPointer;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.onnxruntime.IoBinding;
import org.bytedeco.onnxruntime.MemoryInfo;
import org.bytedeco.onnxruntime.OrtMemoryInfo;
import org.bytedeco.onnxruntime.RunOptions;
import org.bytedeco.onnxruntime.Session;
import org.bytedeco.onnxruntime.StringVector;
import org.bytedeco.onnxruntime.Value;
import org.bytedeco.onnxruntime.ValueVector;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.bytedeco.onnxruntime.global.onnxruntime.ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
import static org.bytedeco.onnxruntime.global.onnxruntime.ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;

/**
 * The train step through ONNX Runtime's C++ API (bytedeco's preset) with IoBinding, the state bound
 * to a memory of choice. With the state on the device, each run binds the current state tensors as
 * inputs and asks for the {@code next/*} outputs in the device's memory, which become the next run's
 * inputs: on a GPU the student, teacher, center and both AdamW moments never leave it. Per run only
 * the crops, the schedules' scalars and the stochastic-depth masks go up, and the loss, the
 * monitoring values and the state checksum come back. The first run reads the initial state from
 * host memory (ONNX Runtime copies it up once). With the state in host memory (the host runtime on a
 * GPU, for comparison: the Java API in bytedeco's build has no CUDA provider) the outputs come back
 * and go up again every run.
 *
 * <p>{@link #state()} and {@link #stateBytes()} copy the state down through a second session of
 * Identity nodes whose outputs are bound to host memory: a checkpoint's, a snapshot's or an export's
 * copy, never a step's. On the CPU every memory is host memory and this runs the same kernels as
 * {@link JavaApiTrainSession}; the parity test holds the two to 1e-6.
 */
final class BoundTrainSession implements TrainSession {
    private final TrainStep.Model model;
    private final DinoConfig config;
    private final List<String> keys;
    private final Map<String, StateKeys.Spec> specs = new HashMap<>();
    private final NativeSessions.Handle step;
    private final NativeSessions.Handle copyDown;
    private final IoBinding binding;
    private final IoBinding copyBinding;
    private final RunOptions runOptions = new RunOptions();
    private final MemoryInfo host = NativeSessions.hostMemory();
    private final MemoryInfo device;
    private final SplittableRandom dropPathRng;
    private final boolean hasFeatures;
    /** The outputs read on the host every run, in binding order after the state's {@code next/*}. */
    private final List<String> hostOutputs;
    /** Input and output names as native strings, made once: binding by Java string converts it on every call. */
    private final Map<String, BytePointer> names = new HashMap<>();
    /** Host buffers the inputs are read from, one per input name, reused every run. */
    private final Map<String, ByteBuffer> inputBuffers = new HashMap<>();

    /** The current state: tensors by key, and what owns them (the initial host copies, then a run's outputs). */
    private final Map<String, Value> state = new HashMap<>();
    private final List<Pointer> owned = new ArrayList<>();
    /** Direct copies of the initial state, read by ONNX Runtime until the first run replaces it. */
    private final List<ByteBuffer> loadCopies = new ArrayList<>();
    private long stepCounter;
    /** The last step's teacher features, in host memory, held by the run's outputs; copied out when asked. */
    private Value lastFeatures;

    /** @param stateOnDevice the state bound to the device's memory (else to host memory) */
    BoundTrainSession(TrainStep.Model model, DinoState initial, RuntimeOptions options, long dropPathSeed, boolean stateOnDevice) {
        this.model = model;
        this.config = model.config();
        this.keys = StateKeys.all(config);
        for (StateKeys.Spec s : StateKeys.specs(config)) specs.put(s.key(), s);
        this.dropPathRng = new SplittableRandom(dropPathSeed);
        this.device = stateOnDevice ? NativeSessions.deviceMemory(options) : NativeSessions.hostMemory();
        try {
            this.step = NativeSessions.create(model.onnx(), options);
            this.copyDown = NativeSessions.create(copyModel(config), options);
            this.binding = new IoBinding(step.session());
            this.copyBinding = new IoBinding(copyDown.session());
            this.hasFeatures = outputNames(step.session()).contains(TrainStep.TEACHER_FEATURES);
            List<String> small = new ArrayList<>(List.of(TrainStep.LOSS, TrainStep.TEACHER_ENTROPY, TrainStep.KL, TrainStep.STATE_SUM));
            if (hasFeatures) small.add(TrainStep.TEACHER_FEATURES);
            this.hostOutputs = List.copyOf(small);
            for (String k : keys) {
                TensorData d = initial.get(k);
                if (d.dtype() == DType.F64) throw new IllegalArgumentException("float64 state tensors are not supported by the float32 train step");
                ByteBuffer b = DirectMemory.allocate(d.byteSize());
                b.put(d.data().duplicate()).flip();
                loadCopies.add(b);
                BytePointer data = new BytePointer(b);
                owned.add(data);
                Value v = tensor(host, data, d.byteSize(), d.shape(), d.dtype() == DType.I64
                        ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
                owned.add(v);
                state.put(k, v);
            }
            this.stepCounter = initial.step();
        } catch (RuntimeException e) {
            close();
            throw e;
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
        List<Pointer> transient_ = new ArrayList<>();
        ValueVector out = null;
        try {
            for (String k : keys) binding.BindInput(name(k), state.get(k));
            for (Map.Entry<String, StepInputs.Floats> e : inputs.floats().entrySet()) {
                FloatBuffer src = e.getValue().data();
                ByteBuffer b = inputBuffer(e.getKey(), 4L * src.remaining());
                b.asFloatBuffer().put(src.duplicate());
                binding.BindInput(name(e.getKey()), keep(transient_, Value.CreateTensorFloat(host.asOrtMemoryInfo(),
                        keep(transient_, new FloatPointer(b.asFloatBuffer())), src.remaining(),
                        keep(transient_, new LongPointer(e.getValue().shape())), e.getValue().shape().length)));
            }
            boolean[] freeze = inputs.freeze();
            ByteBuffer fb = inputBuffer(TrainStep.FREEZE_LAST_LAYER, freeze.length);
            for (int i = 0; i < freeze.length; i++) fb.put(i, (byte) (freeze[i] ? 1 : 0));
            binding.BindInput(name(TrainStep.FREEZE_LAST_LAYER), keep(transient_, Value.CreateTensorBool(host.asOrtMemoryInfo(),
                    keep(transient_, new BoolPointer(new BytePointer(fb))), freeze.length,
                    keep(transient_, new LongPointer(inputs.freezeShape())), inputs.freezeShape().length)));

            OrtMemoryInfo onDevice = device.asOrtMemoryInfo(), onHost = host.asOrtMemoryInfo();
            for (String k : keys) binding.BindOutput(name(StateKeys.NEXT + k), onDevice);
            for (String n : hostOutputs) binding.BindOutput(name(n), onHost);

            step.session().Run(runOptions, binding);
            out = binding.GetOutputValues();
            // The binding holds references to what it was given and what it made: drop them, so that
            // the old state is freed when its owner closes and the new one belongs to `out` alone.
            binding.ClearBoundInputs();
            binding.ClearBoundOutputs();

            int n = keys.size();
            float[] loss = floats(out.get(n));
            float[] ent = floats(out.get(n + 1));
            float[] kl = floats(out.get(n + 2));
            float stateSum = floats(out.get(n + 3))[0];
            if (!StepInputs.finite(loss, stateSum)) {
                // Not applied: the state stays what it was before the run.
                out.close();
                throw new NonFiniteStepException(stepCounter, loss, stateSum);
            }
            lastFeatures = hasFeatures ? out.get(n + 4) : null;
            closeOwned();
            freeLoadCopies();
            owned.add(out);
            for (int i = 0; i < n; i++) state.put(keys.get(i), out.get(i));
            stepCounter += model.stepsPerRun();
            return StepInputs.stats(stepCounter, loss, ent, kl);
        } catch (RuntimeException e) {
            binding.ClearBoundInputs();
            binding.ClearBoundOutputs();
            if (e instanceof NonFiniteStepException || e instanceof IllegalArgumentException) throw e;
            if (out != null) out.close();
            throw new IllegalStateException("the train step failed in ONNX Runtime: " + e.getMessage(), e);
        } finally {
            for (int i = transient_.size() - 1; i >= 0; i--) transient_.get(i).close();
        }
    }

    @Override
    public float[][] teacherFeatures() {
        return lastFeatures == null ? null : matrix(lastFeatures);
    }

    @Override
    public long step() {
        return stepCounter;
    }

    @Override
    public DinoState state() {
        Map<String, TensorData> t = new LinkedHashMap<>();
        copyDown((key, v) -> t.put(key, heapCopy(key, v)));
        return DinoState.of(config, t);
    }

    @Override
    public byte[] stateBytes() {
        Map<String, TensorSource> t = new LinkedHashMap<>();
        List<ValueVector> hold = new ArrayList<>();
        ValueVector down = copyDown();
        hold.add(down);
        try {
            for (int i = 0; i < keys.size(); i++) t.put(keys.get(i), new HostSource(specs.get(keys.get(i)), down.get(i)));
            Map<String, String> meta = new LinkedHashMap<>();
            meta.put(DinoState.CONFIG_KEY, config.toJson());
            meta.put(DinoState.FORMAT_KEY, DinoState.FORMAT);
            return SafeTensors.toBytes(t, meta);
        } finally {
            hold.forEach(Pointer::close);
        }
    }

    @Override
    public TensorData get(String key) {
        if (!state.containsKey(key)) throw new IllegalArgumentException("no state key " + key);
        Map<String, TensorData> t = new HashMap<>();
        copyDown((k, v) -> {
            if (k.equals(key)) t.put(k, heapCopy(k, v));
        });
        return t.get(key);
    }

    @Override
    public String endProfiling() {
        // The C++ API hands the trace's name back only through an allocator this preset does not
        // expose; the host runtime runs the same graph and kernels on the CPU.
        throw new UnsupportedOperationException("profiles are taken with the host runtime (--runtime host)");
    }

    @Override
    public void close() {
        closeOwned();
        freeLoadCopies();
        state.clear();
        lastFeatures = null;
        inputBuffers.values().forEach(DirectMemory::free);
        inputBuffers.clear();
        names.values().forEach(Pointer::close);
        names.clear();
        if (binding != null) binding.close();
        if (copyBinding != null) copyBinding.close();
        runOptions.close();
        if (step != null) step.close();
        if (copyDown != null) copyDown.close();
        if (device != host && device != null) device.close();
        host.close();
    }

    // ------------------------------------------------------------------

    /** One Identity per state tensor: run with its outputs bound to host memory, it copies the state down. */
    private static byte[] copyModel(DinoConfig config) {
        Graph g = new Graph("state_copy_down");
        for (StateKeys.Spec s : StateKeys.specs(config)) {
            dinostream.model.graph.DType t = s.int64() ? dinostream.model.graph.DType.INT64 : dinostream.model.graph.DType.FLOAT;
            Tensor in = g.input(s.key(), t, s.shape());
            g.output(g.node1("Identity", new Tensor[]{in}, t, s.shape()), "host/" + s.key());
        }
        return g.toBytes();
    }

    private interface Visitor {
        void accept(String key, Value hostValue);
    }

    private void copyDown(Visitor v) {
        ValueVector down = copyDown();
        try {
            for (int i = 0; i < keys.size(); i++) v.accept(keys.get(i), down.get(i));
        } finally {
            down.close();
        }
    }

    /** The state in host memory, one value per key in {@link #keys} order; the caller closes it. */
    private ValueVector copyDown() {
        try {
            for (String k : keys) copyBinding.BindInput(k, state.get(k));
            for (String k : keys) copyBinding.BindOutput("host/" + k, host.asOrtMemoryInfo());
            copyDown.session().Run(runOptions, copyBinding);
            return copyBinding.GetOutputValues();
        } catch (RuntimeException e) {
            throw new IllegalStateException("could not copy the state to host memory: " + e.getMessage(), e);
        } finally {
            copyBinding.ClearBoundInputs();
            copyBinding.ClearBoundOutputs();
        }
    }

    /** A host tensor's bytes as a little-endian heap buffer (snapshots must not draw on direct memory). */
    private TensorData heapCopy(String key, Value v) {
        StateKeys.Spec s = specs.get(key);
        long bytes = v.GetTensorSizeInBytes();
        ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(bytes)).order(ByteOrder.LITTLE_ENDIAN);
        b.put(rawBytes(v, bytes)).flip();
        return TensorData.wrap(s.int64() ? DType.I64 : DType.F32, s.shape(), b);
    }

    /** A state tensor in host memory as a safetensors source. */
    private record HostSource(StateKeys.Spec spec, Value v) implements TensorSource {
        @Override
        public DType dtype() {
            return spec.int64() ? DType.I64 : DType.F32;
        }

        @Override
        public long[] shape() {
            return spec.shape();
        }

        @Override
        public long byteSize() {
            return v.GetTensorSizeInBytes();
        }

        @Override
        public void copyTo(ByteBuffer dst) {
            dst.put(rawBytes(v, byteSize()));
        }
    }

    /** A host tensor's memory as a native-order view (little-endian on the platforms this runs on). */
    private static ByteBuffer rawBytes(Value v, long bytes) {
        return v.GetTensorRawData().capacity(bytes).asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    private static float[] floats(Value v) {
        long n = v.GetTensorTypeAndShapeInfo().GetElementCount();
        float[] f = new float[Math.toIntExact(n)];
        rawBytes(v, 4 * n).asFloatBuffer().get(f);
        return f;
    }

    private static float[][] matrix(Value v) {
        long[] shape = new long[2];
        v.GetTensorTypeAndShapeInfo().GetDimensions(shape, 2);
        FloatBuffer b = rawBytes(v, 4 * shape[0] * shape[1]).asFloatBuffer();
        float[][] f = new float[(int) shape[0]][(int) shape[1]];
        for (float[] row : f) b.get(row);
        return f;
    }

    private static Value tensor(MemoryInfo where, Pointer data, long bytes, long[] shape, int type) {
        try (LongPointer dims = new LongPointer(shape)) {
            return Value.CreateTensor(where.asOrtMemoryInfo(), data, bytes, dims, shape.length, type);
        }
    }

    private BytePointer name(String n) {
        return names.computeIfAbsent(n, BytePointer::new);
    }

    private ByteBuffer inputBuffer(String name, long bytes) {
        ByteBuffer b = inputBuffers.get(name);
        if (b == null || b.capacity() < bytes) {
            if (b != null) DirectMemory.free(b);
            b = DirectMemory.allocate(bytes);
            inputBuffers.put(name, b);
        }
        b.clear().limit((int) bytes);
        return b;
    }

    private static List<String> outputNames(Session s) {
        List<String> names = new ArrayList<>();
        try (StringVector v = s.GetOutputNames()) {
            for (long i = 0; i < v.size(); i++) names.add(v.get(i).getString());
        }
        return names;
    }

    private static <T extends Pointer> T keep(List<Pointer> list, T p) {
        list.add(p);
        return p;
    }

    private void freeLoadCopies() {
        loadCopies.forEach(DirectMemory::free);
        loadCopies.clear();
    }

    private void closeOwned() {
        for (int i = owned.size() - 1; i >= 0; i--) owned.get(i).close();
        owned.clear();
    }
}
