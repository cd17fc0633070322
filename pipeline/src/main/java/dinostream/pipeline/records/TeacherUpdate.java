package dinostream.pipeline.records;

/**
 * A new teacher for the embedders: the self-contained inference model and its version. Without a
 * model ({@link #rejected}) it says that the trainer refused the model (too many models): its
 * images get dead letters from the trainer, so the embedders drop them instead of waiting.
 */
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

    /** The notice that a model will not be trained (and so never has a teacher). */
    public static TeacherUpdate rejected(String modelId) {
        return new TeacherUpdate(modelId, -1, null, null);
    }

    public boolean isRejection() {
        return onnx == null;
    }
}
