package dinostream.model.io;

import java.nio.ByteBuffer;

/**
 * Something that can be written as one tensor of a safetensors file: its type, shape and a copy
 * of its little-endian bytes. Lets a live state (ONNX Runtime's tensors) be serialized with one
 * copy instead of first becoming {@link TensorData}.
 */
public interface TensorSource {
    DType dtype();

    long[] shape();

    long byteSize();

    /** Puts exactly {@link #byteSize()} bytes at {@code dst}'s position and advances it. */
    void copyTo(ByteBuffer dst);
}
