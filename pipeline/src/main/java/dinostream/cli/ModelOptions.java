package dinostream.cli;

import dinostream.model.dino.DinoConfig;
import picocli.CommandLine.Model.CommandSpec;
import dinostream.model.dino.Presets;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

import java.nio.file.Files;
import java.nio.file.Path;

/** Which model a streaming command trains: a preset or a configuration file (exclusive). */
final class ModelOptions {
    @Option(names = "--preset", paramLabel = "P", description = "test, fmnist-tiny, fmnist-small, vit-s16, vit-b16, vit-s8, vit-b8.")
    String preset;

    @Option(names = "--config", paramLabel = "CFG.json", description = "A configuration as JSON (the reference's Cfg field names).")
    Path config;

    static DinoConfig resolve(ModelOptions m, String defaultPreset, CommandSpec spec) throws Exception {
        if (m != null && m.config != null) return readConfig(m.config);
        return preset(spec, m != null && m.preset != null ? m.preset : defaultPreset);
    }

    /** A preset by name; an unknown name is a usage error (exit 2) listing the known ones. */
    static DinoConfig preset(CommandSpec spec, String name) {
        try {
            return Presets.get(name);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
    }

    static DinoConfig readConfig(Path file) throws Exception {
        String text = Files.readString(file);
        try {
            return DinoConfig.fromJson(text);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }
}
