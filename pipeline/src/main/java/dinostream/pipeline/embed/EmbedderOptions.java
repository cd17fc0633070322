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
    /** ONNX Runtime intra-op threads per subtask (0: all cores). */
    public int threads = 1;
}
