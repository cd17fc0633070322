package dinostream.pipeline.train;

import dinostream.model.runtime.DirectMemory;
import dinostream.model.runtime.TrainMemory;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.configuration.TaskManagerOptions;

/**
 * A TaskManager's budget for the trainers it runs. ONNX Runtime's memory is outside the JVM heap,
 * so Flink only accounts for it when it is declared as task off-heap memory, shared by the
 * TaskManager's slots. A TaskManager that declares too little fails here, when a model is created,
 * with the setting to raise; not later with an OutOfMemoryError in a restart.
 */
final class TaskManagerBudget {
    private TaskManagerBudget() {}

    static final String SETTING = TaskManagerOptions.TASK_OFF_HEAP_MEMORY.key();

    /** @param models the models this trainer subtask will hold with the new one */
    static void check(Configuration tm, TrainMemory need, int models, String what) {
        int slots = Math.max(1, tm.get(TaskManagerOptions.NUM_TASK_SLOTS));
        MemorySize offHeap = tm.get(TaskManagerOptions.TASK_OFF_HEAP_MEMORY);
        // A TaskManager started by Flink's scripts carries its computed memory sizes; a MiniCluster or a
        // test harness has none (or MemorySize.MAX_VALUE): there only the direct pool is checked.
        boolean bounded = tm.contains(TaskManagerOptions.TASK_OFF_HEAP_MEMORY) && offHeap.compareTo(MemorySize.MAX_VALUE) < 0;
        long perSlot = need.offHeapBytes() * models;
        if (bounded && offHeap.getBytes() / slots < perSlot) {
            throw new IllegalStateException(what + " needs about " + TrainMemory.flinkSize(need.offHeapBytes())
                    + " of task off-heap memory (ONNX Runtime's native memory, and " + TrainMemory.flinkSize(need.directBytes())
                    + " of JVM direct buffers for its state and crops)" + (models > 1 ? ", " + TrainMemory.flinkSize(perSlot) + " for the " + models + " models of this slot" : "")
                    + ", but this TaskManager has " + SETTING + "=" + offHeap.toHumanReadableString()
                    + " for " + slots + " slot(s): set " + SETTING + " to at least " + TrainMemory.flinkSize(perSlot * slots)
                    + " (ops/flink/dinostream.yaml)");
        }
        long available = DirectMemory.available();
        if (available < need.directBytes()) {
            throw new IllegalStateException(what + " needs " + TrainMemory.flinkSize(need.directBytes())
                    + " of JVM direct memory to load its state, but only " + TrainMemory.flinkSize(Math.max(0, available)) + " of "
                    + TrainMemory.flinkSize(DirectMemory.limit()) + " (-XX:MaxDirectMemorySize) is free: raise " + SETTING
                    + " (ops/flink/dinostream.yaml)");
        }
    }

    static final String HEAP_SETTING = TaskManagerOptions.TASK_HEAP_MEMORY.key();

    /**
     * Replay buffers are keyed state on the heap (heap state backend), each up to its byte bound. They
     * may take at most half of a slot's task heap (the rest is Flink's, the pending crops' and the
     * records'); without a declared task heap (a MiniCluster), half of this JVM's heap.
     *
     * @param models the models this trainer subtask will hold with the new one
     */
    static void checkReplay(Configuration tm, dinostream.pipeline.replay.ReplayOptions replay, int models, String what) {
        if (!replay.enabled()) return;
        int slots = Math.max(1, tm.get(TaskManagerOptions.NUM_TASK_SLOTS));
        long perSlot = replay.maxBytes() * models;
        boolean bounded = tm.contains(TaskManagerOptions.TASK_HEAP_MEMORY) && tm.get(TaskManagerOptions.TASK_HEAP_MEMORY).compareTo(MemorySize.MAX_VALUE) < 0;
        long allowed = bounded ? tm.get(TaskManagerOptions.TASK_HEAP_MEMORY).getBytes() / slots / 2 : Runtime.getRuntime().maxMemory() / 2;
        if (allowed < perSlot) {
            throw new IllegalStateException(what + ": its replay buffer may hold " + TrainMemory.flinkSize(replay.maxBytes())
                    + " of heap (--replay-bytes)" + (models > 1 ? ", " + TrainMemory.flinkSize(perSlot) + " for the " + models + " models of this slot" : "")
                    + ", more than half of the " + (bounded ? HEAP_SETTING + "=" + tm.get(TaskManagerOptions.TASK_HEAP_MEMORY).toHumanReadableString()
                    + " for " + slots + " slot(s): set " + HEAP_SETTING + " to at least " + TrainMemory.flinkSize(2 * perSlot * slots)
                    : "JVM heap (" + TrainMemory.flinkSize(Runtime.getRuntime().maxMemory()) + ", -Xmx): raise it")
                    + ", or lower --replay-bytes");
        }
    }

    /** ONNX Runtime threads of one trainer: this TaskManager's cores shared among its slots. */
    static int threadsPerSlot(Configuration tm) {
        int slots = Math.max(1, tm.get(TaskManagerOptions.NUM_TASK_SLOTS));
        return Math.max(1, Runtime.getRuntime().availableProcessors() / slots);
    }
}
