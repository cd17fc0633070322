package dinostream.pipeline.replay;

import dinostream.pipeline.augment.MultiCrop;

import java.io.Serializable;

/**
 * The replay buffer of each model.
 *
 * @param size     images kept at most (0: no buffer, today's train-on-arrival)
 * @param ratio    the share of each batch taken from the buffer, in [0, 1); at least one image of a batch is fresh
 * @param maxBytes heap the buffer of one model may hold; an image over maxBytes / size is not kept (and counted)
 * @param augment  the multi-crop parameters for replayed images (the job's; null: DINO's for the channels)
 */
public record ReplayOptions(int size, double ratio, long maxBytes, MultiCrop.Params augment) implements Serializable {
    private static final long serialVersionUID = 1L;

    public static final long DEFAULT_MAX_BYTES = 64L << 20;
    public static final ReplayOptions NONE = new ReplayOptions(0, 0, DEFAULT_MAX_BYTES, null);

    public ReplayOptions {
        if (size < 0) throw new IllegalArgumentException("replay size must be >= 0, got " + size);
        if (!(ratio >= 0 && ratio < 1)) throw new IllegalArgumentException("replay ratio must be in [0, 1), got " + ratio);
        if (ratio > 0 && size == 0) throw new IllegalArgumentException("a replay ratio needs a buffer: set the replay size too");
        if (maxBytes < 1) throw new IllegalArgumentException("replay byte bound must be positive, got " + maxBytes);
        if (size > 0 && maxBytes / size < 64) {
            throw new IllegalArgumentException("replay byte bound " + maxBytes + " leaves " + (maxBytes / size) + " bytes per image for "
                    + size + " images");
        }
        if (augment != null) augment = augment.copy().validate();
    }

    public boolean enabled() {
        return size > 0;
    }

    /** Whether steps take images from the buffer (a buffer with ratio 0 only fills, e.g. to start replaying after a restart). */
    public boolean replays() {
        return size > 0 && ratio > 0;
    }

    /** Heap one kept image may take: the byte bound shared evenly, so the bound holds whatever the image sizes. */
    public long slotBytes() {
        return size == 0 ? 0 : maxBytes / size;
    }

    /** Images of a batch taken from a buffer holding {@code stored}: ratio × batch, at most what is stored, at most batch - 1. */
    public int replayPerBatch(int batch, int stored) {
        if (!replays()) return 0;
        int want = (int) Math.min(batch - 1, Math.round(ratio * batch));
        return Math.min(want, stored);
    }

    public ReplayOptions withAugment(MultiCrop.Params params) {
        return new ReplayOptions(size, ratio, maxBytes, params);
    }
}
