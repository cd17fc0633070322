package dinostream.pipeline.train;

import dinostream.model.runtime.RuntimeOptions;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Schedules;
import dinostream.pipeline.job.DinoJob;
import dinostream.pipeline.job.ModelConfig;
import dinostream.pipeline.replay.ReplayOptions;

import java.io.Serializable;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static dinostream.model.dino.Schedules.TrainingSchedule.BASE_LR;
import static dinostream.model.dino.Schedules.TrainingSchedule.MIN_LR;
import static dinostream.model.dino.Schedules.TrainingSchedule.MOMENTUM;
import static dinostream.model.dino.Schedules.TrainingSchedule.TEACHER_TEMP;
import static dinostream.model.dino.Schedules.TrainingSchedule.WEIGHT_DECAY;
import static dinostream.model.dino.Schedules.TrainingSchedule.WEIGHT_DECAY_END;

/**
 * What the trainer operator needs to know: immutable and checked when built, serializable because
 * the job graph ships it.
 *
 * @param model              the model configuration (a preset's or a user's)
 * @param seed               seeds the initial weights and the stochastic-depth masks
 * @param snapshotDir        snapshot folder URI (any Flink file system); null: no snapshots
 * @param broadcastEvery     send the teacher to the embedders every this many steps (and at the start); 0: never (no embedders)
 * @param monitorEvery       steps between collapse monitors (teacher feature spread and rank, centre norm); 0: never
 * @param runDir             local folder for metrics.jsonl; null: none
 * @param threads            ONNX Runtime intra-op threads (0: this TaskManager's cores divided among its slots)
 * @param routing            the trainer keys of the models (see ModelRouting)
 * @param initState          a file (any Flink file system URI) that new models start from: our safetensors state, or an
 *                           official DINO .pth (full checkpoint or backbone-only release file); null: random from the seed
 * @param initImport         how a .pth initState is read (heads, arch, checkpoint key); {@link InitImport#NONE} for the file's own rules
 * @param maxModels          models one trainer subtask creates at most; images of further models are dead letters (TOO_MANY_MODELS)
 * @param maxSkippedSteps    skipped steps in a row (non-finite loss or state) after which a model pauses
 * @param resumePausedModels un-pause models restored paused (a restart from a checkpoint after fixing the cause)
 * @param replay             each model's replay buffer (size 0: none)
 * @param runtime            where the train step's state lives between steps (model/docs/runtime.md); AUTO: the device decides
 */
public record TrainerOptions(ModelConfig model, int batch, long seed, Schedule schedule,
                             String snapshotDir, int snapshotEvery, int snapshotKeep, int broadcastEvery, int monitorEvery,
                             String runDir, int threads, Device device, ModelRouting routing, String initState,
                             InitImport initImport, int maxModels, int maxSkippedSteps, boolean resumePausedModels,
                             ReplayOptions replay, RuntimeOptions.Runtime runtime) implements Serializable {
    private static final long serialVersionUID = 5L;

    public TrainerOptions {
        if (model == null) throw new IllegalArgumentException("trainer: a model configuration is required");
        if (batch < 2) throw new IllegalArgumentException("trainer: batch must be at least 2, got " + batch);
        if (snapshotEvery < 1 || snapshotKeep < 1) throw new IllegalArgumentException("trainer: snapshotEvery and snapshotKeep must be >= 1");
        if (broadcastEvery < 0 || monitorEvery < 0 || threads < 0) {
            throw new IllegalArgumentException("trainer: broadcastEvery, monitorEvery and threads must be >= 0");
        }
        if (maxModels < 1) throw new IllegalArgumentException("trainer: maxModels must be at least 1, got " + maxModels);
        if (maxSkippedSteps < 1) throw new IllegalArgumentException("trainer: maxSkippedSteps must be at least 1, got " + maxSkippedSteps);
        if (schedule == null || device == null || routing == null || runtime == null) {
            throw new IllegalArgumentException("trainer: schedule, device, routing and runtime are required");
        }
        if (initImport == null) throw new IllegalArgumentException("trainer: initImport is required (InitImport.NONE for none)");
        if (replay == null) throw new IllegalArgumentException("trainer: replay options are required (ReplayOptions.NONE for none)");
        if (initState == null && !initImport.equals(InitImport.NONE)) {
            throw new IllegalArgumentException("trainer: heads, arch and checkpoint key are for an init file, and there is none");
        }
    }

    public DinoConfig config() {
        return model.get();
    }

    public Schedules.TrainingSchedule trainingSchedule() {
        return schedule.of(batch);
    }

    public static Builder builder() {
        return new Builder();
    }

    public Builder toBuilder() {
        Builder b = new Builder();
        b.model = model;
        b.batch = batch;
        b.seed = seed;
        b.schedule = schedule;
        b.snapshotDir = snapshotDir;
        b.snapshotEvery = snapshotEvery;
        b.snapshotKeep = snapshotKeep;
        b.broadcastEvery = broadcastEvery;
        b.monitorEvery = monitorEvery;
        b.runDir = runDir;
        b.threads = threads;
        b.device = device;
        b.routing = routing;
        b.initState = initState;
        b.initImport = initImport;
        b.maxModels = maxModels;
        b.maxSkippedSteps = maxSkippedSteps;
        b.resumePausedModels = resumePausedModels;
        b.replay = replay;
        b.runtime = runtime;
        return b;
    }

    /**
     * The learning-rate, weight-decay, teacher-temperature and momentum schedules by name: continuous
     * (warm-up, then constant: a stream has no end) or cosine (DINO's cosine tails to a horizon), with
     * DINO's knobs (its main_dino.py options of the same names). The short constructor takes DINO's
     * values for the rest, so a schedule named only by kind is the one it always was.
     *
     * @param baseLr                 peak lr before the linear scaling rule (lr = baseLr · batch / 256)
     * @param minLr                  where the cosine lr ends (unused by continuous)
     * @param weightDecayEnd         where the cosine weight decay ends (unused by continuous: constant weightDecay)
     * @param teacherTemp            the teacher temperature after its warm-up
     * @param warmupTeacherTemp      the teacher temperature at step 0, linear to teacherTemp over warmupTeacherTempSteps
     * @param momentumCosine         EMA momentum cosine from momentum to 1 at the horizon; else constant
     * @param freezeLastLayerSteps   the head's last layer is frozen for the first this many steps
     */
    public record Schedule(Kind kind, long warmupSteps, long horizonSteps, double baseLr, double minLr,
                           double weightDecay, double weightDecayEnd, double teacherTemp, double warmupTeacherTemp,
                           long warmupTeacherTempSteps, double momentum, boolean momentumCosine,
                           long freezeLastLayerSteps) implements Serializable {
        private static final long serialVersionUID = 2L;
        public static final Schedule DEFAULT = new Schedule(Kind.CONTINUOUS, 100, 10_000, null);

        public enum Kind {
            CONTINUOUS, COSINE;

            /** "continuous" or "cosine". */
            public static Kind parse(String name) {
                for (Kind k : values()) if (k.toString().equals(name)) return k;
                throw new IllegalArgumentException("must be continuous or cosine, got " + name);
            }

            @Override
            public String toString() {
                return name().toLowerCase(java.util.Locale.ROOT);
            }
        }

        /** DINO's values for all but the kind, its lengths and (null: DINO's 0.04) a constant teacher temperature. */
        public Schedule(Kind kind, long warmupSteps, long horizonSteps, Double teacherTemp) {
            this(kind, warmupSteps, horizonSteps, BASE_LR, MIN_LR, WEIGHT_DECAY, WEIGHT_DECAY_END,
                    teacherTemp == null ? TEACHER_TEMP : teacherTemp, teacherTemp == null ? TEACHER_TEMP : teacherTemp, 0,
                    MOMENTUM, kind == Kind.COSINE, defaultFreezeSteps(kind, warmupSteps, horizonSteps));
        }

        public Schedule {
            if (kind == null) throw new IllegalArgumentException("schedule: a kind is required (continuous or cosine)");
            if (warmupSteps < 0 || horizonSteps < 1) throw new IllegalArgumentException("schedule: warmupSteps must be >= 0 and horizonSteps >= 1");
            if (!(baseLr > 0 && Double.isFinite(baseLr))) throw new IllegalArgumentException("schedule: baseLr must be finite and > 0, got " + baseLr);
            if (!(minLr >= 0 && Double.isFinite(minLr))) throw new IllegalArgumentException("schedule: minLr must be finite and >= 0, got " + minLr);
            if (!(weightDecay >= 0 && Double.isFinite(weightDecay)) || !(weightDecayEnd >= 0 && Double.isFinite(weightDecayEnd))) {
                throw new IllegalArgumentException("schedule: weight decays must be finite and >= 0");
            }
            // 0 is allowed: the fault-injection tests make every step non-finite with it.
            if (!(teacherTemp >= 0 && Double.isFinite(teacherTemp))) throw new IllegalArgumentException("schedule: teacherTemp must be finite and >= 0, got " + teacherTemp);
            if (!(warmupTeacherTemp >= 0 && Double.isFinite(warmupTeacherTemp))) {
                throw new IllegalArgumentException("schedule: warmupTeacherTemp must be finite and >= 0, got " + warmupTeacherTemp);
            }
            if (warmupTeacherTempSteps < 0) throw new IllegalArgumentException("schedule: warmupTeacherTempSteps must be >= 0");
            if (!(momentum >= 0 && momentum <= 1)) throw new IllegalArgumentException("schedule: momentum must be in [0, 1], got " + momentum);
            if (freezeLastLayerSteps < 0) throw new IllegalArgumentException("schedule: freezeLastLayerSteps must be >= 0");
        }

        /** Freezing as DINO's 1 epoch of its 10 warm-up epochs: a tenth of the continuous warm-up, a hundredth of the cosine horizon. */
        public static long defaultFreezeSteps(Kind kind, long warmupSteps, long horizonSteps) {
            return kind == Kind.CONTINUOUS ? warmupSteps / 10 : horizonSteps / 100;
        }

        /** A constant teacher temperature (no warm-up); null: DINO's 0.04. */
        public Schedule withTeacherTemp(Double t) {
            double v = t == null ? TEACHER_TEMP : t;
            return new Schedule(kind, warmupSteps, horizonSteps, baseLr, minLr, weightDecay, weightDecayEnd, v, v, 0,
                    momentum, momentumCosine, freezeLastLayerSteps);
        }

        /** The schedules of a run with {@code batch} images a step (the lr scaled by it). */
        public Schedules.TrainingSchedule of(int batch) {
            // DINO's cosine recipe warms the lr up over a tenth of its length (10 of 100 epochs).
            Schedules.Schedule lr = kind == Kind.CONTINUOUS
                    ? Schedules.lrConstant(baseLr, batch, warmupSteps)
                    : Schedules.lr(baseLr, batch, minLr, horizonSteps / 10, horizonSteps);
            Schedules.Schedule wd = kind == Kind.CONTINUOUS
                    ? Schedules.Schedule.constant(weightDecay)
                    : Schedules.weightDecay(weightDecay, weightDecayEnd, horizonSteps);
            return new Schedules.TrainingSchedule(lr, wd,
                    Schedules.teacherTemp(warmupTeacherTemp, teacherTemp, warmupTeacherTempSteps),
                    momentumCosine ? Schedules.momentum(momentum, horizonSteps) : Schedules.Schedule.constant(momentum),
                    freezeLastLayerSteps);
        }
    }

    /**
     * How an official .pth init file is read ({@code dinostream import}'s options of the same names).
     *
     * @param heads         attention heads; null: from the file's {@code args.arch} or {@code arch}
     * @param arch          vit_tiny, vit_small or vit_base for a file that does not say (a backbone-only one); null: none
     * @param checkpointKey the dict entry holding the weights; null: the file's own rules
     */
    public record InitImport(Integer heads, String arch, String checkpointKey) implements Serializable {
        private static final long serialVersionUID = 1L;
        public static final InitImport NONE = new InitImport(null, null, null);

        public InitImport {
            if (heads != null && heads < 1) throw new IllegalArgumentException("init file: heads must be at least 1, got " + heads);
            if (arch != null && arch.isBlank()) throw new IllegalArgumentException("init file: arch must not be empty");
            if (checkpointKey != null && checkpointKey.isBlank()) throw new IllegalArgumentException("init file: checkpoint key must not be empty");
        }
    }

    /**
     * Where the train step runs: the CPU, the GPU Flink assigned to the task ({@code cuda}: external
     * resource 'gpu', else 0), or a fixed one ({@code cuda:N}).
     *
     * @param index the fixed GPU; {@link #ASSIGNED} for the one Flink assigned
     */
    public record Device(boolean cuda, int index) implements Serializable {
        private static final long serialVersionUID = 1L;
        public static final int ASSIGNED = -1;
        public static final Device CPU = new Device(false, ASSIGNED);
        private static final Pattern CUDA_N = Pattern.compile("cuda:(\\d{1,9})");

        public Device {
            if (index < ASSIGNED || (!cuda && index != ASSIGNED)) throw new IllegalArgumentException("device: no GPU index " + index);
        }

        /** "cpu", "cuda" or "cuda:N". */
        public static Device parse(String s) {
            if ("cpu".equals(s)) return CPU;
            if ("cuda".equals(s)) return new Device(true, ASSIGNED);
            Matcher m = s == null ? null : CUDA_N.matcher(s);
            if (m != null && m.matches()) return new Device(true, Integer.parseInt(m.group(1)));
            throw new IllegalArgumentException("must be cpu, cuda or cuda:N, got " + s);
        }

        @Override
        public String toString() {
            return !cuda ? "cpu" : index == ASSIGNED ? "cuda" : "cuda:" + index;
        }
    }

    /** Today's defaults; {@link #build} checks the values. */
    public static final class Builder {
        private ModelConfig model;
        private int batch = 64;
        private long seed = 0;
        private Schedule schedule = Schedule.DEFAULT;
        private String snapshotDir;
        private int snapshotEvery = 100;
        private int snapshotKeep = 5;
        private int broadcastEvery = 20;
        private int monitorEvery = 10;
        private String runDir;
        private int threads = 0;
        private Device device = Device.CPU;
        private ModelRouting routing = ModelRouting.of(List.of(), DinoJob.TRAINER_MAX_PARALLELISM);
        private String initState;
        private InitImport initImport = InitImport.NONE;
        private int maxModels = 16;
        private int maxSkippedSteps = 5;
        private boolean resumePausedModels = false;
        private ReplayOptions replay = ReplayOptions.NONE;
        private RuntimeOptions.Runtime runtime = RuntimeOptions.Runtime.AUTO;

        private Builder() {}

        public Builder model(DinoConfig config) {
            return model(ModelConfig.of(config));
        }

        public Builder model(ModelConfig model) {
            this.model = model;
            return this;
        }

        public Builder batch(int batch) {
            this.batch = batch;
            return this;
        }

        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        public Builder schedule(Schedule schedule) {
            this.schedule = schedule;
            return this;
        }

        /** A constant teacher temperature on the current schedule; null: the schedule's. */
        public Builder teacherTemp(Double teacherTemp) {
            this.schedule = schedule.withTeacherTemp(teacherTemp);
            return this;
        }

        public Builder snapshotDir(String snapshotDir) {
            this.snapshotDir = snapshotDir;
            return this;
        }

        public Builder snapshotEvery(int snapshotEvery) {
            this.snapshotEvery = snapshotEvery;
            return this;
        }

        public Builder snapshotKeep(int snapshotKeep) {
            this.snapshotKeep = snapshotKeep;
            return this;
        }

        public Builder broadcastEvery(int broadcastEvery) {
            this.broadcastEvery = broadcastEvery;
            return this;
        }

        public Builder monitorEvery(int monitorEvery) {
            this.monitorEvery = monitorEvery;
            return this;
        }

        public Builder runDir(String runDir) {
            this.runDir = runDir;
            return this;
        }

        public Builder threads(int threads) {
            this.threads = threads;
            return this;
        }

        public Builder device(Device device) {
            this.device = device;
            return this;
        }

        public Builder runtime(RuntimeOptions.Runtime runtime) {
            this.runtime = runtime;
            return this;
        }

        public Builder routing(ModelRouting routing) {
            this.routing = routing;
            return this;
        }

        public Builder initState(String initState) {
            this.initState = initState;
            return this;
        }

        public Builder initImport(InitImport initImport) {
            this.initImport = initImport;
            return this;
        }

        public Builder maxModels(int maxModels) {
            this.maxModels = maxModels;
            return this;
        }

        public Builder maxSkippedSteps(int maxSkippedSteps) {
            this.maxSkippedSteps = maxSkippedSteps;
            return this;
        }

        public Builder resumePausedModels(boolean resumePausedModels) {
            this.resumePausedModels = resumePausedModels;
            return this;
        }

        public Builder replay(ReplayOptions replay) {
            this.replay = replay;
            return this;
        }

        public TrainerOptions build() {
            return new TrainerOptions(model, batch, seed, schedule, snapshotDir, snapshotEvery, snapshotKeep, broadcastEvery,
                    monitorEvery, runDir, threads, device, routing, initState, initImport, maxModels, maxSkippedSteps, resumePausedModels, replay,
                    runtime);
        }
    }
}
