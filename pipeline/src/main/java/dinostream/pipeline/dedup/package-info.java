/**
 * Filtering near-duplicate frames: a camera sends the same scene many times over, and training on
 * every copy wastes steps and skews the batches. {@link dinostream.pipeline.dedup.FrameHash} is the
 * cheap perceptual hash that tells a near-duplicate from a new image.
 */
package dinostream.pipeline.dedup;
