package dinostream.pipeline.augment;

import dinostream.model.dino.DinoConfig;
import dinostream.pipeline.records.CropSet;
import dinostream.pipeline.records.DecodedImage;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MeterView;
import org.apache.flink.metrics.MetricGroup;

/**
 * The multi-crop operator: {@link DecodedImage} to {@link CropSet} with {@link MultiCrop}, each
 * record's randomness seeded from (model seed, record id), so the output depends on the record
 * alone, not on the subtask, the parallelism or the arrival order, and a replay reproduces it.
 *
 * <p>Metrics (operator group): counters {@code augmentedImages}, {@code crops} and
 * {@code augmentNanos} (time spent in the augmentation, cumulative), and the meter
 * {@code augmentedImagesPerSecond}. Time per image = augmentNanos / augmentedImages.
 */
public class AugmentFunction extends RichMapFunction<DecodedImage, CropSet> {
    private static final long serialVersionUID = 1L;

    private final String configJson;
    private final long modelSeed;
    private final MultiCrop.Params params;
    private final boolean keepSource;

    private transient MultiCrop multiCrop;
    private transient Counter images;
    private transient Counter crops;
    private transient Counter nanos;

    /** Parameters by channel count: DINO's for three channels, model/docs/algorithm.md §1's one-channel adaptation for one. */
    public AugmentFunction(String configJson, long modelSeed) {
        this(configJson, modelSeed, null);
    }

    /**
     * @param configJson the model's {@link DinoConfig} as JSON (crop sizes, n_local, in_chans)
     * @param modelSeed  the model's seed
     * @param params     augmentation parameters, or null for the defaults of the channel count
     */
    public AugmentFunction(String configJson, long modelSeed, MultiCrop.Params params) {
        this(configJson, modelSeed, params, false);
    }

    /** @param keepSource also carry the decoded image, for a trainer that keeps a replay buffer */
    public AugmentFunction(String configJson, long modelSeed, MultiCrop.Params params, boolean keepSource) {
        this.keepSource = keepSource;
        DinoConfig cfg = DinoConfig.fromJson(configJson); // fail when the job is built, not on the cluster
        this.configJson = configJson;
        this.modelSeed = modelSeed;
        this.params = (params == null ? MultiCrop.Params.forChannels(cfg.inChans) : params).copy().validate();
    }

    @Override
    public void open(OpenContext openContext) throws Exception {
        super.open(openContext);
        multiCrop = MultiCrop.forConfig(DinoConfig.fromJson(configJson), params);
        MetricGroup g = getRuntimeContext().getMetricGroup();
        images = g.counter("augmentedImages");
        crops = g.counter("crops");
        nanos = g.counter("augmentNanos");
        g.meter("augmentedImagesPerSecond", new MeterView(images));
    }

    @Override
    public CropSet map(DecodedImage image) {
        long t0 = System.nanoTime();
        CropSet out = multiCrop.apply(image, MultiCrop.rngFor(modelSeed, image.id));
        nanos.inc(System.nanoTime() - t0);
        if (keepSource) {
            out.source = image.pixels;
            out.sourceWidth = image.width;
            out.sourceHeight = image.height;
            out.sourceChannels = image.channels;
        }
        images.inc();
        crops.inc(out.views());
        return out;
    }
}
