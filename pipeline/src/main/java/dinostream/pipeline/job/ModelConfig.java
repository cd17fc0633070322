package dinostream.pipeline.job;

import dinostream.model.dino.DinoConfig;

import java.io.Serializable;

/**
 * A model configuration inside the options Flink ships to operators. {@link DinoConfig} is neither
 * serializable nor immutable, so this holds its JSON and hands out a fresh copy on each read.
 */
public final class ModelConfig implements Serializable {
    private static final long serialVersionUID = 1L;
    private final String json;

    private ModelConfig(String json) {
        this.json = json;
    }

    public static ModelConfig of(DinoConfig config) {
        if (config == null) throw new IllegalArgumentException("a model configuration is required");
        return new ModelConfig(config.toJson());
    }

    /** A copy of the configuration: changing it changes no options. */
    public DinoConfig get() {
        return DinoConfig.fromJson(json);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ModelConfig m && m.json.equals(json);
    }

    @Override
    public int hashCode() {
        return json.hashCode();
    }

    @Override
    public String toString() {
        return json;
    }
}
