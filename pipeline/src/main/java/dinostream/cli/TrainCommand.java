package dinostream.cli;

import dinostream.model.dino.DinoConfig;
import dinostream.pipeline.job.Checkpoints;
import dinostream.pipeline.job.DinoJob;
import dinostream.pipeline.job.JobOptions;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;

@Command(name = "train", mixinStandardHelpOptions = true,
        description = {"Train DINO continuously on a Kafka image stream and emit embeddings as it learns.",
                "Runs on a local Flink MiniCluster; the same jar runs on a cluster with `flink run`."})
final class TrainCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    KafkaOptions kafka;

    @Option(names = "--images-topic", paramLabel = "T", defaultValue = "images", description = "Topic of ImageRecords (default: ${DEFAULT-VALUE}).")
    String imagesTopic;

    @Option(names = "--embeddings-topic", paramLabel = "T", defaultValue = "embeddings", description = "Topic for EmbeddingRecords (default: ${DEFAULT-VALUE}).")
    String embeddingsTopic;

    @Option(names = "--dead-letter-topic", paramLabel = "T", defaultValue = "dead-letters", description = "Topic for DeadLetters (default: ${DEFAULT-VALUE}).")
    String deadLetterTopic;

    @Option(names = "--model-id", paramLabel = "ID", defaultValue = "default", description = "Model of records that name none (default: ${DEFAULT-VALUE}).")
    String modelId;

    @ArgGroup(exclusive = true)
    ModelOptions model;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "64", description = "Images per train step (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "Seeds the initial weights and the augmentation (default: ${DEFAULT-VALUE}).")
    long seed;

    @Mixin
    ScheduleOptions scheduleOptions;

    @Mixin
    ProbeOptions probeOptions;

    @Option(names = "--snapshot-dir", paramLabel = "URI", description = "Where snapshots go (any Flink file system; default: OUT/snapshots).")
    String snapshotDir;

    @Option(names = "--snapshot-every", paramLabel = "N", defaultValue = "100", description = "Steps between snapshots (default: ${DEFAULT-VALUE}).")
    int snapshotEvery;

    @Option(names = "--snapshot-keep", paramLabel = "N", defaultValue = "5", description = "Newest snapshots kept per model (default: ${DEFAULT-VALUE}).")
    int snapshotKeep;

    @Option(names = "--broadcast-every", paramLabel = "N", defaultValue = "20", description = "Steps between teacher updates to the embedders (default: ${DEFAULT-VALUE}).")
    int broadcastEvery;

    @Option(names = "--checkpoint-dir", paramLabel = "URI", description = "Checkpoint folder, retained on cancel (default: OUT/checkpoints).")
    String checkpointDir;

    @Option(names = "--checkpoint-interval", paramLabel = "SECONDS", defaultValue = "30", description = "Seconds between checkpoints (default: ${DEFAULT-VALUE}).")
    long checkpointSeconds;

    @Option(names = "--restore", paramLabel = "latest|PATH", description = "Resume from the newest retained checkpoint, or from a checkpoint/savepoint folder.")
    String restore;

    @Option(names = "--out", paramLabel = "DIR", defaultValue = "dinostream-out", description = "Run folder: metrics.jsonl, default snapshot and checkpoint folders (default: ${DEFAULT-VALUE}).")
    Path out;

    @Mixin
    DeliveryOptions delivery;

    @Option(names = "--no-embed", description = "Train only: no embeddings.")
    boolean noEmbed;

    @Option(names = "--parallelism", paramLabel = "N", defaultValue = "0", description = "Parallelism of decode, augment and embed (default: the cores).")
    int parallelism;

    @Option(names = "--threads", paramLabel = "T", defaultValue = "0", description = "ONNX Runtime threads of the train step (default: all cores).")
    int threads;

    @Option(names = "--device", paramLabel = "cpu|cuda|cuda:N", defaultValue = "cpu",
            description = "Train-step device; cuda takes the GPU Flink assigned (external resource 'gpu'), else 0 (default: ${DEFAULT-VALUE}).")
    String device;

    @Option(names = "--bounded", description = "Stop at the image offsets that are latest at the start (a finite run).")
    boolean bounded;

    @Override
    public Integer call() throws Exception {
        JobOptions o = options();
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(DinoJob.configuration(o));
        DinoJob.build(env, o);
        spec.commandLine().getErr().printf("training model %s (%s, batch %d) on %s/%s%s; run folder %s%n", o.modelId,
                model != null && model.config != null ? model.config : o.trainer.config().preset, o.trainer.batch,
                o.bootstrap, o.imagesTopic, o.restorePath != null ? ", restored from " + o.restorePath : "", out.toAbsolutePath());
        env.execute("dinostream train " + o.modelId);
        // A job that ended (--bounded) leaves a report of its run folder.
        Path report = out.toAbsolutePath().resolve("report.html");
        dinostream.pipeline.viz.Report.write(out.toAbsolutePath(), o.trainer.snapshotDir, report);
        spec.commandLine().getErr().println("report: " + report);
        return 0;
    }

    JobOptions options() throws Exception {
        if (batch < 2) throw usage("--batch must be at least 2, got " + batch);
        if (snapshotEvery < 1 || snapshotKeep < 1 || broadcastEvery < 1) throw usage("--snapshot-every, --snapshot-keep and --broadcast-every must be >= 1");
        if (checkpointSeconds < 1) throw usage("--checkpoint-interval must be at least 1 second");
        if (!device.matches("cpu|cuda|cuda:\\d+")) throw usage("--device must be cpu, cuda or cuda:N, got " + device);
        DinoConfig cfg = ModelOptions.resolve(model, "fmnist-tiny", spec);

        JobOptions o = new JobOptions();
        o.bootstrap = kafka.bootstrap;
        o.kafkaProperties.putAll(kafka.properties);
        o.imagesTopic = imagesTopic;
        o.embeddingsTopic = embeddingsTopic;
        o.deadLetterTopic = deadLetterTopic;
        o.modelId = modelId;
        o.groupId = "dinostream-" + modelId;
        o.exactlyOnce = delivery.exactlyOnce(spec);
        o.embed = !noEmbed;
        o.parallelism = parallelism;
        o.bounded = bounded;
        o.checkpointInterval = Duration.ofSeconds(checkpointSeconds);
        Path runDir = out.toAbsolutePath();
        o.checkpointDir = checkpointDir != null ? checkpointDir : runDir.resolve("checkpoints").toUri().toString();
        if (restore != null) {
            o.restorePath = restore.equals("latest") ? Checkpoints.latest(o.checkpointDir)
                    .orElseThrow(() -> new CliFailure("--restore latest: no completed checkpoint under " + o.checkpointDir)) : restore;
        }
        o.trainer.configJson = cfg.toJson();
        o.trainer.batch = batch;
        o.trainer.seed = seed;
        scheduleOptions.applyTo(o.trainer, spec);
        probeOptions.applyTo(o.probe, spec);
        o.trainer.snapshotDir = snapshotDir != null ? snapshotDir : runDir.resolve("snapshots").toUri().toString();
        o.trainer.snapshotEvery = snapshotEvery;
        o.trainer.snapshotKeep = snapshotKeep;
        o.trainer.broadcastEvery = broadcastEvery;
        o.trainer.runDir = runDir.toString();
        o.trainer.threads = threads;
        o.trainer.device = device;
        return o;
    }

    private ParameterException usage(String msg) {
        return new ParameterException(spec.commandLine(), msg);
    }
}
