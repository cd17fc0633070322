package dinostream.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.ParamSpec;
import dinostream.model.io.DinoState;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "init", mixinStandardHelpOptions = true,
        description = "Write a freshly initialized DINO state (student = teacher, zero optimizer state and center, step 0).")
final class InitCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    static final class Source {
        @Option(names = "--preset", paramLabel = "P", required = true,
                description = "A named configuration: test, fmnist-tiny, fmnist-small, vit-s16, vit-b16, vit-s8, vit-b8.")
        String preset;

        @Option(names = "--config", paramLabel = "CFG.json", required = true,
                description = "A configuration as JSON, with the keys of a state's config (model/docs/state-format.md, Metadata).")
        Path config;
    }

    @Option(names = "--seed", paramLabel = "N", defaultValue = "0", description = "Initialization seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--out", paramLabel = "STATE.safetensors", required = true, description = "Where to write the state.")
    Path out;

    @Option(names = "--json", description = "Print a JSON summary on stdout.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        DinoConfig cfg = source.preset != null ? ModelOptions.preset(spec, source.preset) : ModelOptions.readConfig(source.config);
        DinoState state = DinoState.init(cfg, seed);
        Files.createDirectories(out.toAbsolutePath().getParent());
        state.save(out);

        long params = ParamSpec.of(cfg).stream().mapToLong(ParamSpec::numel).sum();
        String name = cfg.preset != null ? cfg.preset : source.config.toString();
        spec.commandLine().getErr().printf("initialized %s: %,d parameters, %d tensors, seed %d -> %s%n",
                name, params, state.tensors().size(), seed, out);
        if (json) {
            ObjectNode o = Json.object();
            o.put("out", out.toString());
            o.put("preset", cfg.preset);
            o.put("seed", seed);
            o.put("parameters", params);
            o.put("tensors", state.tensors().size());
            o.put("step", state.step());
            Json.print(spec.commandLine().getOut(), o);
        }
        return 0;
    }
}
