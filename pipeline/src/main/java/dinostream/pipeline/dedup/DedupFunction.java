package dinostream.pipeline.dedup;

import dinostream.pipeline.records.DecodedImage;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.StateTtlConfig;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;

/**
 * Drops, from the training path, a frame whose {@link FrameHash} is within {@code maxDistance} bits of
 * the last frame kept from the same source (keyed by source). The last kept hash is keyed state, so a
 * replay after a failover decides the same for the same frames in the same order. Dropped frames are
 * counted ({@code dedup_dropped}), not dead-lettered: they are good images, and the embedder still gets them.
 */
public class DedupFunction extends KeyedProcessFunction<String, DecodedImage, DecodedImage> {
    private static final long serialVersionUID = 1L;

    private final DedupOptions options;
    private transient ValueState<Long> lastKept;
    private transient Counter kept;
    private transient Counter dropped;

    public DedupFunction(DedupOptions options) {
        this.options = options;
    }

    /** The key: the record's source field (images without one share the empty key). */
    public static String sourceOf(DecodedImage image) {
        return image.source == null ? "" : image.source;
    }

    @Override
    public void open(OpenContext openContext) throws Exception {
        super.open(openContext);
        ValueStateDescriptor<Long> d = new ValueStateDescriptor<>("last-kept-hash", Types.LONG);
        // A source that stops sending is forgotten after a while: producers name sources freely.
        d.enableTimeToLive(StateTtlConfig.newBuilder(options.idle()).build());
        lastKept = getRuntimeContext().getState(d);
        kept = getRuntimeContext().getMetricGroup().counter("dedup_kept");
        dropped = getRuntimeContext().getMetricGroup().counter("dedup_dropped");
    }

    @Override
    public void processElement(DecodedImage image, Context ctx, Collector<DecodedImage> out) throws Exception {
        long hash = FrameHash.of(image.width, image.height, image.channels, image.pixels);
        Long last = lastKept.value();
        if (last != null && FrameHash.distance(last, hash) <= options.maxDistance()) {
            dropped.inc();
            return;
        }
        lastKept.update(hash);
        kept.inc();
        out.collect(image);
    }
}
