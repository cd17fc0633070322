package dinostream.pipeline.embed;

import java.io.Serializable;

/** Settings of the embedding operator. */
public class EmbedderOptions implements Serializable {
    private static final long serialVersionUID = 1L;

    /** The model configuration as JSON (input size, channels, mean/std). */
    public String configJson;
    /** Images per ONNX Runtime call. */
    public int batch = 32;
    /** A partial batch is embedded after this long (ms) so a slow stream still gets its vectors. */
    public long maxDelayMs = 200;
    /**
     * Pixels held for models that have no teacher yet, at most (per subtask); the oldest beyond it
     * become dead letters (NO_TEACHER). A new model's teacher comes with its first train step, so
     * only a stalled or refused model fills this.
     */
    public long maxWaitingBytes = 64L << 20;
    /** ONNX Runtime intra-op threads per subtask (0: all cores). */
    public int threads = 1;
}
