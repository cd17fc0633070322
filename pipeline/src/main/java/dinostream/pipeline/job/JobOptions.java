package dinostream.pipeline.job;

import dinostream.model.dino.DinoConfig;
import dinostream.pipeline.augment.MultiCrop;
import dinostream.pipeline.dedup.DedupOptions;
import dinostream.pipeline.decode.DecodeFunction;
import dinostream.pipeline.embed.EmbedderOptions;
import dinostream.pipeline.probe.ProbeOptions;
import dinostream.pipeline.snapshot.Manifest;
import dinostream.pipeline.train.ModelRouting;
import dinostream.pipeline.train.TrainerOptions;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Everything the topology needs: Kafka, checkpointing, the trainer's, the embedder's and the probe's
 * settings. Immutable and checked when built; {@link Builder#build} also computes what follows from
 * the settings together (the trainer's keys, threads and teacher broadcasts, the probe's batch), so
 * that the topology only reads them.
 *
 * @param kafkaProperties      client settings passed to every Kafka client (security, sizes)
 * @param modelId              the model of records that name none
 * @param models               the models this job trains ({@code --models}); records naming another go to the dead
 *                             letters (UNKNOWN_MODEL), and each model gets its own trainer subtask where parallelism
 *                             allows. Empty: any model a record names.
 * @param deadLetterValueBytes the most bytes of an original value a dead letter keeps (the rest: its size and SHA-256)
 * @param bounded              stop at the offsets that are latest when the job starts (tests, backfills); else run forever
 * @param deployment           where the job runs: locally the job sets checkpointing itself; on a cluster the cluster's
 *                             configuration does
 * @param checkpointInterval   null on a cluster: the cluster's execution.checkpointing.interval
 * @param checkpointDir        checkpoint folder URI, retained on cancel; null on a cluster: the cluster's execution.checkpointing.dir
 * @param restorePath          a checkpoint or savepoint folder to restore from (local runs); null: start fresh
 * @param probe                the online k-NN probe on labelled images; size 0 turns it off
 * @param transactionTimeout   the broker's transaction.max.timeout.ms defaults to 15 min; the connector's 1 h default would be refused
 * @param augment              the multi-crop parameters; null: DINO's for the configuration's channels
 * @param dedup                the near-duplicate filter on the training path
 */
public record JobOptions(String bootstrap, Map<String, String> kafkaProperties, String groupId,
                         String imagesTopic, String embeddingsTopic, String deadLetterTopic,
                         boolean exactlyOnce, Duration transactionTimeout, int deadLetterValueBytes,
                         String modelId, List<String> models, boolean embed, int parallelism, boolean bounded,
                         Deployment deployment, Duration checkpointInterval, String checkpointDir, String restorePath,
                         TrainerOptions trainer, EmbedderOptions embedder, ProbeOptions probe, MultiCrop.Params augment,
                         DedupOptions dedup) {

    public JobOptions {
        if (bootstrap == null || bootstrap.isBlank()) throw new IllegalArgumentException("the Kafka bootstrap servers are required");
        for (String t : new String[]{groupId, imagesTopic, embeddingsTopic, deadLetterTopic}) {
            if (t == null || t.isBlank()) throw new IllegalArgumentException("the group id and the topics must not be empty");
        }
        kafkaProperties = Collections.unmodifiableMap(new LinkedHashMap<>(kafkaProperties));
        models = List.copyOf(models);
        checkModels(modelId, models);
        if (deadLetterValueBytes < 0) throw new IllegalArgumentException("deadLetterValueBytes must be >= 0, got " + deadLetterValueBytes);
        if (parallelism < 0) throw new IllegalArgumentException("parallelism must be >= 0, got " + parallelism);
        if (transactionTimeout == null || transactionTimeout.isNegative() || transactionTimeout.isZero()) throw new IllegalArgumentException("transactionTimeout must be positive");
        if (deployment == null) throw new IllegalArgumentException("a deployment is required (LOCAL or CLUSTER)");
        if (checkpointInterval != null && (checkpointInterval.isNegative() || checkpointInterval.isZero())) throw new IllegalArgumentException("checkpointInterval must be positive");
        if (deployment == Deployment.LOCAL && checkpointInterval == null) throw new IllegalArgumentException("a local job needs a checkpointInterval");
        if (deployment == Deployment.CLUSTER && restorePath != null) {
            throw new IllegalArgumentException("restorePath is for local runs; on a cluster Flink's client restores (flink run -s)");
        }
        if (trainer == null || embedder == null || probe == null) throw new IllegalArgumentException("trainer, embedder and probe options are required");
        // A copy: Params is mutable, the options are not.
        if (augment != null) augment = augment.copy().validate();
        if (dedup == null) throw new IllegalArgumentException("dedup options are required (DedupOptions.OFF for none)");
    }

    private static void checkModels(String modelId, List<String> models) {
        checkModelId("modelId", modelId);
        for (String m : models) checkModelId("models", m);
        if (new HashSet<>(models).size() != models.size()) throw new IllegalArgumentException("models lists a model twice: " + String.join(",", models));
    }

    private static void checkModelId(String what, String id) {
        if (id == null || !Manifest.MODEL_ID.matcher(id).matches()) {
            throw new IllegalArgumentException(what + ": '" + id + "' is not a model id (" + Manifest.MODEL_ID.pattern() + ")");
        }
    }

    /** The job's model configuration. */
    public DinoConfig config() {
        return trainer.config();
    }

    /** Whether anything reads the trainer's teachers: the embedder or the probe. */
    public boolean teachersRead() {
        return embed || probe.enabled();
    }

    public static Builder builder() {
        return new Builder();
    }

    /**
     * Today's defaults. The builder may be built again after more settings (a test's second run);
     * {@link #build} changes nothing in it.
     */
    public static final class Builder {
        private String bootstrap;
        private final Map<String, String> kafkaProperties = new LinkedHashMap<>();
        private String groupId = "dinostream";
        private String imagesTopic = "images";
        private String embeddingsTopic = "embeddings";
        private String deadLetterTopic = "dead-letters";
        private boolean exactlyOnce = true;
        private Duration transactionTimeout = Duration.ofMinutes(15);
        private int deadLetterValueBytes = DecodeFunction.DEFAULT_DEAD_LETTER_VALUE_BYTES;
        private String modelId = "default";
        private List<String> models = List.of();
        private boolean embed = true;
        private int parallelism = 0;
        private boolean bounded = false;
        private Deployment deployment = Deployment.LOCAL;
        private Duration checkpointInterval = Duration.ofSeconds(30);
        private String checkpointDir;
        private String restorePath;
        private final TrainerOptions.Builder trainer = TrainerOptions.builder();
        private final EmbedderOptions.Builder embedder = EmbedderOptions.builder();
        private final ProbeOptions.Builder probe = ProbeOptions.builder();
        private MultiCrop.Params augment;
        private DedupOptions dedup = DedupOptions.OFF;

        private Builder() {}

        public Builder bootstrap(String bootstrap) {
            this.bootstrap = bootstrap;
            return this;
        }

        public Builder kafkaProperties(Map<String, String> properties) {
            kafkaProperties.putAll(properties);
            return this;
        }

        public Builder groupId(String groupId) {
            this.groupId = groupId;
            return this;
        }

        public Builder imagesTopic(String imagesTopic) {
            this.imagesTopic = imagesTopic;
            return this;
        }

        public Builder embeddingsTopic(String embeddingsTopic) {
            this.embeddingsTopic = embeddingsTopic;
            return this;
        }

        public Builder deadLetterTopic(String deadLetterTopic) {
            this.deadLetterTopic = deadLetterTopic;
            return this;
        }

        /** The three topics {@code <prefix>-images}, {@code <prefix>-embeddings}, {@code <prefix>-dead}, and the group {@code prefix}. */
        public Builder topicPrefix(String prefix) {
            return imagesTopic(prefix + "-images").embeddingsTopic(prefix + "-embeddings").deadLetterTopic(prefix + "-dead").groupId(prefix);
        }

        public Builder exactlyOnce(boolean exactlyOnce) {
            this.exactlyOnce = exactlyOnce;
            return this;
        }

        public Builder transactionTimeout(Duration transactionTimeout) {
            this.transactionTimeout = transactionTimeout;
            return this;
        }

        public Builder deadLetterValueBytes(int deadLetterValueBytes) {
            this.deadLetterValueBytes = deadLetterValueBytes;
            return this;
        }

        public Builder modelId(String modelId) {
            this.modelId = modelId;
            return this;
        }

        public Builder models(List<String> models) {
            this.models = List.copyOf(models);
            return this;
        }

        public Builder embed(boolean embed) {
            this.embed = embed;
            return this;
        }

        public Builder parallelism(int parallelism) {
            this.parallelism = parallelism;
            return this;
        }

        public Builder bounded(boolean bounded) {
            this.bounded = bounded;
            return this;
        }

        public Builder deployment(Deployment deployment) {
            this.deployment = deployment;
            return this;
        }

        public Builder checkpointInterval(Duration checkpointInterval) {
            this.checkpointInterval = checkpointInterval;
            return this;
        }

        public Builder checkpointDir(String checkpointDir) {
            this.checkpointDir = checkpointDir;
            return this;
        }

        public Builder restorePath(String restorePath) {
            this.restorePath = restorePath;
            return this;
        }

        /**
         * A local run's folder: checkpoints, snapshots, metrics.jsonl and probe.jsonl go under it.
         * Set here, so a later {@link #checkpointDir} or snapshot folder replaces them.
         */
        public Builder runFolder(Path dir) {
            Path abs = dir.toAbsolutePath();
            checkpointDir(abs.resolve("checkpoints").toUri().toString());
            trainer.snapshotDir(abs.resolve("snapshots").toUri().toString()).runDir(abs.toString());
            return this;
        }

        /** The model the job trains, embeds with and probes. */
        public Builder model(DinoConfig config) {
            ModelConfig m = ModelConfig.of(config);
            trainer.model(m);
            embedder.model(m);
            probe.model(m);
            return this;
        }

        /** The multi-crop parameters; null: DINO's for the configuration's channels. */
        public Builder augment(MultiCrop.Params augment) {
            this.augment = augment;
            return this;
        }

        public Builder dedup(DedupOptions dedup) {
            this.dedup = dedup;
            return this;
        }

        public Builder trainer(Consumer<TrainerOptions.Builder> settings) {
            settings.accept(trainer);
            return this;
        }

        public Builder embedder(Consumer<EmbedderOptions.Builder> settings) {
            settings.accept(embedder);
            return this;
        }

        public Builder probe(Consumer<ProbeOptions.Builder> settings) {
            settings.accept(probe);
            return this;
        }

        public JobOptions build() {
            checkModels(modelId, models);   // before the routing is computed from them
            TrainerOptions t = trainer.build();
            ProbeOptions p = probe.build();
            boolean teachersRead = embed || p.enabled();
            t = t.toBuilder()
                    .routing(ModelRouting.of(models, DinoJob.TRAINER_MAX_PARALLELISM))
                    // A local MiniCluster runs one trainer on the whole machine; on a cluster 0 means the TaskManager's cores per slot.
                    .threads(deployment == Deployment.LOCAL && t.threads() == 0 ? Runtime.getRuntime().availableProcessors() : t.threads())
                    // Nobody reads teachers: no exports to pay for.
                    .broadcastEvery(teachersRead ? t.broadcastEvery() : 0)
                    // Replayed images are cropped in the trainer, as fresh ones are in the augment operator.
                    .replay(t.replay().withAugment(augment))
                    .build();
            // The probe scores the trainer's teachers: its images-seen axis and probe.jsonl are the trainer's.
            p = new ProbeOptions(t.model(), p.size(), p.everySteps(), p.k(), p.temperature(), t.batch(), t.runDir());
            return new JobOptions(bootstrap, kafkaProperties, groupId, imagesTopic, embeddingsTopic, deadLetterTopic,
                    exactlyOnce, transactionTimeout, deadLetterValueBytes, modelId, models, embed, parallelism, bounded,
                    deployment, checkpointInterval, checkpointDir, restorePath, t, embedder.build(), p, augment, dedup);
        }
    }
}
