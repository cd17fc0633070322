package dinostream.model.runtime;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.StateKeys;
import dinostream.model.dino.TrainStep;

/**
 * Memory outside the JVM heap that one model's train step takes: what a Flink TaskManager must
 * declare as task off-heap memory per trainer slot ({@code taskmanager.memory.task.off-heap.size}).
 *
 * <ul>
 *   <li>JVM direct buffers: the state while it is loaded into ONNX Runtime (freed after the first
 *       step) and the crops of one batch (reused every step).</li>
 *   <li>ONNX Runtime's native memory: the state twice (a step's inputs and its outputs live at the
 *       same time) and the activations kept for the backward pass, which grow with the batch.</li>
 * </ul>
 *
 * The activations are counted per student crop and block as 15·T·D + 2·H·T² floats (T tokens, D
 * width, H heads: layer-norm inputs and outputs, q/k/v, attention scores and probabilities, MLP
 * pre- and post-GELU, projections), and scaled by {@link #ACTIVATION_FACTOR}: the growth of the
 * peak RSS of {@code bench train-step} per image was 2.4–2.6 times that count for fmnist-tiny and
 * fmnist-small (batch 8 to 64) and 1.9 times for vit-s16 (batch 2 to 4): gradients of the same
 * tensors, ONNX Runtime's arena rounding (README, "Running on a Flink cluster", has the table).
 * <p>With the state on a GPU (the device runtime, {@link #onGpu}) the state's two copies and the
 * activations are GPU memory: the host keeps the direct buffers, and ONNX Runtime's pinned staging of
 * the crops and masks on their way up (counted as the crops once more).
 */
public record TrainMemory(long stateBytes, long cropBytes, long activationBytes, boolean stateOnGpu) {
    /** Measured ratio of ONNX Runtime's per-batch memory to the counted activations, with a margin. */
    public static final double ACTIVATION_FACTOR = 3.5;
    /** The state in ONNX Runtime: a step's inputs and outputs, and arena slack. */
    public static final double STATE_FACTOR = 2.5;

    public static TrainMemory of(DinoConfig c, int batch) {
        long state = 0;
        for (StateKeys.Spec s : StateKeys.specs(c)) {
            long n = 1;
            for (long d : s.shape()) n *= d;
            state += n * (s.int64() ? 8 : 4);
        }
        long crops = 0;
        for (int v = 0; v < c.nCrops(); v++) {
            long n = 1;
            for (long d : TrainStep.cropShape(c, batch, v)) n *= d;
            crops += 4 * n;
        }
        double perImage = 2 * viewFloats(c, c.imgSize) + c.nLocal * viewFloats(c, c.localSize);
        return new TrainMemory(state, crops, (long) (4 * perImage * batch), false);
    }

    private static double viewFloats(DinoConfig c, int size) {
        double t = Math.pow((double) size / c.patch, 2) + 1;
        double block = 15 * t * c.dim + 2.0 * c.heads * t * t;
        double head = 3.0 * c.headHidden + c.bottleneck + 3.0 * c.outDim;
        return c.depth * block + head;
    }

    /** JVM direct memory: the state while it loads, and the crops. */
    public long directBytes() {
        return stateBytes + cropBytes;
    }

    /** The same model trained with its state on a GPU: what stays in host memory. */
    public TrainMemory onGpu() {
        return new TrainMemory(stateBytes, cropBytes, activationBytes, true);
    }

    /** ONNX Runtime's native memory in the host, estimated. */
    public long nativeBytes() {
        if (stateOnGpu) return cropBytes;
        return (long) (STATE_FACTOR * stateBytes + ACTIVATION_FACTOR * activationBytes);
    }

    /** What one trainer slot needs declared as task off-heap memory. */
    public long offHeapBytes() {
        return directBytes() + nativeBytes();
    }

    /** Bytes in Flink's memory-size syntax, rounded up to MiB ("2150m"). */
    public static String flinkSize(long bytes) {
        return ((bytes + (1 << 20) - 1) >> 20) + "m";
    }
}
