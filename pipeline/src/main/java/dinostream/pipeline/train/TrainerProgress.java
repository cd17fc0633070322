package dinostream.pipeline.train;

/** Per-model counters kept in keyed state beside the weights (a Flink POJO). */
public class TrainerProgress {
    /** Fresh images trained on, each counted once (replayed ones are in replayedImages). */
    public long imagesSeen;
    /** Images offered to the replay buffer so far: the reservoir's counter (added later: older checkpoints restore 0). */
    public long replayOffered;
    /** Images taken from the replay buffer into batches, counted each time. */
    public long replayedImages;
    /** Images not kept for replay because they are larger than a slot's share of the byte bound. */
    public long replayOversize;
    /** Next offset to read per "topic-partition", as of the last trained image, as JSON. */
    public String offsetsJson = "{}";
    public long lastSnapshotStep = -1;
    /** Steps refused for a non-finite loss or state, in all, and in a row since the last good one. */
    public long skippedSteps;
    public int consecutiveSkips;
    /** Paused after too many skipped steps in a row: no training until a restart with --resume-paused-models. */
    public boolean paused;
    /**
     * The state's step when this job created the model (0 from random weights, the file's step with
     * --init-from). Schedules count from here, so a model continued from a converged checkpoint warms
     * up again instead of jumping to the peak learning rate; added later, so older checkpoints restore 0.
     */
    public long scheduleOrigin;

    public TrainerProgress() {}
}
