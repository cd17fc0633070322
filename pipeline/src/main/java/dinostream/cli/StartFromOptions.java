package dinostream.cli;

import dinostream.model.dino.DinoConfig;
import dinostream.model.io.DinoState;
import dinostream.pipeline.job.Deployment;
import dinostream.pipeline.train.InitFile;
import dinostream.pipeline.train.TrainerOptions;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * What new models of `train` and `demo` start from: a file instead of random weights. The job's
 * configuration is decided here, once, from the file and the preset (see {@link InitFile}), so that
 * the augmenter, the embedders and the trainers all use the same. (Not named Init*: that prefix is
 * local-only in the job jar, and `train` runs on clusters.)
 */
final class StartFromOptions {
    @Option(names = {"--init-from", "--init-state"}, paramLabel = "URI",
            description = {"New models start from this file instead of random weights: an official DINO .pth (a full checkpoint.pth, "
                    + "or a backbone-only release file such as dino_deitsmall16_pretrain.pth) or a dinostream state (.safetensors: "
                    + "`dinostream import`, `dinostream init`, a snapshot's state.safetensors). Read where the trainers run.",
                    "The file decides the shapes it holds, the preset or --config the rest (crop sizes; the head of a backbone-only file). "
                    + "--init-state is the same option."})
    String initFrom;

    // The same options and checks as `dinostream import`.
    @Mixin
    PthImportOptions pth;

    /**
     * @param config the job's configuration: the file's shapes with the preset's rest
     * @param uri    the file as the trainers read it (a local run's path as an absolute file:// URI); null: none
     */
    record Resolved(DinoConfig config, String uri, TrainerOptions.InitImport how) {}

    /**
     * The job's configuration. Where the file is readable here (always in a local run) it is read
     * now, so that a file that does not fit is a usage error before the job starts; on a cluster a
     * file only the TaskManagers reach is checked by the trainers when they create a model.
     *
     * @param outDim --out-dim when given: a file whose head has another out_dim is refused, as its head would silently win
     */
    Resolved resolve(DinoConfig base, Deployment where, boolean sharedFileSystem, long seed, Integer outDim, CommandSpec spec) {
        TrainerOptions.InitImport how = pth.toInitImport(spec);
        if (initFrom == null) {
            if (!how.equals(TrainerOptions.InitImport.NONE)) throw usage(spec, "--heads, --arch and --checkpoint-key are for an --init-from .pth file");
            return new Resolved(base, null, how);
        }
        boolean local = where == Deployment.LOCAL;
        if (!local) Submission.requireShared("--init-from", initFrom, sharedFileSystem);
        String readHere = local && !initFrom.contains("://") ? Path.of(initFrom).toAbsolutePath().toString() : initFrom;
        String uri = local && !initFrom.contains("://") ? Path.of(readHere).toUri().toString() : initFrom;
        DinoState file;
        try {
            file = InitFile.read(readHere, how, base, seed);
        } catch (IOException e) {
            if (local) throw usage(spec, "--init-from: cannot read " + readHere + ": " + Errors.describe(e));
            spec.commandLine().getErr().println("dinostream: note: --init-from " + initFrom + " is not readable here (" + Errors.describe(e)
                    + "); the trainers check it against the configuration when they create a model");
            return new Resolved(base, uri, how);
        } catch (InitFile.InvalidInitFile e) {
            throw usage(spec, "--init-from " + e.getMessage());
        }
        DinoConfig merged;
        try {
            merged = InitFile.merge(base, file.config(), readHere);
        } catch (InitFile.InvalidInitFile e) {
            throw usage(spec, "--init-from " + e.getMessage());
        }
        if (outDim != null && merged.outDim != outDim) {
            throw usage(spec, "--out-dim " + outDim + " conflicts with --init-from " + initFrom + ", whose head has out_dim " + merged.outDim
                    + " (a file's head is its own: leave --out-dim out)");
        }
        List<String> head = InitFile.headDifferences(base, merged);
        if (!head.isEmpty()) {
            spec.commandLine().getErr().println("dinostream: note: the head is the one of --init-from " + initFrom + ": " + String.join(", ", head));
        }
        return new Resolved(merged, uri, how);
    }

    private static ParameterException usage(CommandSpec spec, String msg) {
        return new ParameterException(spec.commandLine(), msg);
    }
}
