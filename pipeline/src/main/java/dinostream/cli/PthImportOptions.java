package dinostream.cli;

import dinostream.pipeline.train.TrainerOptions;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/**
 * How to read an official DINO .pth: what the file does not store (its heads) and which network to
 * take. One declaration for `import` and for `train`/`demo --init-from`, so both accept and check the
 * same values.
 */
final class PthImportOptions {
    @Option(names = "--heads", paramLabel = "N",
            description = "Attention heads of the .pth (not stored in any .pth); default: from --arch, else the file's args.arch or the preset's.")
    Integer heads;

    @Option(names = "--arch", paramLabel = "A",
            description = "vit_tiny, vit_small or vit_base: sets the heads of the .pth (3, 6, 12).")
    String arch;

    @Option(names = "--checkpoint-key", paramLabel = "K",
            description = "Take only this network's backbone of a full checkpoint (teacher, student), as eval_knn.py's --checkpoint_key.")
    String checkpointKey;

    /** The checked values; a bad one is a usage error naming the option. */
    TrainerOptions.InitImport toInitImport(CommandSpec spec) {
        if (arch != null && !arch.matches("vit_(tiny|small|base)")) {
            throw new ParameterException(spec.commandLine(), "--arch must be vit_tiny, vit_small or vit_base, got '" + arch + "'");
        }
        try {
            return new TrainerOptions.InitImport(heads, arch, checkpointKey);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--heads, --arch, --checkpoint-key: " + e.getMessage());
        }
    }
}
