package dinostream.cli;

import dinostream.model.dino.DinoConfig;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/** The train step's precision, over what the preset or --config says (model/docs/algorithm.md §5, "Mixed precision"). */
final class PrecisionOption {
    @Option(names = "--precision", paramLabel = "fp32|bf16|fp16",
            description = "Precision of the train step's matrix products: fp32, or bf16 (on CPU emulated: float32 products on "
                    + "bf16-rounded operands); fp16 is not implemented yet. Weights, optimizer state, snapshots and exports stay "
                    + "float32. Default: the configuration's (fp32).")
    String precision;

    /**
     * {@code config} with the option's precision (the configuration's own when the option is absent);
     * an unknown value, or fp16 from either, is a usage error before any job starts.
     */
    DinoConfig apply(DinoConfig config, CommandSpec spec) {
        DinoConfig c = config;
        if (precision != null) {
            try {
                c = config.copy().precision(DinoConfig.Precision.of(precision));
            } catch (IllegalArgumentException e) {
                throw new ParameterException(spec.commandLine(), "--precision: " + e.getMessage());
            }
        }
        if (c.precision() == DinoConfig.Precision.FP16) {
            throw new ParameterException(spec.commandLine(), "precision fp16 (with loss scaling) is not implemented yet; use fp32 or bf16");
        }
        return c;
    }
}
