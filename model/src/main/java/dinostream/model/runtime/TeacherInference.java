package dinostream.model.runtime;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import dinostream.model.export.InferenceExport;
import dinostream.model.io.DinoState;

import java.util.Map;

/**
 * A teacher exported by {@link InferenceExport} in ONNX Runtime: images [N, C, H, W] (prepared and
 * normalized) in, the CLS embeddings ({@value InferenceExport#BACKBONE_FILE}) or the last block's
 * CLS attention rows ({@value InferenceExport#ATTENTION_FILE}) out.
 *
 * <p>Owns its session. The input goes through a direct buffer that is reused from call to call
 * (ONNX Runtime would copy a heap buffer into a new direct one every call) and freed on
 * {@link #close}; several instances may share one buffer instead (an embedder holds a session per
 * model but one batch in flight), which then stays the caller's to close. Not thread-safe.
 */
public final class TeacherInference implements AutoCloseable {
    private final OrtSession session;
    private final InputBuffer input;
    private final boolean ownsInput;
    private final int channels;

    /** The teacher backbone of {@code state} ({@link #embed}). */
    public static TeacherInference backbone(DinoState state, RuntimeOptions runtime) {
        return new TeacherInference(InferenceExport.backboneModel(state), runtime);
    }

    /** The teacher attention model of {@code state} ({@link #attention}). */
    public static TeacherInference attention(DinoState state, RuntimeOptions runtime) {
        return new TeacherInference(InferenceExport.attentionModel(state), runtime);
    }

    /** A session on an exported model, with an input buffer of its own. */
    public TeacherInference(byte[] onnx, RuntimeOptions runtime) {
        this(onnx, runtime, new InputBuffer(), true);
    }

    /** A session on an exported model that fills {@code sharedInput}; closing this leaves the buffer open. */
    public TeacherInference(byte[] onnx, RuntimeOptions runtime, InputBuffer sharedInput) {
        this(onnx, runtime, sharedInput, false);
    }

    private TeacherInference(byte[] onnx, RuntimeOptions runtime, InputBuffer input, boolean ownsInput) {
        this.session = Sessions.create(onnx, runtime);
        this.input = input;
        this.ownsInput = ownsInput;
        try {
            TensorInfo in = (TensorInfo) session.getInputInfo().get(InferenceExport.INPUT).getInfo();
            this.channels = (int) in.getShape()[1];
        } catch (OrtException | RuntimeException e) {
            closeQuietly();
            throw new IllegalStateException("the model has no input '" + InferenceExport.INPUT + "' [N, C, H, W]: is it a teacher exported by dinostream?", e);
        }
    }

    /** The image channels the model takes (C of its input). */
    public int channels() {
        return channels;
    }

    /**
     * The CLS embeddings of {@code n} images, {@code pixels[0, n*C*h*w)} channel-major per image.
     *
     * @return [n][D]
     */
    public float[][] embed(float[] pixels, int n, int h, int w) {
        return (float[][]) run(pixels, n, h, w, InferenceExport.EMBEDDINGS, "teacher backbone");
    }

    /**
     * The last block's CLS attention of {@code n} images (see {@link InferenceExport#ATTENTION_FILE}).
     *
     * @return [n][heads][1 + (h/patch)*(w/patch)], CLS first
     */
    public float[][][] attention(float[] pixels, int n, int h, int w) {
        return (float[][][]) run(pixels, n, h, w, InferenceExport.ATTENTION, "teacher attention model");
    }

    private Object run(float[] pixels, int n, int h, int w, String output, String model) {
        long floats = (long) n * channels * h * w;
        if (n < 1 || h < 1 || w < 1 || floats > pixels.length) {
            throw new IllegalArgumentException(n + " images of " + channels + "x" + h + "x" + w + " need " + floats
                    + " floats, got " + pixels.length);
        }
        try (OnnxTensor x = OnnxTensor.createTensor(Sessions.env(), input.fill(pixels, (int) floats), new long[]{n, channels, h, w});
             OrtSession.Result r = session.run(Map.of(InferenceExport.INPUT, x))) {
            OnnxValue v = r.get(output).orElseThrow(() -> new IllegalStateException("the model has no output '" + output + "'"));
            return v.getValue();
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime failed on the " + model + ": " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        if (ownsInput) input.close();
        try {
            session.close();
        } catch (OrtException e) {
            throw new IllegalStateException("could not close the teacher session: " + e.getMessage(), e);
        }
    }

    private void closeQuietly() {
        try {
            close();
        } catch (RuntimeException e) {
            // the constructor's own failure is the one to report
        }
    }
}
