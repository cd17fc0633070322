package dinostream.pipeline.train;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Schedules;

import java.io.Serializable;

/** What the trainer operator needs to know; plain fields so the job graph can ship it. */
public class TrainerOptions implements Serializable {
    private static final long serialVersionUID = 1L;

    /** The model configuration as JSON (a preset's or a user's). */
    public String configJson;
    public int batch = 64;
    /** Seeds the initial weights and the stochastic-depth masks. */
    public long seed = 0;
    /** Schedule: "continuous" (warm-up, then constant) or "cosine" (DINO's cosine tails to a horizon). */
    public String schedule = "continuous";
    public long warmupSteps = 100;
    public long horizonSteps = 10_000;
    /** A constant teacher temperature overriding the schedule's; NaN: the schedule's. */
    public double teacherTemp = Double.NaN;
    /** Snapshot folder URI (any Flink file system); null: no snapshots. */
    public String snapshotDir;
    public int snapshotEvery = 100;
    public int snapshotKeep = 5;
    /** Send the teacher to the embedders every this many steps (and at the start); 0: never (no embedders). */
    public int broadcastEvery = 20;
    /** Steps between collapse monitors (teacher feature spread and rank, centre norm); 0: never. */
    public int monitorEvery = 10;
    /** Local folder for metrics.jsonl; null: none. */
    public String runDir;
    /** ONNX Runtime intra-op threads (0: this TaskManager's cores divided among its slots). */
    public int threads = 0;
    /** The trainer keys of the models (see ModelRouting); set by the topology. */
    public ModelRouting routing = ModelRouting.of(java.util.List.of(), 128);
    /**
     * A state (safetensors, any Flink file system URI) that new models start from instead of a
     * random initialization; null: random from {@link #seed}.
     */
    public String initState;
    /** Models one trainer subtask creates at most; images of further models are dead letters (TOO_MANY_MODELS). */
    public int maxModels = 16;
    /** Skipped steps in a row (non-finite loss or state) after which a model pauses. */
    public int maxSkippedSteps = 5;
    /** Un-pause models restored paused (a restart from a checkpoint after fixing the cause). */
    public boolean resumePausedModels = false;
    /** "cpu", "cuda" (the GPU Flink assigned, else 0) or "cuda:N". */
    public String device = "cpu";

    public DinoConfig config() {
        return DinoConfig.fromJson(configJson);
    }

    public Schedules.TrainingSchedule trainingSchedule() {
        Schedules.TrainingSchedule s = switch (schedule) {
            case "continuous" -> Schedules.TrainingSchedule.continuous(batch, warmupSteps);
            case "cosine" -> Schedules.TrainingSchedule.dino(batch, horizonSteps);
            default -> throw new IllegalArgumentException("unknown schedule '" + schedule + "' (continuous or cosine)");
        };
        return Double.isNaN(teacherTemp) ? s : s.withTeacherTemp(Schedules.Schedule.constant(teacherTemp));
    }
}
