/**
 * Model snapshots (pipeline/docs/snapshots.md): one folder per snapshot with
 * {@code manifest.json} ({@link dinostream.pipeline.snapshot.Manifest}), {@code state.safetensors}
 * and {@code teacher-backbone.onnx}, written atomically to any Flink file system by
 * {@link dinostream.pipeline.snapshot.SnapshotStore}, and the model version
 * ({@link dinostream.pipeline.snapshot.ModelVersion}) that embeddings are stamped with.
 *
 * <p>Inside a Flink job the file systems Flink was started with are available. A program that
 * reads snapshots outside a job (the {@code embed} command) and wants {@code s3://} or other
 * plugin file systems must first call
 * {@code FileSystem.initialize(conf, PluginUtils.createPluginManagerFromRootFolder(conf))};
 * {@code file://} (and {@code hdfs://} with Hadoop on the class path) work without it.
 */
package dinostream.pipeline.snapshot;
