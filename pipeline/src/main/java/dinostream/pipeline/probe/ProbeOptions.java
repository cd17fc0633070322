package dinostream.pipeline.probe;

import dinostream.model.dino.DinoConfig;
import dinostream.pipeline.job.ModelConfig;

import java.io.Serializable;

/**
 * Settings of the online k-NN probe: immutable, checked when built, serializable for the job graph.
 *
 * @param size        labelled images held per model; 0: no probe
 * @param everySteps  minimum steps between two scores of one model
 * @param batch       images per train step, to put the scores on an images-seen axis
 * @param runDir      local folder for probe.jsonl; null: none
 */
public record ProbeOptions(ModelConfig model, int size, int everySteps, int k, double temperature, int batch, String runDir)
        implements Serializable {
    private static final long serialVersionUID = 1L;

    public ProbeOptions {
        if (model == null) throw new IllegalArgumentException("probe: a model configuration is required");
        // Half the images are the bank, half the queries: fewer than 20 gives no meaningful score.
        if (size < 0 || (size > 0 && size < 20)) throw new IllegalArgumentException("probe: size must be 0 (off) or at least 20, got " + size);
        if (everySteps < 1 || k < 1 || batch < 1) throw new IllegalArgumentException("probe: everySteps, k and batch must be at least 1");
        if (!(temperature > 0)) throw new IllegalArgumentException("probe: temperature must be positive, got " + temperature);
    }

    public boolean enabled() {
        return size > 0;
    }

    public DinoConfig config() {
        return model.get();
    }

    public static Builder builder() {
        return new Builder();
    }

    public static final class Builder {
        private ModelConfig model;
        private int size = 1000;
        private int everySteps = 100;
        private int k = 20;
        private double temperature = 0.07;
        private int batch = 64;
        private String runDir;

        private Builder() {}

        public Builder model(DinoConfig config) {
            return model(ModelConfig.of(config));
        }

        public Builder model(ModelConfig model) {
            this.model = model;
            return this;
        }

        public Builder size(int size) {
            this.size = size;
            return this;
        }

        public Builder everySteps(int everySteps) {
            this.everySteps = everySteps;
            return this;
        }

        public Builder k(int k) {
            this.k = k;
            return this;
        }

        public Builder temperature(double temperature) {
            this.temperature = temperature;
            return this;
        }

        public Builder batch(int batch) {
            this.batch = batch;
            return this;
        }

        public Builder runDir(String runDir) {
            this.runDir = runDir;
            return this;
        }

        public ProbeOptions build() {
            return new ProbeOptions(model, size, everySteps, k, temperature, batch, runDir);
        }
    }
}
