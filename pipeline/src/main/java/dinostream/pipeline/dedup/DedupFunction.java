package dinostream.pipeline.dedup;

import dinostream.pipeline.augment.MultiCrop;
import dinostream.pipeline.records.DecodedImage;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;


/**
 * Drops, from the training path, a frame whose {@link FrameHash} is within {@code maxDistance} bits of
 * the last frame kept from the same source. Keyed by a bucket of the source name, not the name: a
 * producer names sources freely, and the state must not grow with them. A bucket remembers its last
 * source's fingerprint and last kept hash; a frame of another source in the same bucket is kept (two
 * sources in one bucket filter less, never wrongly). The state is keyed, so a replay decides the same
 * for the same frames in the same order. Dropped frames are counted ({@code dedup_dropped}), not
 * dead-lettered: they are good images, and the embedder still gets them.
 */
public class DedupFunction extends KeyedProcessFunction<Integer, DecodedImage, DecodedImage> {
    private static final long serialVersionUID = 1L;

    /** Buckets of source names: the state's bound (about 40 bytes each when all are used). */
    public static final int BUCKETS = 1 << 16;

    private final DedupOptions options;
    /** (source fingerprint, hash of its last kept frame). */
    private transient ValueState<Tuple2<Long, Long>> lastKept;
    private transient Counter kept;
    private transient Counter dropped;

    public DedupFunction(DedupOptions options) {
        this.options = options;
    }

    /** The key: the bucket of the record's source field (images without one share the empty name's). */
    public static Integer bucketOf(DecodedImage image) {
        return (int) Math.floorMod(fingerprint(image.source), (long) BUCKETS);
    }

    /** The source name's 64-bit FNV-1a (a missing name hashes as the empty one). */
    static long fingerprint(String source) {
        return MultiCrop.fnv1a64(source == null ? "" : source);
    }

    @Override
    public void open(OpenContext openContext) throws Exception {
        super.open(openContext);
        lastKept = getRuntimeContext().getState(new ValueStateDescriptor<>("last-kept", Types.TUPLE(Types.LONG, Types.LONG)));
        kept = getRuntimeContext().getMetricGroup().counter("dedup_kept");
        dropped = getRuntimeContext().getMetricGroup().counter("dedup_dropped");
    }

    @Override
    public void processElement(DecodedImage image, Context ctx, Collector<DecodedImage> out) throws Exception {
        long source = fingerprint(image.source);
        long hash = FrameHash.of(image.width, image.height, image.channels, image.pixels);
        Tuple2<Long, Long> last = lastKept.value();
        if (last != null && last.f0 == source && FrameHash.distance(last.f1, hash) <= options.maxDistance()) {
            dropped.inc();
            return;
        }
        lastKept.update(Tuple2.of(source, hash));
        kept.inc();
        out.collect(image);
    }
}
