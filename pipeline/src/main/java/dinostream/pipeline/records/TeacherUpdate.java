package dinostream.pipeline.records;

/** A new teacher for the embedders: the self-contained inference model and its version. */
public class TeacherUpdate {
    public String modelId;
    public long step;
    /** SHA-256 (hex) of the teacher weights: the model version stamped on embeddings. */
    public String version;
    /** teacher-backbone.onnx. */
    public byte[] onnx;

    public TeacherUpdate() {}

    public TeacherUpdate(String modelId, long step, String version, byte[] onnx) {
        this.modelId = modelId;
        this.step = step;
        this.version = version;
        this.onnx = onnx;
    }
}
