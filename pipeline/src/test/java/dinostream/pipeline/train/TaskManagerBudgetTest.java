package dinostream.pipeline.train;

import dinostream.model.dino.Presets;
import dinostream.model.runtime.TrainMemory;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.configuration.TaskManagerOptions;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TaskManagerBudgetTest {
    static final TrainMemory TINY = TrainMemory.of(Presets.get("fmnist-tiny"), 64);

    static Configuration tm(String offHeap, int slots) {
        Configuration c = new Configuration();
        c.set(TaskManagerOptions.TASK_OFF_HEAP_MEMORY, MemorySize.parse(offHeap));
        c.set(TaskManagerOptions.NUM_TASK_SLOTS, slots);
        return c;
    }

    @Test
    void aTaskManagerWithoutOffHeapMemoryIsToldWhatToSet() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> TaskManagerBudget.check(tm("0b", 2), TINY, 1, "model a (preset fmnist-tiny, batch 64)"));
        String m = e.getMessage();
        assertTrue(m.startsWith("model a (preset fmnist-tiny, batch 64) needs about " + TrainMemory.flinkSize(TINY.offHeapBytes())), m);
        assertTrue(m.contains("taskmanager.memory.task.off-heap.size to at least " + TrainMemory.flinkSize(2 * TINY.offHeapBytes())), m);
        assertTrue(m.contains("2 slot(s)"), m);
    }

    @Test
    void theBudgetIsPerSlot() {
        long need = TINY.offHeapBytes();
        TaskManagerBudget.check(tm((need + (1 << 20)) + "b", 1), TINY, 1, "a");
        assertThrows(IllegalStateException.class, () -> TaskManagerBudget.check(tm((need + (1 << 20)) + "b", 1), TINY, 2, "a"));
        assertThrows(IllegalStateException.class, () -> TaskManagerBudget.check(tm((need + (1 << 20)) + "b", 2), TINY, 1, "a"));
    }

    /**
     * With the state on a GPU the host keeps the direct buffers and the staging of the crops: vit-s16 at
     * batch 64 needs a small part of what it needs on the CPU, so a GPU TaskManager is not told to
     * declare gigabytes it would never use, and one with too little is still refused.
     */
    @Test
    void aModelOnAGpuNeedsItsHostPartOnly() {
        TrainMemory cpu = TrainMemory.of(Presets.get("vit-s16"), 64), gpu = cpu.onGpu();
        assertTrue(gpu.offHeapBytes() == cpu.directBytes() + cpu.cropBytes(), "direct buffers and the crops' staging");
        assertTrue(gpu.offHeapBytes() * 10 < cpu.offHeapBytes(), gpu.offHeapBytes() + " vs " + cpu.offHeapBytes());
        TaskManagerBudget.check(tm((gpu.offHeapBytes() + (1 << 20)) + "b", 1), gpu, 1, "a");
        assertThrows(IllegalStateException.class, () -> TaskManagerBudget.check(tm((gpu.offHeapBytes() + (1 << 20)) + "b", 1), cpu, 1, "a"));
        assertThrows(IllegalStateException.class, () -> TaskManagerBudget.check(tm("64m", 1), gpu, 1, "a"));
    }

    @Test
    void aMiniClusterWithoutSizesIsNotRefused() {
        TaskManagerBudget.check(new Configuration(), TrainMemory.of(Presets.get("test"), 8), 1, "a");
    }

    /** Replay buffers are heap: half a slot's task heap at most, counting the slot's models. */
    @Test
    void replayBuffersFitHalfTheSlotsTaskHeap() {
        Configuration c = new Configuration();
        c.set(TaskManagerOptions.TASK_HEAP_MEMORY, MemorySize.parse("256m"));
        c.set(TaskManagerOptions.NUM_TASK_SLOTS, 2);
        var replay = new dinostream.pipeline.replay.ReplayOptions(10_000, 0.5, 64L << 20, null);
        TaskManagerBudget.checkReplay(c, replay, 1, "model a");   // 64m of the slot's 128m / 2
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> TaskManagerBudget.checkReplay(c, replay, 2, "model b"));
        assertTrue(e.getMessage().startsWith("model b: its replay buffer may hold 64m of heap (--replay-bytes), 128m for the 2 models of this slot"), e.getMessage());
        assertTrue(e.getMessage().contains("taskmanager.memory.task.heap.size to at least 512m"), e.getMessage());
        TaskManagerBudget.checkReplay(c, dinostream.pipeline.replay.ReplayOptions.NONE, 16, "no buffer, no check");
    }
}
