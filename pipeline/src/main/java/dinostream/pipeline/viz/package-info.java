/**
 * Pictures of what a model learned: the teacher's attention maps ({@link dinostream.pipeline.viz.Attention},
 * {@link dinostream.pipeline.viz.AttentionFigure}) and the self-contained HTML report of a run folder
 * ({@link dinostream.pipeline.viz.Report}: JFreeChart charts of metrics.jsonl, the multi-crop views,
 * attention maps and the configuration). Everything draws off-screen (headless AWT) to PNG.
 */
package dinostream.pipeline.viz;
