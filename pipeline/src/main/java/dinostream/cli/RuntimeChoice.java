package dinostream.cli;

import dinostream.model.runtime.RuntimeOptions;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/** Where a command's train step runs: the device, and where its state lives between steps (model/docs/runtime.md). */
final class RuntimeChoice {
    @Option(names = "--device", paramLabel = "cpu|cuda|cuda:N", defaultValue = "cpu",
            description = "Execution provider: the CPU, or CUDA on GPU N (cuda: 0). CUDA needs the jar built with -Pgpu "
                    + "and the CUDA 13 libraries on the library path (ops/gpu/README.md). Default: ${DEFAULT-VALUE}.")
    String device;

    @Mixin
    RuntimeOption runtime;

    /** {@code base} on the chosen device and runtime; a bad value is a usage error. */
    RuntimeOptions apply(RuntimeOptions base, CommandSpec spec) {
        RuntimeOptions r = base;
        if (device.equals("cuda")) r = r.onCuda(0);
        else if (device.matches("cuda:\\d{1,9}")) r = r.onCuda(Integer.parseInt(device.substring(5)));
        else if (!device.equals("cpu")) throw new ParameterException(spec.commandLine(), "--device must be cpu, cuda or cuda:N, got " + device);
        return r.withRuntime(runtime.value(spec));
    }
}
