package dinostream.cli;

import dinostream.model.dino.DinoConfig;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** Which model a streaming command trains: a preset or a configuration file (exclusive). */
final class ModelOptions {
    @Option(names = "--preset", paramLabel = "P", description = "test, fmnist-tiny, fmnist-small, vit-s16, vit-b16.")
    String preset;

    @Option(names = "--config", paramLabel = "CFG.json", description = "A configuration as JSON (the reference's Cfg field names).")
    Path config;

    static DinoConfig resolve(ModelOptions m, String defaultPreset, CommandSpec spec) throws Exception {
        if (m != null && m.config != null) return InitCommand.readConfig(m.config);
        return InitCommand.preset(spec, m != null && m.preset != null ? m.preset : defaultPreset);
    }
}
