package dinostream.cli;

import dinostream.model.dino.DinoConfig;
import dinostream.pipeline.job.DinoJob;
import dinostream.pipeline.job.JobOptions;
import dinostream.pipeline.kafka.EmbeddedKafka;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Map;

/**
 * The train job on a MiniCluster of this process, the way `demo`, the benchmarks and the tests run
 * it, and what a local `train --bounded` does after its job (the run report). Not in the job jar.
 */
public final class LocalRun {
    private LocalRun() {}

    /** Options of a local job on {@code bootstrap}: its checkpoints, snapshots, metrics and probe logs under {@code runFolder}. */
    public static JobOptions.Builder options(String bootstrap, DinoConfig model, Path runFolder) {
        return JobOptions.builder().bootstrap(bootstrap).model(model).runFolder(runFolder);
    }

    /** The job's three topics on an in-process broker: the images in {@code imagePartitions}, the outputs in one. */
    public static void createTopics(EmbeddedKafka kafka, JobOptions o, int imagePartitions, Map<String, String> imagesConfig) {
        kafka.createTopic(o.imagesTopic(), imagePartitions, imagesConfig);
        kafka.createTopic(o.embeddingsTopic(), 1, Map.of());
        kafka.createTopic(o.deadLetterTopic(), 1, Map.of());
    }

    /** Builds and starts the job; its REST API and web UI listen on {@code restPort} (0: any free port). */
    public static JobClient start(JobOptions o, int restPort, String name) throws Exception {
        Configuration conf = DinoJob.configuration(o);
        if (restPort > 0) conf.set(RestOptions.PORT, restPort);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        DinoJob.build(env, o);
        return env.executeAsync(name);
    }

    /** Writes OUT/report.html; a failure is a warning, never the run's result. */
    static void report(Path runDir, String snapshotDir, PrintWriter err) {
        Path report = runDir.resolve("report.html");
        try {
            dinostream.pipeline.viz.Report.write(runDir, snapshotDir, report);
            err.println("report: " + report);
        } catch (Exception | LinkageError e) {
            err.println("dinostream: warning: no report: " + Errors.describe(e instanceof Exception x ? x : new RuntimeException(e)));
        }
    }
}
