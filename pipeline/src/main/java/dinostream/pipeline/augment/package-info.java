/**
 * DINO's multi-crop augmentation in plain Java: {@link dinostream.pipeline.augment.PilOps} (the
 * Pillow 8-bit operations torchvision uses, bit-compatible), {@link dinostream.pipeline.augment.MultiCrop}
 * (the views of one image, seeded per record) and the Flink operator
 * {@link dinostream.pipeline.augment.AugmentFunction}.
 */
package dinostream.pipeline.augment;
