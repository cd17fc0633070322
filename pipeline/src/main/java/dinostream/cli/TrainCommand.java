package dinostream.cli;

import dinostream.model.runtime.RuntimeOptions;

import dinostream.model.dino.DinoConfig;
import dinostream.pipeline.job.Checkpoints;
import dinostream.pipeline.job.Deployment;
import dinostream.pipeline.job.DinoJob;
import dinostream.pipeline.snapshot.Manifest;
import dinostream.pipeline.job.JobOptions;
import dinostream.pipeline.train.TrainerOptions;
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
                "Runs on a local Flink MiniCluster; submitted by Flink's client (flink run, REST) it runs on that cluster,",
                "with the cluster's checkpointing, state backend and restart strategy (ops/flink/dinostream.yaml)."})
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

    @Option(names = "--dead-letter-max-bytes", paramLabel = "N", defaultValue = "524288",
            description = "Bytes of an original value a dead letter keeps; it also carries the original size and SHA-256 (default: ${DEFAULT-VALUE}, under a default producer's 1 MiB max.request.size).")
    int deadLetterMaxBytes;

    @Option(names = "--model-id", paramLabel = "ID", defaultValue = "default", description = "Model of records that name none (default: ${DEFAULT-VALUE}).")
    String modelId;

    @Option(names = "--models", paramLabel = "A,B,...", split = ",",
            description = {"The models this job trains, each on a trainer subtask of its own; records naming another go to the dead letters (UNKNOWN_MODEL).",
                    "Keep the list (and its order) for the job's life: the models' state is keyed by it. Default: any model a record names."})
    java.util.List<String> models = new java.util.ArrayList<>();

    @ArgGroup(exclusive = true)
    ModelOptions model;

    @Mixin
    PrecisionOption precision;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "64", description = "Images per train step (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "Seeds the initial weights and the augmentation (default: ${DEFAULT-VALUE}).")
    long seed;

    @Mixin
    StartFromOptions startFrom;

    @Option(names = "--max-models", paramLabel = "N", defaultValue = "16",
            description = "Models one trainer subtask creates at most (each holds its weights, teacher and optimizer state); images of further models are dead letters, TOO_MANY_MODELS (default: ${DEFAULT-VALUE}).")
    int maxModels;

    @Option(names = "--max-skipped-steps", paramLabel = "K", defaultValue = "5",
            description = "A step with a non-finite loss or state is skipped (the model stays as before); after K in a row the model pauses (default: ${DEFAULT-VALUE}).")
    int maxSkippedSteps;

    @Option(names = "--resume-paused-models", description = "Restored models that were paused after skipped steps train again.")
    boolean resumePausedModels;

    @Mixin
    ScheduleOptions scheduleOptions;

    @Mixin
    RecipeOptions recipe;

    @Mixin
    ProbeOptions probeOptions;

    @Mixin
    CorrelatedStreamOptions correlated;

    @Option(names = "--snapshot-dir", paramLabel = "URI", description = "Where snapshots go (any Flink file system; locally default OUT/snapshots; required on a cluster).")
    String snapshotDir;

    @Option(names = "--snapshot-every", paramLabel = "N", defaultValue = "100", description = "Steps between snapshots (default: ${DEFAULT-VALUE}).")
    int snapshotEvery;

    @Option(names = "--snapshot-keep", paramLabel = "N", defaultValue = "5", description = "Newest snapshots kept per model (default: ${DEFAULT-VALUE}).")
    int snapshotKeep;

    @Option(names = "--broadcast-every", paramLabel = "N", defaultValue = "20", description = "Steps between teacher updates to the embedders (default: ${DEFAULT-VALUE}).")
    int broadcastEvery;

    @Option(names = "--checkpoint-dir", paramLabel = "URI", description = "Checkpoint folder, retained on cancel (locally default OUT/checkpoints; on a cluster the cluster's execution.checkpointing.dir).")
    String checkpointDir;

    @Option(names = "--checkpoint-interval", paramLabel = "SECONDS", description = "Seconds between checkpoints (locally default 30; on a cluster the cluster's execution.checkpointing.interval).")
    Long checkpointSeconds;

    @Option(names = "--shared-file-system", description = "On a cluster: file:// locations are on a file system every JobManager and TaskManager mounts at the same path (NFS).")
    boolean sharedFileSystem;

    @Option(names = "--keep-checkpoints", paramLabel = "K", defaultValue = "1",
            description = "Local runs: once this run has completed a checkpoint, the checkpoint folders of earlier runs but the newest K are removed (default: ${DEFAULT-VALUE}).")
    int keepCheckpoints;

    @Option(names = "--restore", paramLabel = "latest|PATH", description = "Local runs: resume from the newest retained checkpoint, or from a checkpoint/savepoint folder (on a cluster: flink run -s PATH).")
    String restore;

    @Option(names = "--out", paramLabel = "DIR", description = "Local runs: the run folder (metrics.jsonl, probe.jsonl, report.html, default snapshot and checkpoint folders) (default: dinostream-out).")
    Path out;

    @Mixin
    DeliveryOptions delivery;

    @Option(names = "--no-embed", description = "Train only: no embeddings.")
    boolean noEmbed;

    @Option(names = "--parallelism", paramLabel = "N", defaultValue = "0", description = "Parallelism of decode, augment and embed (default: locally the cores, on a cluster its parallelism.default).")
    int parallelism;

    @Option(names = "--threads", paramLabel = "T", defaultValue = "0", description = "ONNX Runtime threads of the train step (default: locally all cores, on a cluster the TaskManager's cores / its slots).")
    int threads;

    @Option(names = "--device", paramLabel = "cpu|cuda|cuda:N", defaultValue = "cpu",
            description = "Train-step device; cuda takes the GPU Flink assigned (external resource 'gpu'), else 0 (default: ${DEFAULT-VALUE}).")
    String device;

    @picocli.CommandLine.Mixin
    RuntimeOption runtime;

    @Option(names = "--bounded", description = "Stop at the image offsets that are latest at the start (a finite run).")
    boolean bounded;

    @Override
    public Integer call() throws Exception {
        Deployment where = Deployment.current();
        JobOptions o = options(where);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(DinoJob.configuration(o));
        if (where == Deployment.CLUSTER) Submission.requireClusterCheckpointing(env, sharedFileSystem);
        DinoJob.build(env, o);
        if (o.restorePath() == null) warnIfTheGroupHasOffsets(o, where);
        if (where == Deployment.LOCAL) env.registerJobListener(new LocalCheckpointCleanup(o.checkpointDir(), keepCheckpoints, spec.commandLine().getErr()));
        String name = DinoJob.trainJobName(o);
        spec.commandLine().getErr().printf("%s (%s, batch %d%s) on %s/%s%s%s%n", name,
                model != null && model.config != null ? model.config : o.config().preset != null ? o.config().preset : "custom", o.trainer().batch(),
                o.trainer().initState() != null ? ", new models from " + o.trainer().initState() : "",
                o.bootstrap(), o.imagesTopic(), o.restorePath() != null ? ", restored from " + o.restorePath() : "",
                where == Deployment.LOCAL ? "; run folder " + runDir() : "; snapshots " + o.trainer().snapshotDir());
        // The settings a result came from, beside it.
        if (where == Deployment.LOCAL) RunSettings.write(runDir(), "train", spec, o, null);
        Submission.run(env, name, where, spec);
        // A local job that ended (--bounded) leaves a report of its run folder.
        if (where == Deployment.LOCAL) LocalRun.report(runDir(), o.trainer().snapshotDir(), spec.commandLine().getErr());
        return 0;
    }

    /**
     * The source resumes at the consumer group's committed offsets. Without a restore, the models
     * start anew there: the images before those offsets are not trained on again. Said loudly,
     * because it looks like a resumed run and is not.
     */
    private void warnIfTheGroupHasOffsets(JobOptions o, Deployment where) {
        java.util.Properties p = new java.util.Properties();
        p.putAll(o.kafkaProperties());
        p.put("bootstrap.servers", o.bootstrap());
        p.put("request.timeout.ms", "10000");
        p.put("default.api.timeout.ms", "10000");
        try (var admin = org.apache.kafka.clients.admin.Admin.create(p)) {
            var offsets = admin.listConsumerGroupOffsets(o.groupId()).partitionsToOffsetAndMetadata()
                    .get(15, java.util.concurrent.TimeUnit.SECONDS);
            java.util.List<String> committed = new java.util.ArrayList<>();
            offsets.forEach((tp, om) -> {
                if (om != null && tp.topic().equals(o.imagesTopic())) committed.add(tp.partition() + ":" + om.offset());
            });
            if (committed.isEmpty()) return;
            java.util.Collections.sort(committed);
            spec.commandLine().getErr().println("dinostream: warning: consumer group " + o.groupId() + " has committed offsets on "
                    + o.imagesTopic() + " (" + String.join(", ", committed) + "): this run starts NEW models at those offsets, and the images "
                    + "before them are not trained on again. To continue the models of the earlier run instead, "
                    + (where == Deployment.LOCAL ? "add --restore latest" : "submit with flink run -s <its checkpoint or savepoint>") + ".");
        } catch (Exception e) {
            // No answer (broker down, no rights to describe groups): the job itself reports a broker it cannot reach.
        }
    }

    private Path runDir() {
        return (out != null ? out : Path.of("dinostream-out")).toAbsolutePath();
    }

    JobOptions options(Deployment where) throws Exception {
        if (batch < 2) throw usage("--batch must be at least 2, got " + batch);
        if (snapshotEvery < 1 || snapshotKeep < 1 || broadcastEvery < 1) throw usage("--snapshot-every, --snapshot-keep and --broadcast-every must be >= 1");
        if (checkpointSeconds != null && checkpointSeconds < 1) throw usage("--checkpoint-interval must be at least 1 second");
        if (parallelism < 0 || threads < 0) throw usage("--parallelism and --threads must be >= 0");
        if (keepCheckpoints < 0) throw usage("--keep-checkpoints must be >= 0");
        if (!Manifest.MODEL_ID.matcher(modelId).matches()) throw usage("--model-id: '" + modelId + "' is not a model id (" + Manifest.MODEL_ID.pattern() + ")");
        for (String m : models) {
            if (!Manifest.MODEL_ID.matcher(m).matches()) throw usage("--models: '" + m + "' is not a model id (" + Manifest.MODEL_ID.pattern() + ")");
        }
        if (new java.util.HashSet<>(models).size() != models.size()) throw usage("--models lists a model twice: " + String.join(",", models));
        boolean local = where == Deployment.LOCAL;
        if (!local) {
            if (restore != null) throw usage("--restore is for local runs; on a cluster resume with Flink's own: flink run -s <checkpoint or savepoint path> ...");
            if (out != null) throw usage("--out is for local runs; on a cluster the job's record is Flink's metrics and the snapshots under --snapshot-dir");
            if (snapshotDir == null) throw usage("--snapshot-dir URI is required on a cluster (s3://..., hdfs://..., or file:// with --shared-file-system)");
            Submission.requireShared("--snapshot-dir", snapshotDir, sharedFileSystem);
            if (checkpointDir != null) Submission.requireShared("--checkpoint-dir", checkpointDir, sharedFileSystem);
        }
        TrainerOptions.Device dev;
        try {
            dev = TrainerOptions.Device.parse(device);
        } catch (IllegalArgumentException e) {
            throw usage("--device " + e.getMessage());
        }
        RuntimeOptions.Runtime stateRuntime = runtime.value(spec);
        if (deadLetterMaxBytes < 0) throw usage("--dead-letter-max-bytes must be >= 0");
        if (maxSkippedSteps < 1) throw usage("--max-skipped-steps must be at least 1");
        if (maxModels < 1) throw usage("--max-models must be at least 1");
        // Last: it may read a large file.
        DinoConfig named = ModelOptions.resolve(model, "fmnist-tiny", spec);
        StartFromOptions.Resolved start = startFrom.resolve(recipe.apply(precision.apply(named, spec), spec),
                where, sharedFileSystem, seed, recipe.outDim, spec);
        DinoConfig cfg = start.config();

        JobOptions.Builder b = JobOptions.builder()
                .deployment(where)
                .bootstrap(kafka.bootstrap)
                .kafkaProperties(kafka.properties)
                .imagesTopic(imagesTopic)
                .embeddingsTopic(embeddingsTopic)
                .deadLetterTopic(deadLetterTopic)
                .deadLetterValueBytes(deadLetterMaxBytes)
                .modelId(modelId)
                .models(models)
                .groupId("dinostream-" + modelId)
                .exactlyOnce(delivery.exactlyOnce(spec))
                .embed(!noEmbed)
                .parallelism(parallelism)
                .bounded(bounded)
                .model(cfg)
                .augment(recipe.augment(cfg, spec))
                .trainer(t -> t.batch(batch).seed(seed).maxSkippedSteps(maxSkippedSteps).maxModels(maxModels)
                        .resumePausedModels(resumePausedModels).initState(start.uri()).initImport(start.how()).schedule(scheduleOptions.toSchedule(spec, named))
                        .snapshotEvery(snapshotEvery).snapshotKeep(snapshotKeep).broadcastEvery(broadcastEvery)
                        .threads(threads).device(dev).runtime(stateRuntime))
                .probe(p -> probeOptions.applyTo(p, spec));
        correlated.applyTo(b, spec);

        // The run folder's files (metrics.jsonl, probe.jsonl) are local: on a cluster each TaskManager would write its own.
        if (local) b.runFolder(runDir());
        b.checkpointInterval(checkpointSeconds != null ? Duration.ofSeconds(checkpointSeconds) : local ? Duration.ofSeconds(30) : null);
        if (checkpointDir != null) b.checkpointDir(checkpointDir);
        if (snapshotDir != null) b.trainer(t -> t.snapshotDir(snapshotDir));
        JobOptions o = b.build();
        if (restore == null) return o;
        return b.restorePath(restore.equals("latest") ? Checkpoints.latest(o.checkpointDir())
                .orElseThrow(() -> new CliFailure("--restore latest: no completed checkpoint under " + o.checkpointDir())) : restore).build();
    }

    private ParameterException usage(String msg) {
        return new ParameterException(spec.commandLine(), msg);
    }
}
