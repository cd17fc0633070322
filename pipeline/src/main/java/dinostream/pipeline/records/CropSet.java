package dinostream.pipeline.records;

/**
 * DINO's multi-crop views of one image, as compact uint8: views 0 and 1 global, then the locals.
 * All views are stored back to back in {@link #pixels}, each channel-major (C x S x S) with side
 * {@code sizes[v]}, so one array per image travels instead of V float tensors.
 */
public class CropSet {
    public String id;
    public String modelId;
    public long eventTime;
    public Integer label;
    public String topic;
    public int partition;
    public long offset;
    public int channels;
    public int[] sizes;
    public byte[] pixels;
    /**
     * The decoded image the views were cut from (HWC uint8), carried only when the trainer keeps a
     * replay buffer (it re-crops replayed images); null otherwise.
     */
    public byte[] source;
    public int sourceWidth, sourceHeight, sourceChannels;

    public CropSet() {}

    public int views() {
        return sizes.length;
    }

    /** Start of view v in {@link #pixels}. */
    public int viewOffset(int v) {
        int off = 0;
        for (int i = 0; i < v; i++) off += channels * sizes[i] * sizes[i];
        return off;
    }
}
