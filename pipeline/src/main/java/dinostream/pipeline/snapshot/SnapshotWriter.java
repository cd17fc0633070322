package dinostream.pipeline.snapshot;

import dinostream.model.export.InferenceExport;
import dinostream.model.io.DinoState;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Writes snapshots on a thread of its own, so that training and checkpoint barriers never wait for
 * the state's serialization, the ONNX export, hashing and the file system. It is handed the state
 * bytes a completed checkpoint holds (the same array, not a copy). Per model the newest wins: a
 * snapshot still waiting when a newer one comes is dropped, so at most one being written and one
 * waiting are held per model. A failed write is logged and counted; the next one tries again.
 */
public final class SnapshotWriter implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(SnapshotWriter.class);

    /** A snapshot to write: a model's checkpointed state and what the manifest says of it. */
    public record Pending(String modelId, long step, byte[] stateBytes, SnapshotInfo info) {}

    private final SnapshotStore store;
    private final ExecutorService thread;
    private final Map<String, Pending> waiting = new ConcurrentHashMap<>();
    private final AtomicLong written = new AtomicLong(), failed = new AtomicLong();

    public SnapshotWriter(SnapshotStore store) {
        this.store = store;
        this.thread = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "dinostream-snapshot-writer");
            t.setDaemon(true);
            return t;
        });
    }

    /** Queues a snapshot; returns at once. */
    public void submit(Pending p) {
        if (waiting.put(p.modelId(), p) == null) thread.execute(() -> write(p.modelId()));
    }

    private void write(String modelId) {
        Pending p = waiting.remove(modelId);
        if (p == null) return;
        try {
            DinoState state = DinoState.fromBytes(p.stateBytes(), "checkpointed state of model " + modelId);
            SnapshotRef ref = store.write(modelId, state, p.info(), InferenceExport.backboneModel(state));
            written.incrementAndGet();
            LOG.info("model {}: snapshot of step {} written: {}", modelId, p.step(), ref.uri());
        } catch (Exception | OutOfMemoryError e) {
            failed.incrementAndGet();
            LOG.error("model {}: the snapshot of step {} could not be written (the next one will try again): {}", modelId, p.step(), e.toString(), e);
        }
    }

    public long written() {
        return written.get();
    }

    public long failed() {
        return failed.get();
    }

    /** Writes what is queued (up to {@code timeoutSeconds}), then stops. */
    public void close(long timeoutSeconds) throws InterruptedException {
        thread.shutdown();
        if (!thread.awaitTermination(timeoutSeconds, TimeUnit.SECONDS)) {
            LOG.warn("snapshots still being written after {} s are abandoned", timeoutSeconds);
            thread.shutdownNow();
        }
    }

    @Override
    public void close() throws InterruptedException {
        close(120);
    }
}
