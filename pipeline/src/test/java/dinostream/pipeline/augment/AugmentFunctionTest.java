package dinostream.pipeline.augment;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Presets;
import dinostream.pipeline.records.CropSet;
import dinostream.pipeline.records.DecodedImage;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Meter;
import org.apache.flink.runtime.jobgraph.OperatorID;
import org.apache.flink.runtime.metrics.groups.InternalOperatorMetricGroup;
import org.apache.flink.runtime.metrics.groups.UnregisteredMetricGroups;
import org.apache.flink.runtime.metrics.util.InterceptingOperatorMetricGroup;
import org.apache.flink.runtime.operators.testutils.MockEnvironmentBuilder;
import org.apache.flink.streaming.api.operators.StreamMap;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.apache.flink.util.InstantiationUtil;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

class AugmentFunctionTest {
    static final long SEED = 20240611L;

    static List<DecodedImage> images(int n) {
        List<DecodedImage> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(MultiCropTest.image("img-" + i, 28, 28, 1, i));
        return out;
    }

    /** Runs the records through one operator instance (subtask {@code index} of {@code parallelism}); outputs by id. */
    static Map<String, CropSet> run(AugmentFunction fn, List<DecodedImage> in, int parallelism, int index,
                                    InterceptingOperatorMetricGroup metrics) throws Exception {
        MockEnvironmentBuilder env = new MockEnvironmentBuilder().setParallelism(parallelism).setSubtaskIndex(index).setMaxParallelism(128);
        if (metrics != null) {
            env.setMetricGroup(new UnregisteredMetricGroups.UnregisteredTaskMetricGroup() {
                @Override
                public InternalOperatorMetricGroup getOrAddOperator(OperatorID id, String name, Map<String, String> info) {
                    return metrics;
                }
            });
        }
        // A deserialized copy, as Flink ships it to each subtask.
        AugmentFunction shipped = InstantiationUtil.clone(fn);
        Map<String, CropSet> out = new HashMap<>();
        try (OneInputStreamOperatorTestHarness<DecodedImage, CropSet> h =
                     new OneInputStreamOperatorTestHarness<>(new StreamMap<>(shipped), env.build())) {
            h.open();
            for (DecodedImage d : in) h.processElement(d, d.eventTime);
            for (CropSet c : h.extractOutputValues()) out.put(c.id, c);
        }
        return out;
    }

    @Test
    void outputDependsOnTheRecordOnlyNotOnSubtaskOrOrder() throws Exception {
        DinoConfig cfg = Presets.get("fmnist-tiny");
        AugmentFunction fn = new AugmentFunction(cfg.toJson(), SEED);
        List<DecodedImage> in = images(12);
        Map<String, CropSet> one = run(fn, in, 1, 0, null);
        // The same records split over two subtasks, in reverse order.
        List<DecodedImage> rev = new ArrayList<>(in);
        Collections.reverse(rev);
        Map<String, CropSet> split = new HashMap<>(run(fn, rev.subList(0, 6), 2, 0, null));
        split.putAll(run(fn, rev.subList(6, 12), 2, 1, null));
        assertEquals(12, one.size());
        MultiCrop direct = MultiCrop.forConfig(cfg);
        for (DecodedImage d : in) {
            byte[] expect = direct.apply(d, MultiCrop.rngFor(SEED, d.id)).pixels;
            assertArrayEquals(expect, one.get(d.id).pixels, d.id);
            assertArrayEquals(expect, split.get(d.id).pixels, d.id);
            assertArrayEquals(new int[]{28, 28, 12, 12, 12, 12}, one.get(d.id).sizes);
        }
    }

    @Test
    void countsImagesCropsAndTime() throws Exception {
        InterceptingOperatorMetricGroup metrics = new InterceptingOperatorMetricGroup();
        run(new AugmentFunction(Presets.get("fmnist-small").toJson(), SEED), images(5), 1, 0, metrics);
        assertEquals(5, ((Counter) metrics.get("augmentedImages")).getCount());
        assertEquals(30, ((Counter) metrics.get("crops")).getCount());
        assertInstanceOf(Meter.class, metrics.get("augmentedImagesPerSecond"));
        long nanos = ((Counter) metrics.get("augmentNanos")).getCount();
        assertEquals(true, nanos > 0, "time counted: " + nanos);
    }

    @Test
    void customParamsTravelWithTheFunction() throws Exception {
        MultiCrop.Params p = MultiCrop.Params.oneChannel();
        p.localScaleMin = 0.3;
        p.localScaleMax = 0.3;
        DinoConfig cfg = Presets.get("fmnist-tiny");
        Map<String, CropSet> out = run(new AugmentFunction(cfg.toJson(), SEED, p), images(3), 1, 0, null);
        MultiCrop direct = MultiCrop.forConfig(cfg, p);
        for (DecodedImage d : images(3)) assertArrayEquals(direct.apply(d, SEED).pixels, out.get(d.id).pixels);
    }

    @Test
    void badConfigurationFailsWhenTheJobIsBuilt() {
        assertThrows(IllegalArgumentException.class, () -> new AugmentFunction("{\"img_size\": 30, \"patch\": 4}", SEED));
        MultiCrop.Params p = MultiCrop.Params.dino();
        p.blurRadiusMin = 3;
        assertThrows(IllegalArgumentException.class, () -> new AugmentFunction(Presets.get("vit-s16").toJson(), SEED, p));
    }
}
