package dinostream.model.io;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.Arrays;

/**
 * An immutable dense tensor: element type, shape and the elements as little-endian bytes in
 * row-major order. Immutability lets one instance be shared (teacher and student start equal, a
 * state read from disk is memory-mapped) without defensive copies; every buffer handed out is a
 * read-only view with its own position.
 */
public final class TensorData implements TensorSource {
    private final DType dtype;
    private final long[] shape;
    private final ByteBuffer data; // read-only, little-endian, position 0, limit = byte size

    private TensorData(DType dtype, long[] shape, ByteBuffer data) {
        this.dtype = dtype;
        this.shape = shape;
        this.data = data;
    }

    /**
     * Takes {@code bytes} (from its position to its limit) without copying. The caller hands the
     * buffer over: it must not change those bytes afterwards. Direct buffers stay direct, so ONNX
     * Runtime can read them in place.
     */
    public static TensorData wrap(DType dtype, long[] shape, ByteBuffer bytes) {
        long[] s = checkShape(dtype, shape);
        long need = byteSize(dtype, s);
        if (bytes.remaining() != need) {
            throw new IllegalArgumentException(dtype + Arrays.toString(s) + " needs " + need + " bytes, got " + bytes.remaining());
        }
        return new TensorData(dtype, s, bytes.slice().asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN));
    }

    /** Copies {@code bytes} (position to limit, little-endian) into a fresh direct buffer. */
    public static TensorData copyOf(DType dtype, long[] shape, ByteBuffer bytes) {
        ByteBuffer copy = allocate(bytes.remaining());
        copy.put(bytes.duplicate()).flip();
        return wrap(dtype, shape, copy);
    }

    public static TensorData zeros(DType dtype, long[] shape) {
        long[] s = checkShape(dtype, shape);
        return wrap(dtype, s, allocate(byteSize(dtype, s)));
    }

    /** A float32 tensor filled with {@code value}. */
    public static TensorData fullFloats(long[] shape, float value) {
        long[] s = checkShape(DType.F32, shape);
        ByteBuffer b = allocate(byteSize(DType.F32, s));
        FloatBuffer f = b.asFloatBuffer();
        while (f.hasRemaining()) f.put(value);
        return wrap(DType.F32, s, b);
    }

    public static TensorData ofFloats(long[] shape, float[] data) {
        return ofFloats(shape, FloatBuffer.wrap(data));
    }

    /** Copies the remaining elements of {@code data}, e.g. an ONNX Runtime output buffer. */
    public static TensorData ofFloats(long[] shape, FloatBuffer data) {
        long[] s = checkShape(DType.F32, shape);
        checkCount(DType.F32, s, data.remaining());
        ByteBuffer b = allocate(byteSize(DType.F32, s));
        b.asFloatBuffer().put(data.duplicate());
        return wrap(DType.F32, s, b);
    }

    public static TensorData ofDoubles(long[] shape, double[] data) {
        long[] s = checkShape(DType.F64, shape);
        checkCount(DType.F64, s, data.length);
        ByteBuffer b = allocate(byteSize(DType.F64, s));
        b.asDoubleBuffer().put(data);
        return wrap(DType.F64, s, b);
    }

    public static TensorData ofLongs(long[] shape, long[] data) {
        long[] s = checkShape(DType.I64, shape);
        checkCount(DType.I64, s, data.length);
        ByteBuffer b = allocate(byteSize(DType.I64, s));
        b.asLongBuffer().put(data);
        return wrap(DType.I64, s, b);
    }

    /** An int64 scalar (shape []), as the reference stores step counters. */
    public static TensorData scalarLong(long v) {
        return ofLongs(new long[0], new long[]{v});
    }

    /** A float32 scalar (shape []), e.g. a loss. */
    public static TensorData scalarFloat(float v) {
        return ofFloats(new long[0], new float[]{v});
    }

    public DType dtype() {
        return dtype;
    }

    /** A copy of the shape; {@code []} for a scalar. */
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public boolean hasShape(long... expected) {
        return Arrays.equals(shape, expected);
    }

    public long numel() {
        return numel(shape);
    }

    public long byteSize() {
        return data.capacity();
    }

    @Override
    public void copyTo(ByteBuffer dst) {
        dst.put(data());
    }

    /** A read-only little-endian view of all the bytes, position 0. */
    public ByteBuffer data() {
        return data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * A read-only view of the float32 elements; direct when the bytes are (file-mapped), so
     * {@code OnnxTensor.createTensor(env, buf, shape)} uses it without copying.
     */
    public FloatBuffer asFloatBuffer() {
        require(DType.F32, "asFloatBuffer");
        return data().asFloatBuffer();
    }

    public DoubleBuffer asDoubleBuffer() {
        require(DType.F64, "asDoubleBuffer");
        return data().asDoubleBuffer();
    }

    public LongBuffer asLongBuffer() {
        require(DType.I64, "asLongBuffer");
        return data().asLongBuffer();
    }

    /** The elements as floats; float64 elements are rounded to float32. */
    public float[] toFloatArray() {
        float[] out = new float[arrayLength("toFloatArray")];
        switch (dtype) {
            case F32 -> asFloatBuffer().get(out);
            case F64 -> {
                DoubleBuffer d = asDoubleBuffer();
                for (int i = 0; i < out.length; i++) out[i] = (float) d.get(i);
            }
            default -> throw new IllegalStateException("toFloatArray on an " + dtype + " tensor");
        }
        return out;
    }

    /** The elements as doubles; float32 elements are widened exactly. */
    public double[] toDoubleArray() {
        double[] out = new double[arrayLength("toDoubleArray")];
        switch (dtype) {
            case F64 -> asDoubleBuffer().get(out);
            case F32 -> {
                FloatBuffer f = asFloatBuffer();
                for (int i = 0; i < out.length; i++) out[i] = f.get(i);
            }
            default -> throw new IllegalStateException("toDoubleArray on an " + dtype + " tensor");
        }
        return out;
    }

    public long[] toLongArray() {
        long[] out = new long[arrayLength("toLongArray")];
        asLongBuffer().get(out);
        return out;
    }

    /** The value of a one-element int64 tensor (shape [] or [1]). */
    public long longValue() {
        require(DType.I64, "longValue");
        requireOneElement("longValue");
        return data.getLong(0);
    }

    /** The value of a one-element float tensor (shape [] or [1]), widened to double. */
    public double doubleValue() {
        requireOneElement("doubleValue");
        return switch (dtype) {
            case F32 -> data.getFloat(0);
            case F64 -> data.getDouble(0);
            default -> throw new IllegalStateException("doubleValue on an " + dtype + " tensor");
        };
    }

    /** One element by row-major index, widened to double (int64 values past 2^53 round). */
    public double doubleAt(long flatIndex) {
        if (flatIndex < 0 || flatIndex >= numel()) throw new IndexOutOfBoundsException("index " + flatIndex + " in " + this);
        int byteIndex = Math.toIntExact(flatIndex * dtype.size());
        return switch (dtype) {
            case F32 -> data.getFloat(byteIndex);
            case F64 -> data.getDouble(byteIndex);
            case I64 -> data.getLong(byteIndex);
        };
    }

    /** Index of the first NaN or infinite element, or -1 (always -1 for int64). */
    public long firstNonFinite() {
        switch (dtype) {
            case F32 -> {
                FloatBuffer f = data().asFloatBuffer();
                for (int i = 0, n = f.limit(); i < n; i++) if (!Float.isFinite(f.get(i))) return i;
            }
            case F64 -> {
                DoubleBuffer d = data().asDoubleBuffer();
                for (int i = 0, n = d.limit(); i < n; i++) if (!Double.isFinite(d.get(i))) return i;
            }
            default -> { }
        }
        return -1;
    }

    /** Equal dtype, shape and bytes (so float comparison is bit-exact: NaN payloads and -0 count). */
    @Override
    public boolean equals(Object o) {
        return o instanceof TensorData t && dtype == t.dtype && Arrays.equals(shape, t.shape) && data.equals(t.data);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * dtype.hashCode() + Arrays.hashCode(shape)) + data.hashCode();
    }

    @Override
    public String toString() {
        return dtype + Arrays.toString(shape);
    }

    static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) n = Math.multiplyExact(n, d);
        return n;
    }

    /** Bytes of a {@code dtype} tensor of {@code shape}; throws ArithmeticException past long range. */
    static long byteSize(DType dtype, long[] shape) {
        return Math.multiplyExact(numel(shape), dtype.size());
    }

    private static long[] checkShape(DType dtype, long[] shape) {
        for (long d : shape) {
            if (d < 0) throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
        }
        long[] s = shape.clone();
        try {
            if (byteSize(dtype, s) > Integer.MAX_VALUE) {
                // Java buffers index with int: one tensor is limited to 2 GiB (the largest DINO tensor is ~70 MB).
                throw new IllegalArgumentException("tensor of shape " + Arrays.toString(s) + " is larger than 2 GiB");
            }
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("tensor of shape " + Arrays.toString(s) + " has too many elements", e);
        }
        return s;
    }

    private static void checkCount(DType dtype, long[] shape, int count) {
        if (numel(shape) != count) {
            throw new IllegalArgumentException(dtype + Arrays.toString(shape) + " needs " + numel(shape) + " elements, got " + count);
        }
    }

    /** On the heap: a runtime copies what it reads into memory it accounts for (see TrainSession). */
    private static ByteBuffer allocate(long bytes) {
        return ByteBuffer.allocate(Math.toIntExact(bytes)).order(ByteOrder.LITTLE_ENDIAN);
    }

    private void require(DType t, String what) {
        if (dtype != t) throw new IllegalStateException(what + " needs an " + t + " tensor, this is " + this);
    }

    private void requireOneElement(String what) {
        if (numel() != 1 || shape.length > 1) throw new IllegalStateException(what + " needs a scalar or [1] tensor, this is " + this);
    }

    private int arrayLength(String what) {
        long n = numel();
        if (n > Integer.MAX_VALUE - 8) throw new IllegalStateException(what + ": " + this + " has too many elements for a Java array");
        return (int) n;
    }
}
