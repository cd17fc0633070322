package dinostream.model.graph;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import com.google.protobuf.ByteString;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Builds one ONNX graph of standard operators (opset {@value #OPSET}) with shapes tracked in Java
 * (static, except the run-time dimensions of inference exports: {@link Tensor#UNKNOWN}), and
 * records a tape of the differentiable operations for {@link Autodiff}.
 * The operator functions live in {@link Elementwise}, {@link Linear}, {@link Shapes},
 * {@link Reductions} and {@link NN}, each beside its gradient rule.
 */
public final class Graph {
    public static final int OPSET = 18;
    public static final long IR_VERSION = 9;

    record TapeEntry(Tensor[] inputs, Tensor[] outputs, GradRule rule) {}

    private final String graphName;
    private final List<NodeProto.Builder> nodes = new ArrayList<>();
    private final List<ValueInfoProto> inputs = new ArrayList<>();
    private final List<ValueInfoProto> outputs = new ArrayList<>();
    private final List<TensorProto> initializers = new ArrayList<>();
    private final Map<String, int[]> producer = new HashMap<>();   // tensor -> {node index, output slot}
    private final Map<String, List<int[]>> consumers = new HashMap<>();   // tensor -> {node index, input slot}
    private final Map<String, String> renamed = new HashMap<>();          // old name -> graph output name
    private final Set<String> names = new HashSet<>();
    private final Set<String> tapeNames = new HashSet<>();
    private final Set<String> outputNames = new HashSet<>();
    private final Map<String, Tensor> constants = new HashMap<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();
    final List<TapeEntry> tape = new ArrayList<>();
    private final Graph outer;
    private boolean recording = true;
    private int counter;
    private DType productPrecision;                                       // null: products in their operands' type
    private boolean nativeProducts;
    private final Set<String> rounded = new HashSet<>();                  // values already at productPrecision
    private String phase = "";
    private long matmulFlops;

    public Graph(String graphName) {
        this(graphName, null);
    }

    private Graph(String graphName, Graph outer) {
        this.graphName = graphName;
        this.outer = outer;
    }

    /** A graph used as the body of a control-flow node; it may read the values of this graph. */
    public Graph subgraph(String name) {
        Graph g = new Graph(name, this);
        g.counter = 0;
        return g;
    }

    // ------------------------------------------------------------------ values

    /** A graph input that is not differentiated. */
    public Tensor input(String name, DType dtype, long... shape) {
        return addInput(name, dtype, shape, false);
    }

    /** A graph input that {@link Autodiff} differentiates against. */
    public Tensor parameter(String name, DType dtype, long... shape) {
        return addInput(name, dtype, shape, true);
    }

    private Tensor addInput(String name, DType dtype, long[] shape, boolean grad) {
        claim(name);
        inputs.add(valueInfo(name, dtype, shape));
        return new Tensor(name, dtype, shape, grad);
    }

    /** Makes a value of an enclosing graph usable here (ONNX outer-scope reference). */
    public Tensor outerValue(Tensor t) {
        if (outer == null) throw new IllegalStateException("not a subgraph");
        return new Tensor(t.name, t.dtype, t.shape(), false);
    }

    /** A scalar constant of the given type (cached: one initializer per value). */
    public Tensor scalar(double value, DType dtype) {
        String key = dtype + ":" + Double.toString(value);
        Tensor c = constants.get(key);
        if (c == null) {
            c = constant("c_" + dtype.name().charAt(0) + "_" + value, dtype, new long[0], new double[]{value});
            constants.put(key, c);
        }
        return c;
    }

    /** A 1-D int64 constant, the form ONNX takes shapes, axes and indices in. */
    public Tensor ints(long... values) {
        String key = "ints:" + Arrays.toString(values);
        Tensor c = constants.get(key);
        if (c == null) {
            double[] d = new double[values.length];
            for (int i = 0; i < values.length; i++) d[i] = values[i];
            c = constant("i64", DType.INT64, new long[]{values.length}, d);
            constants.put(key, c);
        }
        return c;
    }

    /** A constant tensor stored as an initializer. */
    public Tensor constant(String hint, DType dtype, long[] shape, double[] values) {
        String name = fresh(hint);
        ByteBuffer buf = ByteBuffer.allocate(values.length * dtype.bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (double v : values) {
            switch (dtype) {
                case FLOAT -> buf.putFloat((float) v);
                case DOUBLE -> buf.putDouble(v);
                case INT64 -> buf.putLong((long) v);
                case BOOL -> buf.put((byte) (v != 0 ? 1 : 0));
                // 16-bit floats come as rounded initializers (HalfFloats); never silently as zeros
                default -> throw new IllegalArgumentException("no constants of type " + dtype);
            }
        }
        buf.flip();
        return addInitializer(name, dtype, shape, buf);
    }

    /** A named initializer from little-endian raw data (weights of an exported model). */
    public Tensor initializer(String name, DType dtype, long[] shape, ByteBuffer littleEndianData) {
        claim(name);
        return addInitializer(name, dtype, shape, littleEndianData);
    }

    private Tensor addInitializer(String name, DType dtype, long[] shape, ByteBuffer littleEndianData) {
        TensorProto.Builder t = TensorProto.newBuilder().setName(name).setDataType(dtype.onnx);
        for (long d : shape) t.addDims(d);
        t.setRawData(ByteString.copyFrom(littleEndianData.duplicate()));
        initializers.add(t.build());
        return new Tensor(name, dtype, shape, false);
    }

    // ------------------------------------------------------------------ nodes

    /**
     * Emits one node. Output types and shapes are given by the caller (the operator functions
     * compute them). Outputs require gradients when recording and any input does.
     */
    public Tensor[] node(String opType, Tensor[] in, DType[] outTypes, long[][] outShapes, AttributeProto... attrs) {
        NodeProto.Builder n = NodeProto.newBuilder().setOpType(opType);
        boolean grad = false;
        for (Tensor t : in) {
            if (t == null) {
                n.addInput("");   // an omitted optional input
                continue;
            }
            String name = renamed.getOrDefault(t.name, t.name);
            consumers.computeIfAbsent(name, k -> new ArrayList<>()).add(new int[]{nodes.size(), n.getInputCount()});
            n.addInput(name);
            grad |= t.requiresGrad;
        }
        grad &= recording;
        Tensor[] out = new Tensor[outTypes.length];
        for (int i = 0; i < out.length; i++) {
            String name = fresh(opType.toLowerCase());
            n.addOutput(name);
            producer.put(name, new int[]{nodes.size(), i});
            out[i] = new Tensor(name, outTypes[i], outShapes[i], grad);
        }
        for (AttributeProto a : attrs) n.addAttribute(a);
        n.setName(nodeName());
        nodes.add(n);
        matmulFlops += productFlops(opType, in, outShapes, attrs);
        return out;
    }

    /**
     * 2·M·N·K of a MatMul or Gemm (batch axes multiplied in through the output's size), 0 for other
     * operators and for shapes only known at run time.
     */
    static long productFlops(String opType, Tensor[] in, long[][] outShapes, AttributeProto... attrs) {
        if (!opType.equals("MatMul") && !opType.equals("Gemm")) return 0;
        Tensor a = in[0];
        if (!a.isStatic()) return 0;
        long outSize = 1;
        for (long d : outShapes[0]) {
            if (d == Tensor.UNKNOWN) return 0;
            outSize *= d;
        }
        boolean transA = false;
        for (AttributeProto at : attrs) if (at.getName().equals("transA")) transA = at.getI() != 0;
        long k = opType.equals("Gemm") ? a.dim(transA ? 0 : 1) : a.dim(a.rank() - 1);
        return 2 * outSize * k;
    }

    /**
     * Names the nodes emitted from now on {@code name/n<index>} (empty: plain {@code n<index>}), so
     * that a profile of the running model can be split into the step's phases by node name.
     */
    public void phase(String name) {
        phase = name;
    }

    /** The floating-point operations of this graph's MatMul and Gemm nodes (2·M·N·K each), subgraphs excluded. */
    public long matmulFlops() {
        return matmulFlops;
    }

    private String nodeName() {
        return (phase.isEmpty() ? "" : phase + "/") + "n" + nodes.size();
    }

    /** Emits a single-output node. */
    public Tensor node1(String opType, Tensor[] in, DType outType, long[] outShape, AttributeProto... attrs) {
        return node(opType, in, new DType[]{outType}, new long[][]{outShape}, attrs)[0];
    }

    /**
     * Records how to differentiate an operation already emitted (no-op unless some input needs a
     * gradient). Gradient rules need static shapes, so a differentiated value of unknown shape is refused.
     */
    public void record(Tensor[] in, Tensor[] out, GradRule rule) {
        if (!recording) return;
        boolean any = false;
        for (Tensor t : in) any |= t != null && t.requiresGrad;
        if (!any) return;
        for (Tensor t : out) {
            if (!t.isStatic()) throw new IllegalArgumentException("cannot differentiate " + t + ": its shape is only known at run time");
        }
        tape.add(new TapeEntry(in.clone(), out.clone(), rule));
        for (Tensor t : in) if (t != null) tapeNames.add(t.name);
        for (Tensor t : out) tapeNames.add(t.name);
    }

    public void record(Tensor[] in, Tensor out, GradRule rule) {
        record(in, new Tensor[]{out}, rule);
    }

    public boolean recording() {
        return recording;
    }

    /** Builds a part of the graph (optimizer, EMA, backward) that is never differentiated. */
    public <T> T noGrad(Supplier<T> body) {
        boolean was = recording;
        recording = false;
        try {
            return body.get();
        } finally {
            recording = was;
        }
    }

    /**
     * Builds a part of the graph whose matrix products ({@link Linear}) round their operands and
     * results to {@code precision} and back (mixed precision emulated in float32; null: none).
     */
    public <T> T withProductPrecision(DType precision, Supplier<T> body) {
        return withProductPrecision(precision, false, body);
    }

    /**
     * As {@link #withProductPrecision(DType, Supplier)}; with {@code nativeTypes} the products run on
     * tensors of that type instead (Cast to it, the product, Cast back): the graph for providers that
     * have such kernels (CUDA), which ONNX Runtime's CPU provider cannot run.
     */
    public <T> T withProductPrecision(DType precision, boolean nativeTypes, Supplier<T> body) {
        DType was = productPrecision;
        boolean wasNative = nativeProducts;
        productPrecision = precision;
        nativeProducts = nativeTypes;
        try {
            return body.get();
        } finally {
            productPrecision = was;
            nativeProducts = wasNative;
        }
    }

    /** Whether products run on tensors of {@link #productPrecision} (not rounded float32 ones). */
    public boolean nativeProducts() {
        return nativeProducts;
    }

    /** The precision products are rounded to here, or null. */
    public DType productPrecision() {
        return productPrecision;
    }

    /** Whether {@code t} is the result of rounding to the product precision (rounding it again changes nothing). */
    boolean isRounded(Tensor t) {
        return rounded.contains(renamed.getOrDefault(t.name, t.name));
    }

    void markRounded(Tensor t) {
        rounded.add(t.name);
    }

    void tapeConsumed() {
        tape.clear();
        tapeNames.clear();
    }

    // ------------------------------------------------------------------ outputs

    /**
     * Declares a graph output under its final name. The producing node's output and its readers
     * are renamed in place (no Identity copy); graph inputs, initializers and values already
     * declared as outputs get an Identity. Either tensor object may be used afterwards.
     */
    public Tensor output(Tensor t, String name) {
        String current = renamed.getOrDefault(t.name, t.name);
        int[] p = producer.get(current);
        boolean renameable = p != null && !tapeNames.contains(current) && !outputNames.contains(current);
        claim(name);
        if (renameable) {
            nodes.get(p[0]).setOutput(p[1], name);
            producer.remove(current);
            producer.put(name, p);
            for (int[] slot : consumers.getOrDefault(current, List.of())) nodes.get(slot[0]).setInput(slot[1], name);
            consumers.put(name, consumers.getOrDefault(current, new ArrayList<>()));
            consumers.remove(current);
            renamed.put(t.name, name);
            renamed.put(current, name);
        } else {
            NodeProto.Builder n = NodeProto.newBuilder().setOpType("Identity").addInput(current).addOutput(name)
                    .setName(nodeName());
            consumers.computeIfAbsent(current, k -> new ArrayList<>()).add(new int[]{nodes.size(), 0});
            producer.put(name, new int[]{nodes.size(), 0});
            nodes.add(n);
        }
        outputNames.add(name);
        outputs.add(valueInfo(name, t.dtype, t.shape()));
        return new Tensor(name, t.dtype, t.shape(), false);
    }

    public void metadata(String key, String value) {
        metadata.put(key, value);
    }

    // ------------------------------------------------------------------ symbolic dimensions (exported models)

    /**
     * A non-differentiated graph input whose dimensions may be symbolic: {@code symbolic[i]} names
     * dimension i (null: static {@code shape[i]}). The Java-side shape holds {@link Tensor#UNKNOWN}
     * for symbolic dimensions; operators that need such a size refuse it (see {@link Tensor}).
     */
    public Tensor inputDynamic(String name, DType dtype, String[] symbolic, long[] shape) {
        claim(name);
        inputs.add(valueInfoDynamic(name, dtype, symbolic, shape));
        return new Tensor(name, dtype, javaShape(symbolic, shape), false);
    }

    /** As {@link #output}, declared with symbolic dimensions as in {@link #inputDynamic}. */
    public Tensor outputDynamic(Tensor t, String name, String[] symbolic, long[] shape) {
        output(t, name);
        outputs.set(outputs.size() - 1, valueInfoDynamic(name, t.dtype, symbolic, shape));
        return new Tensor(name, t.dtype, javaShape(symbolic, shape), false);
    }

    private static long[] javaShape(String[] symbolic, long[] shape) {
        if (symbolic.length != shape.length) throw new IllegalArgumentException("symbolic and shape differ in rank");
        long[] s = shape.clone();
        for (int i = 0; i < s.length; i++) if (symbolic[i] != null) s[i] = Tensor.UNKNOWN;
        return s;
    }

    // ------------------------------------------------------------------ export

    public GraphProto toGraphProto() {
        GraphProto.Builder g = GraphProto.newBuilder().setName(graphName);
        for (NodeProto.Builder n : nodes) g.addNode(n.build());
        g.addAllInput(inputs).addAllOutput(outputs).addAllInitializer(initializers);
        return g.build();
    }

    public ModelProto toModel() {
        ModelProto.Builder m = ModelProto.newBuilder()
                .setIrVersion(IR_VERSION)
                .setProducerName("dinostream")
                .setProducerVersion("0.1")
                .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(OPSET))
                .setGraph(toGraphProto());
        metadata.forEach((k, v) -> m.addMetadataProps(StringStringEntryProto.newBuilder().setKey(k).setValue(v)));
        return m.build();
    }

    public byte[] toBytes() {
        return toModel().toByteArray();
    }

    public int nodeCount() {
        return nodes.size();
    }

    // ------------------------------------------------------------------ helpers

    static ValueInfoProto valueInfo(String name, DType dtype, long[] shape) {
        TensorShapeProto.Builder s = TensorShapeProto.newBuilder();
        for (long d : shape) s.addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(d));
        TypeProto type = TypeProto.newBuilder()
                .setTensorType(TypeProto.Tensor.newBuilder().setElemType(dtype.onnx).setShape(s)).build();
        return ValueInfoProto.newBuilder().setName(name).setType(type).build();
    }

    /** A value-info whose dimensions may be symbolic, as in {@link #inputDynamic}. */
    public static ValueInfoProto valueInfoDynamic(String name, DType dtype, String[] symbolic, long[] shape) {
        TensorShapeProto.Builder s = TensorShapeProto.newBuilder();
        for (int i = 0; i < shape.length; i++) {
            TensorShapeProto.Dimension.Builder d = TensorShapeProto.Dimension.newBuilder();
            if (symbolic[i] != null) d.setDimParam(symbolic[i]);
            else d.setDimValue(shape[i]);
            s.addDim(d);
        }
        TypeProto type = TypeProto.newBuilder()
                .setTensorType(TypeProto.Tensor.newBuilder().setElemType(dtype.onnx).setShape(s)).build();
        return ValueInfoProto.newBuilder().setName(name).setType(type).build();
    }

    private String fresh(String hint) {
        String base = (outer != null ? graphName + "_" : "") + hint;
        String n;
        do {
            n = base + "_" + (counter++);
        } while (names.contains(n) || (outer != null && outer.names.contains(n)));
        names.add(n);
        return n;
    }

    private void claim(String name) {
        if (!names.add(name)) throw new IllegalArgumentException("duplicate tensor name " + name);
    }
}
