package dinostream.pipeline.job;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Presets;
import dinostream.pipeline.embed.EmbedderOptions;
import dinostream.pipeline.probe.ProbeOptions;
import dinostream.pipeline.train.ModelRouting;
import dinostream.pipeline.train.TrainerOptions;
import dinostream.pipeline.train.TrainerOptions.Device;
import dinostream.pipeline.train.TrainerOptions.Schedule;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.InstantiationUtil;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The typed options: checked when built, derived values set once by the builder, nothing changeable afterwards. */
class JobOptionsTest {
    static final DinoConfig CFG = Presets.get("test");

    static JobOptions.Builder minimal() {
        return JobOptions.builder().bootstrap("127.0.0.1:9").model(CFG);
    }

    static void assertRefused(Executable build, String message) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, build);
        assertTrue(e.getMessage().contains(message), "'" + message + "' missing from: " + e.getMessage());
    }

    @Test
    void derivedValuesAreComputedByTheBuilder() {
        JobOptions o = minimal().runFolder(Path.of("/tmp/run")).models(List.of("a", "b"))
                .trainer(t -> t.batch(8)).probe(p -> p.size(40)).build();
        assertEquals(Runtime.getRuntime().availableProcessors(), o.trainer().threads(), "locally the trainer has the machine");
        assertEquals(20, o.trainer().broadcastEvery());
        assertEquals(ModelRouting.of(List.of("a", "b"), DinoJob.TRAINER_MAX_PARALLELISM).keyOf("b"), o.trainer().routing().keyOf("b"));
        assertEquals(8, o.probe().batch(), "the probe's images-seen axis is the trainer's");
        assertEquals("/tmp/run", o.probe().runDir());
        assertEquals(o.trainer().model(), o.probe().model());
        assertEquals(o.trainer().model(), o.embedder().model());
        assertEquals("file:///tmp/run/checkpoints", o.checkpointDir());
        assertEquals("file:///tmp/run/snapshots", o.trainer().snapshotDir());
        assertEquals("/tmp/run", o.trainer().runDir());

        JobOptions cluster = minimal().deployment(Deployment.CLUSTER).checkpointInterval(null).build();
        assertEquals(0, cluster.trainer().threads(), "on a cluster 0 stays: the TaskManager's cores per slot");
        assertNull(cluster.trainer().runDir());
        assertNull(cluster.checkpointDir());
    }

    @Test
    void buildingChangesNothingInTheBuilder() {
        JobOptions.Builder b = minimal().embed(false).probe(p -> p.size(0));
        assertEquals(0, b.build().trainer().broadcastEvery(), "nobody reads teachers: none sent");
        assertEquals(20, b.embed(true).build().trainer().broadcastEvery(), "derived again from the settings, not from the last build");
        JobOptions first = b.build();
        JobOptions restored = b.restorePath("file:///tmp/chk-1").build();
        assertNull(first.restorePath());
        assertEquals("file:///tmp/chk-1", restored.restorePath());
    }

    @Test
    void optionsCannotBeChanged() {
        List<String> models = new ArrayList<>(List.of("a"));
        JobOptions o = minimal().models(models).kafkaProperties(Map.of("security.protocol", "SSL")).build();
        models.add("b");
        assertEquals(List.of("a"), o.models());
        assertThrows(UnsupportedOperationException.class, () -> o.models().add("c"));
        assertThrows(UnsupportedOperationException.class, () -> o.kafkaProperties().put("k", "v"));
        DinoConfig c = o.config();
        c.imgSize = 999;
        assertEquals(CFG.imgSize, o.config().imgSize, "config() hands out a copy");
        assertEquals(CFG.imgSize, o.embedder().config().imgSize);
    }

    @Test
    void badValuesFailWhenBuiltWithAClearMessage() {
        assertRefused(() -> JobOptions.builder().model(CFG).build(), "bootstrap servers are required");
        assertRefused(() -> JobOptions.builder().bootstrap("x:1").build(), "a model configuration is required");
        assertRefused(() -> minimal().modelId("../etc").build(), "modelId: '../etc' is not a model id");
        assertRefused(() -> minimal().models(List.of("a", "a")).build(), "models lists a model twice: a,a");
        assertRefused(() -> minimal().models(List.of("a#1")).build(), "models: 'a#1' is not a model id");
        assertRefused(() -> minimal().checkpointInterval(null).build(), "a local job needs a checkpointInterval");
        assertRefused(() -> minimal().checkpointInterval(Duration.ZERO).build(), "checkpointInterval must be positive");
        assertRefused(() -> minimal().deployment(Deployment.CLUSTER).restorePath("file:///x").build(), "restorePath is for local runs");
        assertRefused(() -> minimal().parallelism(-1).build(), "parallelism must be >= 0, got -1");
        assertRefused(() -> minimal().deadLetterValueBytes(-1).build(), "deadLetterValueBytes must be >= 0");
        assertRefused(() -> minimal().trainer(t -> t.batch(1)).build(), "trainer: batch must be at least 2, got 1");
        assertRefused(() -> minimal().trainer(t -> t.maxModels(0)).build(), "trainer: maxModels must be at least 1");
        assertRefused(() -> minimal().trainer(t -> t.maxSkippedSteps(0)).build(), "trainer: maxSkippedSteps must be at least 1");
        assertRefused(() -> minimal().trainer(t -> t.snapshotEvery(0)).build(), "trainer: snapshotEvery and snapshotKeep must be >= 1");
        assertRefused(() -> minimal().probe(p -> p.size(10)).build(), "probe: size must be 0 (off) or at least 20, got 10");
        assertRefused(() -> minimal().embedder(e -> e.batch(0)).build(), "embedder: batch must be at least 1");
        assertRefused(() -> minimal().trainer(t -> t.teacherTemp(-0.1)).build(), "teacherTemp must be finite and >= 0");
        assertRefused(() -> new Schedule(Schedule.Kind.COSINE, 0, 0, null), "horizonSteps >= 1");
    }

    @Test
    void theDeviceIsParsedOnce() {
        assertEquals(Device.CPU, Device.parse("cpu"));
        assertEquals(new Device(true, Device.ASSIGNED), Device.parse("cuda"));
        assertEquals(new Device(true, 3), Device.parse("cuda:3"));
        for (String s : List.of("cpu", "cuda", "cuda:3")) assertEquals(s, Device.parse(s).toString());
        for (String bad : List.of("gpu", "cuda:", "cuda:x", "cuda:-1", "CPU", "cuda:99999999999")) {
            assertRefused(() -> Device.parse(bad), "must be cpu, cuda or cuda:N, got " + bad);
        }
        assertRefused(() -> new Device(false, 2), "no GPU index 2");
    }

    @Test
    void theScheduleIsTyped() {
        assertEquals(Schedule.Kind.COSINE, Schedule.Kind.parse("cosine"));
        assertEquals("continuous", Schedule.Kind.CONTINUOUS.toString());
        assertRefused(() -> Schedule.Kind.parse("linear"), "must be continuous or cosine, got linear");
        TrainerOptions t = TrainerOptions.builder().model(CFG).batch(16).schedule(new Schedule(Schedule.Kind.COSINE, 0, 500, 0.07)).build();
        assertEquals(0.07, t.trainingSchedule().teacherTemp().at(0), 1e-12);
        assertEquals(0.07, t.trainingSchedule().teacherTemp().at(400), 1e-12);
    }

    /** What Flink ships to the operators travels: the job graph serializes them. */
    @Test
    void theOperatorsOptionsAreSerializableAndTheTopologyBuildsFromThem() throws Exception {
        JobOptions o = minimal().runFolder(Path.of("/tmp/run")).models(List.of("a"))
                .trainer(t -> t.device(Device.parse("cuda:1")).schedule(new Schedule(Schedule.Kind.COSINE, 5, 50, null))).build();
        TrainerOptions t = InstantiationUtil.clone(o.trainer());
        assertEquals(o.trainer().model(), t.model());
        assertEquals(o.trainer().schedule(), t.schedule());
        assertEquals(new Device(true, 1), t.device());
        assertEquals(o.trainer().routing().keyOf("a"), t.routing().keyOf("a"));
        assertEquals(CFG.toJson(), t.config().toJson());
        EmbedderOptions e = InstantiationUtil.clone(o.embedder());
        assertEquals(o.embedder(), e);
        ProbeOptions p = InstantiationUtil.clone(o.probe());
        assertEquals(o.probe(), p);

        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(1);
        DinoJob.build(env, o);
        assertTrue(env.getStreamGraph().getJobGraph().getNumberOfVertices() > 1);
    }
}
