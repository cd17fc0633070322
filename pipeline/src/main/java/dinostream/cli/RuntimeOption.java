package dinostream.cli;

import dinostream.model.runtime.RuntimeOptions;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

import java.util.Locale;

/** Where a train step's state lives between steps ({@code train}, and with the device in {@link RuntimeChoice}). */
final class RuntimeOption {
    @Option(names = "--runtime", paramLabel = "auto|host|device", defaultValue = "auto",
            description = "Where the train step's state lives between steps: device (IoBinding: kept in the device's memory, "
                    + "on a GPU it stays there, copied to the host for checkpoints and snapshots only), host (host memory; on a "
                    + "GPU copied up and back every step), auto: device on CUDA, host on the CPU (model/docs/runtime.md). "
                    + "Default: ${DEFAULT-VALUE}.")
    String runtime;

    /** The chosen runtime; a bad value is a usage error. */
    RuntimeOptions.Runtime value(CommandSpec spec) {
        try {
            return RuntimeOptions.Runtime.valueOf(runtime.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--runtime must be auto, host or device, got " + runtime);
        }
    }
}
