package dinostream.cli;

import dinostream.model.dino.DinoConfig;
import dinostream.pipeline.augment.MultiCrop;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/**
 * What a learning experiment varies besides the schedule, over the preset's or --config's values:
 * the head's output size and the multi-crop. Shared by `train` and `demo`.
 */
final class RecipeOptions {
    @Option(names = "--out-dim", paramLabel = "N", description = "Prototypes of the DINO head (the configuration's out_dim; fmnist presets 4096).")
    Integer outDim;

    @Option(names = "--local-crops", paramLabel = "N", description = "Local crops per image (the configuration's n_local; 0: global crops only).")
    Integer localCrops;

    @Option(names = "--local-size", paramLabel = "S", description = "Side of the local crops in pixels, a multiple of the patch (the configuration's local_size).")
    Integer localSize;

    @Option(names = "--global-scale", paramLabel = "MIN,MAX", description = "Area fraction range of the global crops (default: 0.4,1.0).")
    String globalScale;

    @Option(names = "--local-scale", paramLabel = "MIN,MAX", description = "Area fraction range of the local crops (default: 0.05,0.4).")
    String localScale;

    /** {@code config} with the options' shapes; one that no graph can be built for is a usage error. */
    DinoConfig apply(DinoConfig config, CommandSpec spec) {
        if (outDim == null && localCrops == null && localSize == null) return config;
        DinoConfig c = config.copy();
        if (outDim != null) c.outDim = outDim;
        if (localCrops != null) c.nLocal = localCrops;
        if (localSize != null) c.localSize = localSize;
        // A preset's name no longer describes a configuration with other shapes (as InitFile.merge does for a head).
        c.preset = null;
        try {
            return c.validate();
        } catch (IllegalArgumentException e) {
            throw usage(spec, "--out-dim, --local-crops, --local-size: " + e.getMessage());
        }
    }

    /** The augmentation for {@code config}'s channels with the options' scales; null when neither is given (the job's default). */
    MultiCrop.Params augment(DinoConfig config, CommandSpec spec) {
        if (globalScale == null && localScale == null) return null;
        MultiCrop.Params p = MultiCrop.Params.forChannels(config.inChans).copy();
        if (globalScale != null) {
            double[] r = range(spec, "--global-scale", globalScale);
            p.globalScaleMin = r[0];
            p.globalScaleMax = r[1];
        }
        if (localScale != null) {
            double[] r = range(spec, "--local-scale", localScale);
            p.localScaleMin = r[0];
            p.localScaleMax = r[1];
        }
        try {
            return p.validate();
        } catch (IllegalArgumentException e) {
            throw usage(spec, "--global-scale, --local-scale: " + e.getMessage());
        }
    }

    private static double[] range(CommandSpec spec, String option, String text) {
        String[] f = text.split(",", -1);
        try {
            if (f.length == 2) {
                double lo = Double.parseDouble(f[0].trim()), hi = Double.parseDouble(f[1].trim());
                if (lo > 0 && lo <= hi && hi <= 1) return new double[]{lo, hi};
            }
        } catch (NumberFormatException e) {
            // the message below says what is expected
        }
        throw usage(spec, option + " must be MIN,MAX with 0 < MIN <= MAX <= 1, got '" + text + "'");
    }

    private static ParameterException usage(CommandSpec spec, String msg) {
        return new ParameterException(spec.commandLine(), msg);
    }
}
