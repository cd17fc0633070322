package dinostream.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.ParamSpec;
import dinostream.model.io.DinoState;
import dinostream.model.io.OfficialCheckpoint;
import dinostream.pipeline.train.TrainerOptions;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "import", mixinStandardHelpOptions = true,
        description = {"Turn an official DINO .pth file into a state (model/docs/state-format.md, \"Official DINO checkpoints\"):",
                "a main_dino.py checkpoint (student, teacher, AdamW moments and steps, centre) or a backbone-only",
                "release file such as dino_deitsmall16_pretrain.pth (both backbones from the file, a fresh head)."})
final class ImportCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--checkpoint", paramLabel = "FILE.pth", required = true, description = "The official file.")
    Path checkpoint;

    @Mixin
    PthImportOptions pth;

    @ArgGroup(exclusive = true)
    ModelOptions model;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "0", description = "Seed of a fresh head (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--out", paramLabel = "STATE.safetensors", required = true, description = "Where to write the state.")
    Path out;

    @Option(names = "--json", description = "Print a JSON summary on stdout.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        TrainerOptions.InitImport how = pth.toInitImport(spec);
        // No preset by default: a full checkpoint holds its configuration; a backbone-only file asks for one.
        DinoConfig base = model == null ? null : ModelOptions.resolve(model, null, spec);
        DinoState state;
        try {
            state = OfficialCheckpoint.read(checkpoint, new OfficialCheckpoint.Options(how.heads(), how.arch(), how.checkpointKey(), seed, base));
        } catch (FileSystemException e) {
            throw e;
        } catch (IOException e) {
            // The file layer's refusals (not a torch file, truncated, foreign classes) are already one line.
            throw new CliFailure(e.getMessage() != null ? e.getMessage() : checkpoint + ": unreadable", e);
        }
        Path parent = out.toAbsolutePath().getParent();
        if (parent != null) Files.createDirectories(parent);
        state.save(out);

        DinoConfig c = state.config();
        long params = ParamSpec.of(c).stream().mapToLong(ParamSpec::numel).sum();
        spec.commandLine().getErr().printf("imported %s: dim %d, depth %d, heads %d, patch %d, out_dim %d, step %d, %,d parameters -> %s%n",
                checkpoint, c.dim, c.depth, c.heads, c.patch, c.outDim, state.step(), params, out);
        if (json) {
            ObjectNode o = Json.object();
            o.put("out", out.toString());
            o.put("preset", c.preset);
            o.put("step", state.step());
            o.put("parameters", params);
            o.put("tensors", state.tensors().size());
            o.set("config", Json.MAPPER.readTree(c.toJson()));
            Json.print(spec.commandLine().getOut(), o);
        }
        return 0;
    }
}
