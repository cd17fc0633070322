package dinostream.pipeline.records;

/** A validated image as 8-bit pixels, with where it came from. */
public class DecodedImage {
    public String id;
    public String source;
    public long eventTime;
    /** The model that trains on it (the record's modelId, else the job's default). */
    public String modelId;
    /** Class index for evaluation, or null. */
    public Integer label;
    public int width;
    public int height;
    /** 1 (gray) or 3 (RGB). */
    public int channels;
    /** height x width x channels, row-major, interleaved (HWC). */
    public byte[] pixels;
    public String topic;
    public int partition;
    public long offset;

    public DecodedImage() {}
}
