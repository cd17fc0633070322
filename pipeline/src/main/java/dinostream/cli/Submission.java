package dinostream.cli;

import dinostream.pipeline.job.Deployment;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.DeploymentOptions;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import picocli.CommandLine.Model.CommandSpec;

import java.net.URI;
import java.net.URISyntaxException;

/**
 * How `train` and `embed` hand their job to Flink. Locally the MiniCluster runs it to its end. On
 * a cluster the job is submitted and its id printed; an attached `flink run` then waits for it,
 * a detached one (`-d`, the REST API, application mode) returns at once.
 */
final class Submission {
    private Submission() {}

    static void run(StreamExecutionEnvironment env, String name, Deployment where, CommandSpec spec) throws Exception {
        if (where == Deployment.LOCAL) {
            env.execute(name);
            return;
        }
        JobClient client = env.executeAsync(name);
        spec.commandLine().getOut().println("submitted job " + client.getJobID() + " (" + name + ")");
        spec.commandLine().getOut().flush();
        if (env.getConfiguration().get(DeploymentOptions.ATTACHED)) {
            client.getJobExecutionResult().get();
            spec.commandLine().getErr().println("job " + client.getJobID() + " finished");
        }
    }

    /**
     * On a cluster the job takes checkpointing from the cluster's configuration: it must be on
     * (the embeddings are committed with checkpoints) and stored where every process reaches it.
     */
    static void requireClusterCheckpointing(StreamExecutionEnvironment env, boolean sharedFileSystem) {
        if (!env.getCheckpointConfig().isCheckpointingEnabled()) {
            throw new CliFailure("checkpointing is off on this cluster, and the job commits its embeddings and state with checkpoints: "
                    + "set execution.checkpointing.interval in the cluster's config.yaml (ops/flink/dinostream.yaml does) or pass --checkpoint-interval");
        }
        ReadableConfig c = env.getConfiguration();
        String dir = c.get(CheckpointingOptions.CHECKPOINTS_DIRECTORY);
        if (dir == null) {
            throw new CliFailure("no checkpoint location: set execution.checkpointing.dir in the cluster's config.yaml "
                    + "(an s3://, hdfs://, ... URI every process reaches) or pass --checkpoint-dir");
        }
        requireShared("the checkpoint location (execution.checkpointing.dir or --checkpoint-dir)", dir, sharedFileSystem);
    }

    /** A location every TaskManager and the JobManager reach: a URI with a scheme; file:// only when declared shared. */
    static void requireShared(String what, String location, boolean sharedFileSystem) {
        String scheme;
        try {
            scheme = new URI(location).getScheme();
        } catch (URISyntaxException e) {
            throw new CliFailure(what + " '" + location + "' is not a URI: " + e.getMessage());
        }
        if ((scheme == null || scheme.equals("file")) && !sharedFileSystem) {
            throw new CliFailure(what + " '" + location + "' is a local path, which each TaskManager would write on its own machine: "
                    + "use a URI every process reaches (s3://, hdfs://, ...), or pass --shared-file-system if it is a file system "
                    + "mounted at the same path on every JobManager and TaskManager (NFS)");
        }
        if (scheme == null) throw new CliFailure(what + " '" + location + "' needs a scheme: file://" + location);
    }
}
