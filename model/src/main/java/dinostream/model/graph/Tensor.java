package dinostream.model.graph;

import java.util.Arrays;

/**
 * A symbolic value of a {@link Graph}: its ONNX name, element type and shape as far as it is known
 * when the graph is built. {@code requiresGrad} marks values that depend on a differentiated
 * input; only operations on such values are recorded for the backward pass, which is how the
 * teacher's forward pass stays gradient-free without any explicit stop-gradient.
 *
 * <p>A dimension is {@value #UNKNOWN} when it is only known at run time (a symbolic N, H or W of an
 * exported inference model). Operators that do not need such a size accept it and pass it on;
 * what does need it refuses: {@link #numel}, and recording a gradient ({@link Graph#record}), so
 * training graphs stay fully static.
 */
public final class Tensor {
    public final String name;
    public final DType dtype;
    private final long[] shape;
    public final boolean requiresGrad;

    /** A dimension known only at run time. */
    public static final long UNKNOWN = -1;

    Tensor(String name, DType dtype, long[] shape, boolean requiresGrad) {
        this.name = name;
        this.dtype = dtype;
        this.shape = shape.clone();
        this.requiresGrad = requiresGrad;
    }

    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public long dim(int axis) {
        return shape[axis < 0 ? shape.length + axis : axis];
    }

    /** Whether every dimension is known while building. */
    public boolean isStatic() {
        for (long d : shape) if (d == UNKNOWN) return false;
        return true;
    }

    public long numel() {
        if (!isStatic()) throw new IllegalStateException("element count of " + this + " is only known at run time");
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    @Override
    public String toString() {
        return name + ":" + dtype + Arrays.toString(shape);
    }
}
