package dinostream.pipeline.snapshot;

/**
 * What an embedder pinned to a snapshot needs: the manifest (model id, step, model version) and
 * the verified {@code teacher-backbone.onnx} bytes, without reading the much larger training state.
 */
public record TeacherSnapshot(Manifest manifest, byte[] onnx) {
}
