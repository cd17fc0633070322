package dinostream.pipeline.train;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Presets;
import dinostream.model.io.DinoState;
import dinostream.pipeline.records.CropSet;
import dinostream.pipeline.records.TeacherUpdate;
import dinostream.pipeline.snapshot.ModelVersion;
import dinostream.pipeline.snapshot.Snapshot;
import dinostream.pipeline.snapshot.SnapshotStore;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import dinostream.model.runtime.RuntimeOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The trainer operator with Flink's keyed test harness: batching, keyed state across a restore, snapshots. */
class DinoTrainerOperatorTest {
    static final DinoConfig CFG = Presets.get("test");

    static TrainerOptions.Builder options(Path dir) {
        return TrainerOptions.builder().model(CFG).batch(4).threads(1).broadcastEvery(1).snapshotEvery(2)
                .snapshotDir(dir.resolve("snapshots").toUri().toString()).runDir(dir.toString());
    }

    static CropSet crops(String model, int i) {
        CropSet c = new CropSet();
        c.id = model + "-" + i;
        c.modelId = model;
        c.topic = "images";
        c.partition = 0;
        c.offset = i;
        c.channels = 1;
        c.sizes = new int[]{CFG.imgSize, CFG.imgSize, CFG.localSize, CFG.localSize};
        int n = 0;
        for (int s : c.sizes) n += s * s;
        c.pixels = new byte[n];
        new Random(i).nextBytes(c.pixels);
        return c;
    }

    static KeyedOneInputStreamOperatorTestHarness<String, CropSet, TeacherUpdate> harness(TrainerOptions o) throws Exception {
        return new KeyedOneInputStreamOperatorTestHarness<>(new DinoTrainerOperator(o), c -> c.modelId, Types.STRING);
    }

    static List<TeacherUpdate> teachers(KeyedOneInputStreamOperatorTestHarness<String, CropSet, TeacherUpdate> h) {
        return h.extractOutputValues();
    }

    /** On both runtimes: the device runtime's state reaches the checkpoint through its copy to host memory. */
    @ParameterizedTest
    @EnumSource(value = RuntimeOptions.Runtime.class, names = {"HOST", "DEVICE"})
    void batchesStepsAndSurvivesARestoreWithNothingLostOrTwice(RuntimeOptions.Runtime runtime, @TempDir Path dir) throws Exception {
        TrainerOptions o = options(dir).runtime(runtime).build();
        OperatorSubtaskState checkpoint;
        try (var h = harness(o)) {
            h.open();
            for (int i = 0; i < 7; i++) h.processElement(crops("a", i), i);
            // First image: the initial teacher; 4 images: one step, teacher of step 1; 3 wait.
            List<TeacherUpdate> out = teachers(h);
            assertEquals(List.of(0L, 1L), out.stream().map(t -> t.step).toList());
            assertNotEquals(out.get(0).version, out.get(1).version);
            // As a task does: the pre-barrier hook (where the trainer writes its state), then the snapshot.
            h.prepareSnapshotPreBarrier(1);
            checkpoint = h.snapshot(1, 100);
        }
        try (var h = harness(o)) {
            h.initializeState(checkpoint);
            h.open();
            h.processElement(crops("a", 7), 8);   // with the 3 restored crops: a full batch
            List<TeacherUpdate> out = teachers(h);
            // Restored at step 1 (initial teacher re-announced), then step 2.
            assertEquals(List.of(1L, 2L), out.stream().map(t -> t.step).toList());
            // Step 2 is a snapshot step: written only once a checkpoint holding it completes.
            h.prepareSnapshotPreBarrier(2);
            h.snapshot(2, 200);
            assertTrue(new SnapshotStore(o.snapshotDir(), 5).latest("a").isEmpty(), "no snapshot before the checkpoint completes");
            h.notifyOfCompletedCheckpoint(2);
        }
        List<String> metrics = Files.readAllLines(dir.resolve("metrics.jsonl"));
        assertEquals(2, metrics.size());
        assertTrue(metrics.get(1).contains("\"images_seen\":8"), metrics.get(1));

        Snapshot s = SnapshotStore.load(new SnapshotStore(o.snapshotDir(), 5).latest("a").orElseThrow().uri());
        assertEquals(2, s.manifest().step());
        assertEquals(8, s.manifest().imagesSeen());
        assertEquals(8L, s.manifest().kafkaOffsets().get("images-0"));
        assertEquals(2, s.state().step());
    }

    /**
     * A teacher temperature of 0 makes every step's loss NaN (the CLI refuses it; the options here
     * take it): each step is refused, the model pauses, stays paused after a restore, and trains
     * again after a restart with the cause fixed and --resume-paused-models.
     */
    @ParameterizedTest
    @EnumSource(value = RuntimeOptions.Runtime.class, names = {"HOST", "DEVICE"})
    void nonFiniteStepsAreSkippedTheModelPausesAndResumesOnlyWhenAsked(RuntimeOptions.Runtime runtime, @TempDir Path dir) throws Exception {
        TrainerOptions.Builder o = options(dir).teacherTemp(0.0).maxSkippedSteps(2).runtime(runtime);
        OperatorSubtaskState checkpoint;
        try (var h = harness(o.build())) {
            h.open();
            // 3 batches: two refused steps pause the model; the third batch is not even held.
            for (int i = 0; i < 12; i++) h.processElement(crops("a", i), i);
            assertEquals(List.of(0L), teachers(h).stream().map(u -> u.step).toList(), "only the initial teacher: no step applied");
            h.prepareSnapshotPreBarrier(1);
            checkpoint = h.snapshot(1, 100);
        }
        assertTrue(!Files.exists(dir.resolve("metrics.jsonl")) || Files.readAllLines(dir.resolve("metrics.jsonl")).isEmpty(),
                "no step was logged");
        o.teacherTemp(null);   // the cause fixed (the schedule's temperature)
        try (var h = harness(o.build())) {
            h.initializeState(checkpoint);
            h.open();
            for (int i = 12; i < 16; i++) h.processElement(crops("a", i), i);
            assertEquals(List.of(), teachers(h).stream().map(u -> u.step).toList(), "restored paused: nothing trains");
        }
        o.resumePausedModels(true);
        try (var h = harness(o.build())) {
            h.initializeState(checkpoint);
            h.open();
            for (int i = 16; i < 20; i++) h.processElement(crops("a", i), i);
            assertEquals(List.of(0L, 1L), teachers(h).stream().map(u -> u.step).toList(), "resumed: announced, then step 1");
        }
    }

    /** A snapshot step whose checkpoint never completes (the job failed) leaves no snapshot: it is not committed state. */
    @Test
    void aSnapshotWaitsForItsCheckpointToComplete(@TempDir Path dir) throws Exception {
        TrainerOptions o = options(dir).build();
        SnapshotStore store = new SnapshotStore(o.snapshotDir(), 5);
        try (var h = harness(o)) {
            h.open();
            for (int i = 0; i < 8; i++) h.processElement(crops("a", i), i);   // steps 1 and 2
            h.prepareSnapshotPreBarrier(1);
            h.snapshot(1, 100);
            h.notifyOfCompletedCheckpoint(1);   // holds step 2
            for (int i = 8; i < 16; i++) h.processElement(crops("a", i), i);  // steps 3 and 4
            h.prepareSnapshotPreBarrier(2);
            h.snapshot(2, 200);
            // Checkpoint 2 never completes: the task fails here.
        }
        assertEquals(List.of(2L), store.list("a").stream().map(r -> r.manifest().step()).toList());
    }

    /** Steps taken while a snapshot's checkpoint completes do not make a second snapshot of the same interval. */
    @Test
    void oneSnapshotPerInterval(@TempDir Path dir) throws Exception {
        TrainerOptions o = options(dir).snapshotEvery(4).build();
        SnapshotStore store = new SnapshotStore(o.snapshotDir(), 5);
        try (var h = harness(o)) {
            h.open();
            for (int i = 0; i < 16; i++) h.processElement(crops("a", i), i);   // steps 1-4: due at 4
            h.prepareSnapshotPreBarrier(1);
            h.snapshot(1, 100);                                                // holds step 4
            for (int i = 16; i < 20; i++) h.processElement(crops("a", i), i);  // step 5, before checkpoint 1 completes
            h.notifyOfCompletedCheckpoint(1);
            // The writer drops a snapshot still waiting behind one being written: let step 4's finish first.
            for (long end = System.nanoTime() + 60_000_000_000L; store.list("a").isEmpty() && System.nanoTime() < end; ) Thread.sleep(20);
            for (int i = 20; i < 24; i++) h.processElement(crops("a", i), i);  // step 6
            h.prepareSnapshotPreBarrier(2);
            h.snapshot(2, 200);
            h.notifyOfCompletedCheckpoint(2);
            for (int i = 24; i < 32; i++) h.processElement(crops("a", i), i);  // steps 7 and 8: the next interval
            h.prepareSnapshotPreBarrier(3);
            h.snapshot(3, 300);
            h.notifyOfCompletedCheckpoint(3);
        }
        assertEquals(List.of(4L, 8L), store.list("a").stream().map(r -> r.manifest().step()).sorted().toList());
    }

    /** Beyond --max-models a subtask creates no model: its images are dead letters and the embedders are told. */
    @Test
    void modelsBeyondTheLimitAreDeadLettersAndTheOthersTrain(@TempDir Path dir) throws Exception {
        TrainerOptions o = options(dir).maxModels(2).build();
        try (var h = harness(o)) {
            h.open();
            for (int i = 0; i < 4; i++) {
                h.processElement(crops("a", i), i);
                h.processElement(crops("b", i), i);
                h.processElement(crops("c", i), i);
            }
            List<TeacherUpdate> out = teachers(h);
            // a and b: initial teacher and step 1 each; c: one refusal notice per image.
            assertEquals(List.of("a", "b"), out.stream().filter(t -> !t.isRejection() && t.step == 1).map(t -> t.modelId).sorted().toList());
            assertEquals(4, out.stream().filter(TeacherUpdate::isRejection).filter(t -> t.modelId.equals("c")).count());
            List<dinostream.schemas.DeadLetter> dead = new java.util.ArrayList<>();
            h.getSideOutput(DinoTrainerOperator.DEAD_LETTERS).forEach(r -> dead.add(r.getValue()));
            assertEquals(List.of(0L, 1L, 2L, 3L), dead.stream().map(dinostream.schemas.DeadLetter::getOffset).toList());
            assertEquals("train", dead.get(0).getStage());
            assertTrue(dead.get(0).getReason().startsWith("TOO_MANY_MODELS: model 'c' would be model 3"), dead.get(0).getReason());
        }
    }

    @Test
    void modelsAreKeyedAndTrainIndependently(@TempDir Path dir) throws Exception {
        TrainerOptions o = options(dir).snapshotDir(null).build();
        try (var h = harness(o)) {
            h.open();
            for (int i = 0; i < 4; i++) h.processElement(crops("a", i), i);
            for (int i = 0; i < 3; i++) h.processElement(crops("b", i), i);
            List<TeacherUpdate> out = teachers(h);
            assertEquals(2, out.stream().filter(t -> t.modelId.equals("a")).count());   // init + step 1
            assertEquals(1, out.stream().filter(t -> t.modelId.equals("b")).count());   // init only
        }
    }

    /** A state file at step 5 with weights from another seed than the trainer's: what --init-from gives. */
    static Path initFile(Path dir, DinoConfig cfg) throws Exception {
        DinoState s = DinoState.init(cfg, 42);
        s.put(dinostream.model.dino.StateKeys.STEP, dinostream.model.io.TensorData.scalarLong(5));
        Path p = dir.resolve("init.safetensors");
        s.save(p);
        return p;
    }

    /** A new model starts from the init file: its weights and its step; then it trains on from there. */
    @Test
    void aNewModelStartsFromTheInitFile(@TempDir Path dir) throws Exception {
        Path file = initFile(dir, CFG);
        TrainerOptions o = options(dir).initState(file.toUri().toString()).build();
        try (var h = harness(o)) {
            h.open();
            for (int i = 0; i < 4; i++) h.processElement(crops("a", i), i);
            List<TeacherUpdate> out = teachers(h);
            assertEquals(List.of(5L, 6L), out.stream().map(u -> u.step).toList());
            assertEquals(ModelVersion.of(DinoState.load(file)), out.get(0).version, "the file's teacher");
        }
        // Its schedule counts from the file's step: the first step is the warm-up's first (lr 0), not step 5's.
        String first = Files.readAllLines(dir.resolve("metrics.jsonl")).get(0);
        assertTrue(first.contains("\"lr\":0.0,"), first);
        double lrAt5 = options(dir).build().trainingSchedule().at(5).lr();
        assertTrue(lrAt5 > 0, "the negative control: step 5 of the warm-up has a learning rate, " + lrAt5);
    }

    /**
     * A restored model is the checkpoint's, whatever --init-from says; a model the checkpoint does
     * not hold starts from the file.
     */
    @Test
    void aRestoredModelIgnoresTheInitFile(@TempDir Path dir) throws Exception {
        OperatorSubtaskState checkpoint;
        String stepOne;
        try (var h = harness(options(dir).build())) {
            h.open();
            for (int i = 0; i < 4; i++) h.processElement(crops("a", i), i);
            stepOne = teachers(h).get(1).version;
            h.prepareSnapshotPreBarrier(1);
            checkpoint = h.snapshot(1, 100);
        }
        Path file = initFile(dir, CFG);
        try (var h = harness(options(dir).initState(file.toString()).build())) {
            h.initializeState(checkpoint);
            h.open();
            h.processElement(crops("a", 4), 4);
            h.processElement(crops("b", 0), 5);
            List<TeacherUpdate> out = teachers(h);
            assertEquals(List.of("a", "b"), out.stream().map(u -> u.modelId).toList());
            assertEquals(1L, out.get(0).step, "a: restored at step 1");
            assertEquals(stepOne, out.get(0).version);
            assertEquals(5L, out.get(1).step, "b: new, from the file");
            assertEquals(ModelVersion.of(DinoState.load(file)), out.get(1).version);
        }
    }

    /**
     * Where the client could not read the file, the trainer finds that it does not fit the job's
     * configuration: the task fails with the same one-line reason, naming the preset that fits.
     */
    @Test
    void anInitFileThatDoesNotFitFailsTheTaskClearly(@TempDir Path dir) throws Exception {
        Path file = initFile(dir, Presets.get("fmnist-small"));
        try (var h = harness(options(dir).initState(file.toUri().toString()).build())) {
            h.open();
            InitFile.InvalidInitFile e = assertThrows(InitFile.InvalidInitFile.class, () -> h.processElement(crops("a", 0), 0));
            assertEquals(file.toUri() + " holds a ViT with dim 128, depth 4, img_size 28, but preset test has dim 32, depth 2, "
                    + "img_size 16: use --preset fmnist-small (its backbone is the file's)", e.getMessage());
        }
        DinoConfig otherHead = CFG.copy();
        otherHead.outDim = 128;
        file = initFile(dir, otherHead);
        try (var h = harness(options(dir).initState(file.toString()).build())) {
            h.open();
            InitFile.InvalidInitFile e = assertThrows(InitFile.InvalidInitFile.class, () -> h.processElement(crops("a", 0), 0));
            assertTrue(e.getMessage().contains("holds a head with out_dim 128 (not 64) of preset test; the job's configuration was decided where "
                    + "the file could not be read: give a --config with the file's head sizes"), e.getMessage());
        }
    }

    /** The model module's torch-written fixtures of the official layouts, in the test preset's shapes. */
    static Path officialFixture(String file) {
        return Path.of(System.getProperty("basedir", ".")).resolve("../model/src/test/resources/fixtures/official-test").resolve(file)
                .toAbsolutePath().normalize();
    }

    /**
     * An official .pth read where the trainer runs: a full checkpoint gives the reference's state
     * (its weights and step), a backbone-only release file both backbones and a head from the seed.
     */
    @Test
    void aNewModelStartsFromAnOfficialPth(@TempDir Path dir) throws Exception {
        DinoState reference = DinoState.load(officialFixture("in.safetensors"));
        try (var h = harness(options(dir).initState(officialFixture("checkpoint.pth").toUri().toString()).build())) {
            h.open();
            for (int i = 0; i < 4; i++) h.processElement(crops("a", i), i);
            List<TeacherUpdate> out = teachers(h);
            assertEquals(List.of(reference.step(), reference.step() + 1), out.stream().map(u -> u.step).toList());
            assertEquals(ModelVersion.of(reference), out.get(0).version, "the checkpoint's teacher");
        }
        // No --heads: the preset's (a release file names no architecture).
        DinoState backbone = dinostream.model.io.OfficialCheckpoint.read(officialFixture("backbone.pth"),
                new dinostream.model.io.OfficialCheckpoint.Options(CFG.heads, null, null, 7, CFG));
        try (var h = harness(options(dir).seed(7).initState(officialFixture("backbone.pth").toString()).build())) {
            h.open();
            h.processElement(crops("a", 0), 0);
            assertEquals(0L, teachers(h).get(0).step);
            assertEquals(ModelVersion.of(backbone), teachers(h).get(0).version);
        }
    }
}
