package dinostream.pipeline.embed;

import dinostream.model.dino.DinoConfig;
import dinostream.pipeline.job.ModelConfig;

import java.io.Serializable;

/**
 * Settings of the embedding operator: immutable, checked when built, serializable for the job graph.
 *
 * @param model           the model configuration (input size, channels, mean/std)
 * @param batch           images per ONNX Runtime call
 * @param maxDelayMs      a partial batch is embedded after this long so a slow stream still gets its vectors
 * @param maxWaitingBytes pixels held for models that have no teacher yet, at most (per subtask); the oldest beyond it
 *                        become dead letters (NO_TEACHER). A new model's teacher comes with its first train step, so
 *                        only a stalled or refused model fills this.
 * @param threads         ONNX Runtime intra-op threads per subtask (0: all cores)
 */
public record EmbedderOptions(ModelConfig model, int batch, long maxDelayMs, long maxWaitingBytes, int threads) implements Serializable {
    private static final long serialVersionUID = 2L;

    public EmbedderOptions {
        if (model == null) throw new IllegalArgumentException("embedder: a model configuration is required");
        if (batch < 1) throw new IllegalArgumentException("embedder: batch must be at least 1, got " + batch);
        if (maxDelayMs < 0 || maxWaitingBytes < 0 || threads < 0) {
            throw new IllegalArgumentException("embedder: maxDelayMs, maxWaitingBytes and threads must be >= 0");
        }
    }

    public DinoConfig config() {
        return model.get();
    }

    public static Builder builder() {
        return new Builder();
    }

    public static final class Builder {
        private ModelConfig model;
        private int batch = 32;
        private long maxDelayMs = 200;
        private long maxWaitingBytes = 64L << 20;
        private int threads = 1;

        private Builder() {}

        public Builder model(DinoConfig config) {
            return model(ModelConfig.of(config));
        }

        public Builder model(ModelConfig model) {
            this.model = model;
            return this;
        }

        public Builder batch(int batch) {
            this.batch = batch;
            return this;
        }

        public Builder maxDelayMs(long maxDelayMs) {
            this.maxDelayMs = maxDelayMs;
            return this;
        }

        public Builder maxWaitingBytes(long maxWaitingBytes) {
            this.maxWaitingBytes = maxWaitingBytes;
            return this;
        }

        public Builder threads(int threads) {
            this.threads = threads;
            return this;
        }

        public EmbedderOptions build() {
            return new EmbedderOptions(model, batch, maxDelayMs, maxWaitingBytes, threads);
        }
    }
}
