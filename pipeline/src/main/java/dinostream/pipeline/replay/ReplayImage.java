package dinostream.pipeline.replay;

/** One image kept for replay: its decoded pixels (HWC uint8, as decode made them) and when it arrived. */
public class ReplayImage {
    public String id;
    public Integer label;
    public int width;
    public int height;
    public int channels;
    public byte[] pixels;
    /** Its position among the images offered to the buffer (0 = the first): its age is the offers since. */
    public long arrival;

    public ReplayImage() {}

    public ReplayImage(String id, Integer label, int width, int height, int channels, byte[] pixels, long arrival) {
        this.id = id;
        this.label = label;
        this.width = width;
        this.height = height;
        this.channels = channels;
        this.pixels = pixels;
        this.arrival = arrival;
    }

    /** As the augmentation takes it. */
    public dinostream.pipeline.records.DecodedImage toDecoded(String modelId) {
        dinostream.pipeline.records.DecodedImage d = new dinostream.pipeline.records.DecodedImage();
        d.id = id;
        d.modelId = modelId;
        d.label = label;
        d.width = width;
        d.height = height;
        d.channels = channels;
        d.pixels = pixels;
        return d;
    }

    /** Heap held by one kept image (pixels, id and object headers, roughly). */
    public long bytes() {
        return pixels.length + (id == null ? 0 : 2L * id.length()) + 96;
    }
}
