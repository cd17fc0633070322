package dinostream.cli;

import dinostream.pipeline.job.Deployment;
import dinostream.pipeline.job.DinoJob;
import dinostream.pipeline.job.JobOptions;
import dinostream.pipeline.records.TeacherUpdate;
import dinostream.pipeline.snapshot.SnapshotStore;
import dinostream.pipeline.snapshot.TeacherSnapshot;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.common.TopicPartition;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "embed", mixinStandardHelpOptions = true,
        description = {"Backfill: re-embed a range of the images topic with a pinned snapshot, then exit.",
                "The same range and snapshot give identical vectors."})
final class EmbedCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    KafkaOptions kafka;

    @Option(names = "--images-topic", paramLabel = "T", required = true, description = "Topic of ImageRecords.")
    String imagesTopic;

    @Option(names = "--embeddings-topic", paramLabel = "T", required = true, description = "Topic for EmbeddingRecords.")
    String embeddingsTopic;

    @Option(names = "--dead-letter-topic", paramLabel = "T", defaultValue = "dead-letters", description = "Topic for undecodable records (default: ${DEFAULT-VALUE}).")
    String deadLetterTopic;

    @Option(names = "--snapshot", paramLabel = "DIR", required = true, description = "A snapshot folder (path or URI) written by `train`.")
    String snapshot;

    @ArgGroup(exclusive = true, multiplicity = "1")
    From from;

    static final class From {
        @Option(names = "--from-offsets", paramLabel = "P:O,P:O,...", split = ",", required = true,
                description = "Start offset per partition (partitions not named start at the earliest offset).")
        String[] offsets;

        @Option(names = "--from-timestamp", paramLabel = "T", required = true, description = "Start at this time: epoch milliseconds or ISO-8601.")
        String timestamp;
    }

    @Option(names = "--to-timestamp", paramLabel = "T",
            description = "End at this time (epoch ms or ISO-8601); default: the offsets that are latest when the command starts.")
    String toTimestamp;

    @Option(names = "--batch", paramLabel = "N", defaultValue = "64", description = "Images per inference call (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--parallelism", paramLabel = "N", defaultValue = "0", description = "Parallel embedders (default: locally the cores, on a cluster its parallelism.default).")
    int parallelism;

    @Mixin
    DeliveryOptions delivery;

    @Option(names = "--out", paramLabel = "DIR", description = "Local runs: folder for the checkpoints of the run (default: dinostream-out; on a cluster the cluster's checkpointing).")
    Path out;

    @Option(names = "--shared-file-system", description = "On a cluster: a file:// checkpoint location is on a file system every process mounts at the same path.")
    boolean sharedFileSystem;

    @Override
    public Integer call() throws Exception {
        if (batch < 1) throw usage("--batch must be at least 1");
        Deployment where = Deployment.current();
        if (where == Deployment.CLUSTER && out != null) throw usage("--out is for local runs; on a cluster the backfill takes the cluster's checkpointing");
        boolean exactlyOnce = delivery.exactlyOnce(spec);
        OffsetsInitializer start = from.timestamp != null ? OffsetsInitializer.timestamp(parseTime("--from-timestamp", from.timestamp))
                : OffsetsInitializer.offsets(offsets(from.offsets), org.apache.kafka.clients.consumer.OffsetResetStrategy.EARLIEST);
        OffsetsInitializer end = toTimestamp != null ? OffsetsInitializer.timestamp(parseTime("--to-timestamp", toTimestamp))
                : OffsetsInitializer.latest();

        TeacherSnapshot t = SnapshotStore.loadTeacher(snapshot);
        boolean local = where == Deployment.LOCAL;
        JobOptions o = JobOptions.builder()
                .deployment(where)
                .bootstrap(kafka.bootstrap)
                .kafkaProperties(kafka.properties)
                .imagesTopic(imagesTopic)
                .embeddingsTopic(embeddingsTopic)
                .deadLetterTopic(deadLetterTopic)
                .groupId("dinostream-embed-" + t.manifest().modelId())
                .exactlyOnce(exactlyOnce)
                .parallelism(parallelism)
                .checkpointInterval(local ? Duration.ofSeconds(10) : null)
                .checkpointDir(local ? (out != null ? out : Path.of("dinostream-out")).toAbsolutePath().resolve("checkpoints").toUri().toString() : null)
                .model(t.manifest().dinoConfig())
                .embedder(e -> e.batch(batch))
                .build();
        TeacherUpdate pinned = new TeacherUpdate(t.manifest().modelId(), t.manifest().step(), t.manifest().modelVersion(), t.onnx());

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(DinoJob.configuration(o));
        if (where == Deployment.CLUSTER) Submission.requireClusterCheckpointing(env, sharedFileSystem);
        DinoJob.buildBackfill(env, o, pinned, start, end);
        spec.commandLine().getErr().printf("embedding %s with model %s step %d (version %s)%n",
                imagesTopic, pinned.modelId, pinned.step, pinned.version.substring(0, 12));
        Submission.run(env, "dinostream embed " + pinned.modelId, where, spec);
        if (where == Deployment.LOCAL) spec.commandLine().getErr().println("done");
        return 0;
    }

    private Map<TopicPartition, Long> offsets(String[] specs) {
        Map<TopicPartition, Long> m = new HashMap<>();
        for (String s : specs) {
            String[] po = s.split(":");
            try {
                if (po.length != 2) throw new NumberFormatException();
                m.put(new TopicPartition(imagesTopic, Integer.parseInt(po[0].trim())), Long.parseLong(po[1].trim()));
            } catch (NumberFormatException e) {
                throw usage("bad --from-offsets entry '" + s + "': expected PARTITION:OFFSET");
            }
        }
        return m;
    }

    private long parseTime(String option, String v) {
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            try {
                return Instant.parse(v).toEpochMilli();
            } catch (DateTimeParseException e2) {
                throw usage(option + " '" + v + "' is neither epoch milliseconds nor ISO-8601 (e.g. 2026-11-26T06:00:00Z)");
            }
        }
    }

    private ParameterException usage(String msg) {
        return new ParameterException(spec.commandLine(), msg);
    }
}
