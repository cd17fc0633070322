package dinostream.cli;

import dinostream.model.dino.DinoConfig;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/** The train step's precision, over what the preset or --config says (model/docs/algorithm.md §5, "Mixed precision"). */
final class PrecisionOption {
    @Option(names = "--precision", paramLabel = "fp32|bf16|fp16",
            description = "Precision of the train step's matrix products: fp32, bf16, or fp16 with dynamic loss scaling "
                    + "(torch's GradScaler: a step whose fp16 gradients overflow is skipped and halves the scale). On CPU bf16 "
                    + "and fp16 are emulated: float32 products on rounded operands, for their numbers, not their speed. Weights, "
                    + "optimizer state, snapshots and exports stay float32. Default: the configuration's (fp32).")
    String precision;

    /** {@code config} with the option's precision (the configuration's own when the option is absent); an unknown value is a usage error. */
    DinoConfig apply(DinoConfig config, CommandSpec spec) {
        if (precision == null) return config;
        try {
            return config.copy().precision(DinoConfig.Precision.of(precision));
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--precision: " + e.getMessage());
        }
    }
}
