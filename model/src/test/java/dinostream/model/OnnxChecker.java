package dinostream.model;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.onnx.ModelProto;
import org.bytedeco.onnx.global.onnx;

/**
 * The reference ONNX checker (onnx 1.17 through the bytedeco presets) for tests: structural checks
 * plus full_check, i.e. strict shape inference over the whole model, which fails on a declared
 * shape or type that contradicts what the operators produce.
 */
public final class OnnxChecker {
    private OnnxChecker() {}

    /** Passes silently for a valid model; otherwise an AssertionError carrying the checker's message. */
    public static void check(byte[] modelBytes) {
        ModelProto model = new ModelProto();
        try (BytePointer bytes = new BytePointer(modelBytes)) {
            if (!onnx.ParseProtoFromBytes(model, bytes, modelBytes.length)) {
                throw new AssertionError("ONNX checker: the bytes do not parse as a ModelProto");
            }
            // full_check = true, skip_opset_compatibility_check = false, check_custom_domain = false
            onnx.check_model(model, true, false, false);
        } catch (RuntimeException e) {
            // javacpp rethrows the checker's C++ ValidationError / InferenceError as a RuntimeException.
            throw new AssertionError("ONNX checker: " + e.getMessage(), e);
        } finally {
            model.close();
        }
    }
}
