package dinostream.cli;

import dinostream.pipeline.train.TrainerOptions.Schedule;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Model.CommandSpec;

/** The training schedule of a streaming run: shared by `train` and `demo`. */
final class ScheduleOptions {
    @Option(names = "--schedule", paramLabel = "continuous|cosine", defaultValue = "continuous",
            description = "continuous: lr warm-up then constant (a stream has no end); cosine: DINO's cosine schedules to --horizon (default: ${DEFAULT-VALUE}).")
    String schedule;

    @Option(names = "--warmup-steps", paramLabel = "N", defaultValue = "100", description = "lr warm-up of the continuous schedule (default: ${DEFAULT-VALUE}).")
    long warmupSteps;

    @Option(names = "--horizon", paramLabel = "N", defaultValue = "10000",
            description = "Steps of the cosine schedule (warm-up a tenth, last layer frozen a hundredth) (default: ${DEFAULT-VALUE}).")
    long horizon;

    @Option(names = "--teacher-temp", paramLabel = "X",
            description = "A constant teacher temperature instead of DINO's 0.04 (e.g. 0.07 as the 'boosted' recipe; 0.1 = the student's: no sharpening).")
    Double teacherTemp;

    Schedule toSchedule(CommandSpec spec) {
        Schedule.Kind kind;
        try {
            kind = Schedule.Kind.parse(schedule);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--schedule " + e.getMessage());
        }
        if (warmupSteps < 0 || horizon < 1) throw new ParameterException(spec.commandLine(), "--warmup-steps must be >= 0 and --horizon >= 1");
        if (teacherTemp != null && !(teacherTemp > 0)) throw new ParameterException(spec.commandLine(), "--teacher-temp must be positive");
        return new Schedule(kind, warmupSteps, horizon, teacherTemp);
    }
}
