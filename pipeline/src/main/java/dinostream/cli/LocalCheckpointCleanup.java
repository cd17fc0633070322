package dinostream.cli;

import dinostream.pipeline.job.Checkpoints;
import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.core.execution.JobListener;

import java.io.PrintWriter;
import java.util.List;

/**
 * Local runs retain their checkpoints on cancel (that is how --restore finds them), so every
 * killed or restarted run would leave its job folder behind. Once the new run has completed a
 * checkpoint of its own, the folders of earlier runs but the newest {@code keep} are removed.
 */
final class LocalCheckpointCleanup implements JobListener {
    private final String dir;
    private final int keep;
    private final PrintWriter err;

    LocalCheckpointCleanup(String dir, int keep, PrintWriter err) {
        this.dir = dir;
        this.keep = keep;
        this.err = err;
    }

    @Override
    public void onJobSubmitted(JobClient client, Throwable failure) {
        if (client == null) return;
        String job = client.getJobID().toHexString();
        Thread t = new Thread(() -> {
            try {
                while (!Checkpoints.hasCompleted(dir, job)) {
                    if (client.getJobStatus().get().isGloballyTerminalState()) return;
                    Thread.sleep(1000);
                }
                List<String> removed = Checkpoints.removeEarlierRuns(dir, job, keep);
                if (!removed.isEmpty()) {
                    err.println("dinostream: removed the checkpoints of " + removed.size() + " earlier run(s) under " + dir + " (--keep-checkpoints " + keep + ")");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (Exception e) {
                err.println("dinostream: warning: could not remove earlier checkpoints under " + dir + ": " + Errors.describe(e));
            }
        }, "dinostream-checkpoint-cleanup");
        t.setDaemon(true);
        t.start();
    }

    @Override
    public void onJobExecuted(JobExecutionResult result, Throwable failure) {
    }
}
