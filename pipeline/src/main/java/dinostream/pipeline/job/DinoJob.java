package dinostream.pipeline.job;

import dinostream.model.dino.DinoConfig;
import dinostream.pipeline.augment.AugmentFunction;
import dinostream.pipeline.decode.DecodeFunction;
import dinostream.pipeline.decode.Limits;
import dinostream.pipeline.dedup.DedupFunction;
import dinostream.pipeline.embed.EmbedderOperator;
import dinostream.pipeline.probe.ProbeOperator;
import dinostream.pipeline.probe.ProbeResult;
import dinostream.pipeline.records.CropSet;
import dinostream.pipeline.records.DecodedImage;
import dinostream.pipeline.records.KafkaImage;
import dinostream.pipeline.records.TeacherUpdate;
import dinostream.pipeline.train.DinoTrainerOperator;
import dinostream.pipeline.train.ModelRouting;
import dinostream.pipeline.train.TrainerOptions;
import dinostream.schemas.DeadLetter;
import dinostream.schemas.EmbeddingRecord;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ExternalizedCheckpointRetention;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.consumer.OffsetResetStrategy;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Properties;

/**
 * The dinostream topology, as in README.md ("The data path"):
 * <pre>
 * Kafka images ─► decode + validate ──bad──► Kafka dead letters
 *                   ├─► [keyBy(source bucket) ─► drop near-duplicates] ─► multi-crop augment
 *                   │         ─► keyBy(modelId) ─► DinoTrainer (+ replay buffer) ─► teachers (broadcast) ─┐
 *                   ├─► Embedder (latest teacher per model) ◄──────────────────────────────────────────┤
 *                   │          └─► Kafka embeddings                                                    │
 *                   └─► labelled images ─► k-NN probe ◄───────────────────────────────────────────────┘
 * </pre>
 */
public final class DinoJob {
    private DinoJob() {}

    /** The trainer's key groups: fixed, because the --models keys are computed for them (ModelRouting). */
    public static final int TRAINER_MAX_PARALLELISM = 128;

    /**
     * Flink settings of the job. Locally: checkpoints on (unaligned, retained), heap state, restore,
     * loopback listeners. On a cluster, checkpointing, state backend, restart strategy and retention
     * are the cluster's (ops/flink/dinostream.yaml); only what the user asked for explicitly is set.
     */
    public static Configuration configuration(JobOptions o) {
        Configuration conf = new Configuration();
        if (o.deployment() == Deployment.CLUSTER) {
            if (o.checkpointInterval() != null) conf.set(CheckpointingOptions.CHECKPOINTING_INTERVAL, o.checkpointInterval());
            if (o.checkpointDir() != null) conf.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, o.checkpointDir());
            return conf;
        }
        conf.set(StateBackendOptions.STATE_BACKEND, "hashmap");
        conf.set(CheckpointingOptions.CHECKPOINTING_INTERVAL, o.checkpointInterval());
        // A train step holds its input for a while: aligned barriers would queue behind it.
        conf.set(CheckpointingOptions.ENABLE_UNALIGNED, true);
        conf.set(CheckpointingOptions.EXTERNALIZED_CHECKPOINT_RETENTION, ExternalizedCheckpointRetention.RETAIN_ON_CANCELLATION);
        if (o.checkpointDir() != null) conf.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, o.checkpointDir());
        if (o.restorePath() != null) conf.set(StateRecoveryOptions.SAVEPOINT_PATH, o.restorePath());
        // Bounded restarts: with checkpointing Flink's default retries forever, and a persistent
        // failure would loop without end instead of ending the job with its cause.
        conf.set(org.apache.flink.configuration.RestartStrategyOptions.RESTART_STRATEGY, "fixed-delay");
        conf.set(org.apache.flink.configuration.RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_ATTEMPTS, 10);
        conf.set(org.apache.flink.configuration.RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_DELAY, Duration.ofSeconds(5));
        // A local MiniCluster listens on loopback only (on a cluster these come from its own configuration).
        conf.set(org.apache.flink.configuration.JobManagerOptions.BIND_HOST, "127.0.0.1");
        conf.set(org.apache.flink.configuration.JobManagerOptions.ADDRESS, "127.0.0.1");
        conf.set(org.apache.flink.configuration.TaskManagerOptions.BIND_HOST, "127.0.0.1");
        conf.set(org.apache.flink.configuration.TaskManagerOptions.HOST, "127.0.0.1");
        conf.set(org.apache.flink.configuration.RestOptions.BIND_ADDRESS, "127.0.0.1");
        conf.set(org.apache.flink.configuration.RestOptions.ADDRESS, "127.0.0.1");
        return conf;
    }

    /** The job's name: what it trains, as the Flink UI and metrics show it. */
    public static String trainJobName(JobOptions o) {
        return "dinostream train " + (o.models().isEmpty() ? "(any model; unnamed: " + o.modelId() + ")" : String.join(",", o.models()));
    }

    /** Adds the topology to {@code env}; the caller executes it. Reads {@code o}, whose derived values are already set. */
    public static void build(StreamExecutionEnvironment env, JobOptions o) {
        DinoConfig config = o.config();
        TrainerOptions trainer = o.trainer();
        ModelRouting routing = trainer.routing();
        if (o.parallelism() > 0) env.setParallelism(o.parallelism());

        DataStream<KafkaImage> records = env.fromSource(imagesSource(o), WatermarkStrategy.noWatermarks(), "kafka: " + o.imagesTopic())
                .uid("images-source");

        SingleOutputStreamOperator<DecodedImage> images = records
                .process(new DecodeFunction(o.modelId(), config.inChans, Limits.DEFAULT, o.models(), o.deadLetterValueBytes()))
                .name("decode + validate").uid("decode");

        DataStream<DecodedImage> toTrain = images;
        if (o.dedup().enabled()) {
            toTrain = images.keyBy(DedupFunction::bucketOf)
                    .process(new DedupFunction(o.dedup())).name("drop near-duplicate frames").uid("dedup");
        }

        SingleOutputStreamOperator<CropSet> crops = toTrain
                .map(new AugmentFunction(config.toJson(), trainer.seed(), o.augment(), trainer.replay().enabled()))
                .name("multi-crop augment").uid("augment");

        SingleOutputStreamOperator<TeacherUpdate> teachers = crops
                .keyBy(c -> routing.keyOf(c.modelId))
                .transform("DinoTrainer", TypeInformation.of(TeacherUpdate.class), new DinoTrainerOperator(trainer))
                .uid("trainer")
                .setMaxParallelism(TRAINER_MAX_PARALLELISM);
        // One trainer subtask per listed model (ModelRouting spreads them); else the job's parallelism.
        if (!o.models().isEmpty()) teachers.setParallelism(o.models().size());

        // Dead letters from decode (bad records), the trainer (models over --max-models) and the embedder (no teacher).
        DataStream<DeadLetter> deadLetters = images.getSideOutput(DecodeFunction.DEAD_LETTERS)
                .union(teachers.getSideOutput(DinoTrainerOperator.DEAD_LETTERS));
        if (o.embed()) {
            SingleOutputStreamOperator<EmbeddingRecord> embeddings = images.connect(teachers.broadcast())
                    .transform("Embedder", TypeInformation.of(EmbeddingRecord.class), new EmbedderOperator(o.embedder()))
                    .uid("embedder");
            embeddings.sinkTo(kafkaSink(o, o.embeddingsTopic(), EmbeddingRecord.class, EmbeddingRecord::getImageId))
                    .name("kafka: " + o.embeddingsTopic()).uid("embeddings-sink");
            deadLetters = deadLetters.union(embeddings.getSideOutput(EmbedderOperator.DEAD_LETTERS));
        }
        deadLetters.sinkTo(kafkaSink(o, o.deadLetterTopic(), DeadLetter.class, d -> d.getTopic() + "/" + d.getPartition() + "/" + d.getOffset()))
                .name("kafka: " + o.deadLetterTopic()).uid("dead-letters-sink");
        if (o.probe().enabled()) {
            images.filter(i -> i.label != null).name("labelled images")
                    .connect(teachers.broadcast())
                    .transform("k-NN probe", TypeInformation.of(ProbeResult.class), new ProbeOperator(o.probe()))
                    .setParallelism(1).uid("probe")
                    .sinkTo(new org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink<>()).name("k-NN probe scores");
        }
        if (!o.teachersRead()) {
            teachers.sinkTo(new org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink<>()).name("teachers (unused)");
        }
    }

    /**
     * A bounded backfill: re-embeds a range of the images topic with one pinned teacher and ends
     * when the range is done. Nothing trains; the teacher input holds that one model.
     */
    public static void buildBackfill(StreamExecutionEnvironment env, JobOptions o, TeacherUpdate pinned,
                                     OffsetsInitializer from, OffsetsInitializer to) {
        DinoConfig config = o.embedder().config();
        if (o.parallelism() > 0) env.setParallelism(o.parallelism());
        KafkaSource<KafkaImage> source = KafkaSource.<KafkaImage>builder()
                .setBootstrapServers(o.bootstrap())
                .setTopics(o.imagesTopic())
                .setGroupId(o.groupId())
                .setStartingOffsets(from)
                .setBounded(to)
                .setDeserializer(new KafkaImageDeserializer())
                .setProperties(kafkaProperties(o))
                .build();
        // Every image is embedded with the pinned model, whatever modelId it names.
        String modelId = pinned.modelId;
        SingleOutputStreamOperator<DecodedImage> images = env.fromSource(source, WatermarkStrategy.noWatermarks(), "kafka: " + o.imagesTopic())
                .process(new DecodeFunction(pinned.modelId, config.inChans, Limits.DEFAULT, java.util.List.of(), o.deadLetterValueBytes()))
                .name("decode + validate")
                .map(i -> {
                    i.modelId = modelId;
                    return i;
                }).returns(DecodedImage.class).name("pin model");
        images.connect(env.fromData(pinned).broadcast())
                .transform("Embedder", TypeInformation.of(EmbeddingRecord.class), new EmbedderOperator(o.embedder()))
                .sinkTo(kafkaSink(o, o.embeddingsTopic(), EmbeddingRecord.class, EmbeddingRecord::getImageId))
                .name("kafka: " + o.embeddingsTopic());
    }

    static KafkaSource<KafkaImage> imagesSource(JobOptions o) {
        var b = KafkaSource.<KafkaImage>builder()
                .setBootstrapServers(o.bootstrap())
                .setTopics(o.imagesTopic())
                .setGroupId(o.groupId())
                // Resume at the group's committed offsets; a new group starts at the beginning of the log.
                .setStartingOffsets(OffsetsInitializer.committedOffsets(OffsetResetStrategy.EARLIEST))
                .setDeserializer(new KafkaImageDeserializer())
                .setProperties(kafkaProperties(o));
        if (o.bounded()) b.setBounded(OffsetsInitializer.latest());
        return b.build();
    }

    /** A Kafka sink of Avro records, exactly-once (transactions committed on checkpoints) unless told otherwise. */
    static <T extends org.apache.avro.specific.SpecificRecord> KafkaSink<T> kafkaSink(
            JobOptions o, String topic, Class<T> type, KeyOf<T> key) {
        Properties p = kafkaProperties(o);
        p.setProperty("transaction.timeout.ms", Long.toString(o.transactionTimeout().toMillis()));
        return KafkaSink.<T>builder()
                .setBootstrapServers(o.bootstrap())
                .setKafkaProducerConfig(p)
                .setDeliveryGuarantee(o.exactlyOnce() ? DeliveryGuarantee.EXACTLY_ONCE : DeliveryGuarantee.AT_LEAST_ONCE)
                .setTransactionalIdPrefix(o.groupId() + "-" + topic)
                .setRecordSerializer(KafkaRecordSerializationSchema.<T>builder()
                        .setTopic(topic)
                        .setKeySerializationSchema(e -> key.of(e).getBytes(StandardCharsets.UTF_8))
                        .setValueSerializationSchema(new AvroValueSerializer<>(type))
                        .build())
                .build();
    }

    /** The record key of a sink: a serializable function. */
    public interface KeyOf<T> extends java.io.Serializable {
        String of(T t);
    }

    static Properties kafkaProperties(JobOptions o) {
        Properties p = new Properties();
        o.kafkaProperties().forEach(p::setProperty);
        return p;
    }
}
