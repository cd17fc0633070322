package dinostream.pipeline.snapshot;

import dinostream.model.io.DinoState;

/**
 * A loaded, verified snapshot: the manifest, the full training state and the inference model
 * ({@code teacher-backbone.onnx} bytes, an array shared with the caller: do not modify it).
 */
public record Snapshot(Manifest manifest, DinoState state, byte[] onnx) {
}
