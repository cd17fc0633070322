package dinostream.cli;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Presets;
import dinostream.pipeline.train.TrainerOptions.Schedule;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Model.CommandSpec;

/**
 * The training schedule of a streaming run: shared by `train` and `demo`. The knobs are DINO's
 * main_dino.py options of the same names, with steps where DINO counts epochs; absent, each is
 * DINO's value, so a run without them trains as it always did.
 */
final class ScheduleOptions {
    @Option(names = "--schedule", paramLabel = "continuous|cosine", defaultValue = "continuous",
            description = "continuous: lr warm-up then constant (a stream has no end); cosine: DINO's cosine schedules to --horizon (default: ${DEFAULT-VALUE}).")
    String schedule;

    @Option(names = "--warmup-steps", paramLabel = "N", defaultValue = "100", description = "lr warm-up of the continuous schedule (default: ${DEFAULT-VALUE}).")
    long warmupSteps;

    @Option(names = "--horizon", paramLabel = "N", defaultValue = "10000",
            description = "Steps of the cosine schedule (warm-up a tenth, last layer frozen a hundredth), and of a cosine --momentum-schedule (default: ${DEFAULT-VALUE}).")
    long horizon;

    @Option(names = "--lr", paramLabel = "X", description = "Peak learning rate before the linear scaling rule lr = X · batch / 256 (default: 8e-3 for fmnist-small, from the sweep; DINO's 5e-4 otherwise).")
    Double lr;

    @Option(names = "--min-lr", paramLabel = "X", description = "Where the cosine lr ends at --horizon (--schedule cosine; default: 1e-6).")
    Double minLr;

    @Option(names = "--weight-decay", paramLabel = "X", description = "Weight decay; with --schedule cosine its start (default: 0.04).")
    Double weightDecay;

    @Option(names = "--weight-decay-end", paramLabel = "X", description = "Where the cosine weight decay ends at --horizon (--schedule cosine; default: 0.4).")
    Double weightDecayEnd;

    @Option(names = "--teacher-temp", paramLabel = "X",
            description = "Teacher temperature (after its warm-up) instead of DINO's 0.04 (e.g. 0.07 as the 'boosted' recipe; 0.1 = the student's: no sharpening).")
    Double teacherTemp;

    @Option(names = "--warmup-teacher-temp", paramLabel = "X",
            description = "Teacher temperature at step 0, linear to --teacher-temp over --warmup-teacher-temp-steps (DINO: 0.04 over 30 epochs).")
    Double warmupTeacherTemp;

    @Option(names = "--warmup-teacher-temp-steps", paramLabel = "N", description = "Steps of the teacher-temperature warm-up (default: 0, none).")
    Long warmupTeacherTempSteps;

    @Option(names = "--momentum", paramLabel = "X", description = "Teacher EMA momentum; with a cosine --momentum-schedule its start (default: 0.996).")
    Double momentum;

    @Option(names = "--momentum-schedule", paramLabel = "constant|cosine",
            description = "cosine: from --momentum to 1 at --horizon, as DINO (default: constant with --schedule continuous, cosine with cosine).")
    String momentumSchedule;

    @Option(names = "--freeze-last-layer-steps", paramLabel = "N",
            description = "The head's last layer is frozen for the first N steps (default: a tenth of --warmup-steps; with cosine a hundredth of --horizon).")
    Long freezeLastLayerSteps;

    /**
     * The schedule of a run: the options given, else the lr of the preset or --config as named
     * ({@link Presets#baseLr}; before --out-dim and the other recipe options, which clear the preset's
     * name but not what it is), else DINO's values.
     */
    Schedule toSchedule(CommandSpec spec, DinoConfig named) {
        Schedule.Kind kind;
        try {
            kind = Schedule.Kind.parse(schedule);
        } catch (IllegalArgumentException e) {
            throw usage(spec, "--schedule " + e.getMessage());
        }
        if (warmupSteps < 0 || horizon < 1) throw usage(spec, "--warmup-steps must be >= 0 and --horizon >= 1");
        if (kind == Schedule.Kind.CONTINUOUS && (minLr != null || weightDecayEnd != null)) {
            throw usage(spec, "--min-lr and --weight-decay-end are for --schedule cosine: the continuous schedule's lr and weight decay stay at their peak");
        }
        if (lr != null && !(lr > 0 && Double.isFinite(lr))) throw usage(spec, "--lr must be positive");
        if (minLr != null && !(minLr >= 0 && Double.isFinite(minLr))) throw usage(spec, "--min-lr must be >= 0");
        for (Double wd : new Double[]{weightDecay, weightDecayEnd}) {
            if (wd != null && !(wd >= 0 && Double.isFinite(wd))) throw usage(spec, "--weight-decay and --weight-decay-end must be >= 0");
        }
        if (teacherTemp != null && !(teacherTemp > 0 && Double.isFinite(teacherTemp))) throw usage(spec, "--teacher-temp must be positive");
        if (warmupTeacherTemp != null && !(warmupTeacherTemp > 0 && Double.isFinite(warmupTeacherTemp))) {
            throw usage(spec, "--warmup-teacher-temp must be positive");
        }
        if (warmupTeacherTempSteps != null && warmupTeacherTempSteps < 0) throw usage(spec, "--warmup-teacher-temp-steps must be >= 0");
        // One without the other would be a warm-up that silently does nothing.
        if ((warmupTeacherTemp == null) != (warmupTeacherTempSteps == null || warmupTeacherTempSteps == 0)) {
            throw usage(spec, "--warmup-teacher-temp X and --warmup-teacher-temp-steps N (> 0) go together");
        }
        if (momentum != null && !(momentum >= 0 && momentum <= 1)) throw usage(spec, "--momentum must be in [0, 1]");
        if (momentumSchedule != null && !momentumSchedule.equals("constant") && !momentumSchedule.equals("cosine")) {
            throw usage(spec, "--momentum-schedule must be constant or cosine, got " + momentumSchedule);
        }
        if (freezeLastLayerSteps != null && freezeLastLayerSteps < 0) throw usage(spec, "--freeze-last-layer-steps must be >= 0");

        Schedule dino = new Schedule(kind, warmupSteps, horizon, teacherTemp);
        double tt = dino.teacherTemp();
        return new Schedule(kind, warmupSteps, horizon,
                or(lr, Presets.baseLr(named)), or(minLr, dino.minLr()), or(weightDecay, dino.weightDecay()), or(weightDecayEnd, dino.weightDecayEnd()),
                tt, or(warmupTeacherTemp, tt), warmupTeacherTemp == null ? 0 : warmupTeacherTempSteps,
                or(momentum, dino.momentum()), momentumSchedule == null ? dino.momentumCosine() : momentumSchedule.equals("cosine"),
                freezeLastLayerSteps != null ? freezeLastLayerSteps : dino.freezeLastLayerSteps());
    }

    private static double or(Double given, double dino) {
        return given != null ? given : dino;
    }

    private static ParameterException usage(CommandSpec spec, String msg) {
        return new ParameterException(spec.commandLine(), msg);
    }
}
