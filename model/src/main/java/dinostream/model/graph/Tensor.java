package dinostream.model.graph;

import java.util.Arrays;

/**
 * A symbolic value of a {@link Graph}: its ONNX name, element type and static shape.
 * {@code requiresGrad} marks values that depend on a differentiated input; only operations on such
 * values are recorded for the backward pass, which is how the teacher's forward pass stays
 * gradient-free without any explicit stop-gradient.
 */
public final class Tensor {
    public final String name;
    public final DType dtype;
    private final long[] shape;
    public final boolean requiresGrad;

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

    public long numel() {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    @Override
    public String toString() {
        return name + ":" + dtype + Arrays.toString(shape);
    }
}
