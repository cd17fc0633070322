package dinostream.cli;

import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/** The online k-NN probe on labelled records: shared by `train` and `demo`. */
final class ProbeOptions {
    @Option(names = "--probe-size", paramLabel = "N", defaultValue = "1000",
            description = "Labelled images held per model for the online k-NN probe (half bank, half queries); 0: off (default: ${DEFAULT-VALUE}).")
    int size;

    @Option(names = "--probe-every", paramLabel = "N", defaultValue = "100", description = "Steps between probe scores (default: ${DEFAULT-VALUE}).")
    int every;

    void applyTo(dinostream.pipeline.probe.ProbeOptions.Builder p, CommandSpec spec) {
        if (size < 0 || (size > 0 && size < 20)) throw new ParameterException(spec.commandLine(), "--probe-size must be 0 (off) or at least 20");
        if (every < 1) throw new ParameterException(spec.commandLine(), "--probe-every must be at least 1");
        p.size(size).everySteps(every);
    }
}
