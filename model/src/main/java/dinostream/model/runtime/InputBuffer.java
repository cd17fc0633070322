package dinostream.model.runtime;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;

/**
 * A reusable direct float buffer for ONNX Runtime inputs. ONNX Runtime reads a direct buffer in
 * place but copies a heap one into a new direct buffer on every call; this one is allocated once
 * (grown when a larger input comes) and freed on {@link #close}.
 */
public final class InputBuffer implements AutoCloseable {
    private ByteBuffer bytes;
    private FloatBuffer floats;

    /** {@code src[0, n)} in this buffer, ready to read (position 0, limit n). */
    public FloatBuffer fill(float[] src, int n) {
        FloatBuffer f = ensure(n);
        f.clear();
        f.put(src, 0, n).flip();
        return f;
    }

    /** {@code src}'s remaining floats in this buffer, ready to read; {@code src} is not moved. */
    public FloatBuffer fill(FloatBuffer src) {
        FloatBuffer f = ensure(src.remaining());
        f.clear();
        f.put(src.duplicate()).flip();
        return f;
    }

    private FloatBuffer ensure(int n) {
        if (floats == null || floats.capacity() < n) {
            close();
            bytes = DirectMemory.allocate(4L * n);
            floats = bytes.asFloatBuffer();
        }
        return floats;
    }

    @Override
    public void close() {
        DirectMemory.free(bytes);
        bytes = null;
        floats = null;
    }
}
