/**
 * Replay for correlated streams: a per-model reservoir of decoded images in Flink keyed state, and
 * the deterministic choices (which slot an image takes, which images a step replays) that make a
 * replay after a failover give the same batches. README.md, "Camera-like streams", says why and how
 * much it costs.
 */
package dinostream.pipeline.replay;
