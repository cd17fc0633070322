package dinostream.pipeline.train;

import dinostream.pipeline.records.CropSet;
import dinostream.pipeline.records.TeacherUpdate;
import dinostream.pipeline.replay.ReplayOptions;
import dinostream.pipeline.replay.ReplaySummary;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static dinostream.pipeline.train.DinoTrainerOperatorTest.crops;
import static dinostream.pipeline.train.DinoTrainerOperatorTest.harness;
import static dinostream.pipeline.train.DinoTrainerOperatorTest.options;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The trainer with a replay buffer (batch 4, half replayed) in Flink's keyed harness. */
class ReplayTrainingTest {
    static final int SIDE = 20;

    /** Crops with the decoded image they came from, as the augment operator sends them with replay on. */
    static CropSet withImage(int i, int side) {
        CropSet c = crops("a", i);
        c.source = new byte[side * side];
        new Random(1000 + i).nextBytes(c.source);
        c.sourceWidth = side;
        c.sourceHeight = side;
        c.sourceChannels = 1;
        return c;
    }

    static TrainerOptions replaying(Path dir, int size, long maxBytes) {
        return options(dir).replay(new ReplayOptions(size, 0.5, maxBytes, null)).build();
    }

    static List<String> versions(KeyedOneInputStreamOperatorTestHarness<String, CropSet, TeacherUpdate> h) {
        List<String> v = new ArrayList<>();
        for (TeacherUpdate t : DinoTrainerOperatorTest.teachers(h)) v.add(t.step + ":" + t.version);
        return v;
    }

    @Test
    void freshImagesCountOnceReplayedOnesApartAndTheFirstBatchIsAllFresh(@TempDir Path dir) throws Exception {
        try (var h = harness(replaying(dir, 6, 1 << 20))) {
            h.open();
            // 4 fresh (buffer empty), then 2 fresh + 2 replayed per step: 4 + 8 * 2 = 20 images, 9 steps.
            for (int i = 0; i < 20; i++) h.processElement(withImage(i, SIDE), i);
            List<String> v = versions(h);
            assertEquals("9", v.get(v.size() - 1).split(":")[0], v.toString());
            assertEquals(6, h.getOperator() instanceof DinoTrainerOperator op ? op.replayOf("a").stored() : -1);
        }
        List<String> metrics = Files.readAllLines(dir.resolve("metrics.jsonl"));
        assertEquals(9, metrics.size());
        assertTrue(metrics.get(8).contains("\"images_seen\":20"), metrics.get(8));
    }

    /**
     * A failover in the middle: the restored trainer holds the same buffer and draws the same replayed
     * images with the same crops, so its teachers after the restore equal those of a run without one.
     */
    @Test
    void aRestoredBufferGivesTheSameBatches(@TempDir Path dir) throws Exception {
        TrainerOptions o = replaying(dir, 6, 1 << 20);
        List<String> straight;
        try (var h = harness(o)) {
            h.open();
            for (int i = 0; i < 24; i++) h.processElement(withImage(i, SIDE), i);
            straight = versions(h);
        }
        OperatorSubtaskState checkpoint;
        List<String> before;
        try (var h = harness(o)) {
            h.open();
            for (int i = 0; i < 11; i++) h.processElement(withImage(i, SIDE), i);
            before = versions(h);
            h.prepareSnapshotPreBarrier(1);
            checkpoint = h.snapshot(1, 100);
            // What the failure loses: steps after the checkpoint.
            for (int i = 11; i < 16; i++) h.processElement(withImage(i, SIDE), i);
        }
        List<String> after;
        try (var h = harness(o)) {
            h.initializeState(checkpoint);
            h.open();
            for (int i = 11; i < 24; i++) h.processElement(withImage(i, SIDE), i);
            after = versions(h);
        }
        // Before: steps 0..4 (4 fresh, then 2 per step: 4 + 2*3 = 10 images; the 11th waits). After: the
        // restored teacher (step 4) re-announced, then 5..10 as in the straight run.
        List<String> joined = new ArrayList<>(before);
        joined.addAll(after.subList(1, after.size()));
        assertEquals(straight, joined);
        assertEquals(before.get(before.size() - 1), after.get(0));

        // A control: without the buffer the same images give other models (the replay is what was reproduced).
        try (var h = harness(options(dir.resolve("plain")).build())) {
            h.open();
            for (int i = 0; i < 24; i++) h.processElement(withImage(i, SIDE), i);
            assertNotEquals(straight, versions(h));
        }
    }

    @Test
    void theByteBoundHoldsAndLargeImagesAreNotKept(@TempDir Path dir) throws Exception {
        long slot = new dinostream.pipeline.replay.ReplayImage("a-10", null, SIDE, SIDE, 1, new byte[SIDE * SIDE], 0).bytes();
        long bound = 4 * slot;
        try (var h = harness(replaying(dir, 4, bound))) {
            h.open();
            for (int i = 0; i < 40; i++) h.processElement(withImage(i, i % 3 == 0 ? 2 * SIDE : SIDE), i);
            ReplaySummary r = ((DinoTrainerOperator) h.getOperator()).replayOf("a");
            assertEquals(4, r.stored());
            assertTrue(r.bytes() <= bound, r.bytes() + " > " + bound);
        }
        // The per-model check: a buffer over half this JVM's heap is refused when the model is created.
        TrainerOptions huge = options(dir).replay(new ReplayOptions(1000, 0.5, Runtime.getRuntime().maxMemory(), null)).build();
        try (var h = harness(huge)) {
            h.open();
            Exception e = assertThrows(Exception.class, () -> h.processElement(withImage(0, SIDE), 0));
            assertTrue(String.valueOf(e.getMessage()).contains("--replay-bytes"), e.getMessage());
        }
    }

    /**
     * Restarts that change the buffer: crops cut before replay was on (no image) are trained on and not
     * kept; a smaller buffer keeps what fits, a larger one fills up, no buffer drops the state.
     */
    @Test
    void restartsWithAnotherBufferSizeKeepWhatFits(@TempDir Path dir) throws Exception {
        OperatorSubtaskState plain;
        try (var h = harness(options(dir).build())) {
            h.open();
            for (int i = 0; i < 6; i++) h.processElement(crops("a", i), i);   // one step, 2 pending, no images with them
            h.prepareSnapshotPreBarrier(1);
            plain = h.snapshot(1, 10);
        }
        OperatorSubtaskState eight;
        try (var h = harness(replaying(dir, 8, 1 << 20))) {
            h.initializeState(plain);
            h.open();
            for (int i = 6; i < 20; i++) h.processElement(withImage(i, SIDE), i);
            ReplaySummary r = ((DinoTrainerOperator) h.getOperator()).replayOf("a");
            assertEquals(8, r.stored(), "the two restored crops without an image were not kept");
            h.prepareSnapshotPreBarrier(2);
            eight = h.snapshot(2, 20);
        }
        try (var h = harness(replaying(dir, 3, 1 << 20))) {
            h.initializeState(eight);
            h.open();
            h.processElement(withImage(20, SIDE), 20);
            assertEquals(3, ((DinoTrainerOperator) h.getOperator()).replayOf("a").stored());
        }
        try (var h = harness(replaying(dir, 12, 1 << 20))) {
            h.initializeState(eight);
            h.open();
            for (int i = 20; i < 30; i++) h.processElement(withImage(i, SIDE), i);
            assertEquals(12, ((DinoTrainerOperator) h.getOperator()).replayOf("a").stored(), "a larger buffer fills up");
        }
        try (var h = harness(options(dir).build())) {
            h.initializeState(eight);
            h.open();
            for (int i = 20; i < 24; i++) h.processElement(withImage(i, SIDE), i);
            h.prepareSnapshotPreBarrier(3);
            OperatorSubtaskState none = h.snapshot(3, 30);
            try (var h2 = harness(replaying(dir, 8, 1 << 20))) {
                h2.initializeState(none);
                h2.open();
                h2.processElement(withImage(24, SIDE), 24);
                assertEquals(0, ((DinoTrainerOperator) h2.getOperator()).replayOf("a").stored(), "without a buffer the state was dropped");
            }
        }
    }
}
