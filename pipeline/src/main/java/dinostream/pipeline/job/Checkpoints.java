package dinostream.pipeline.job;

import org.apache.flink.core.fs.FileStatus;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.fs.Path;

import java.io.IOException;
import java.util.Optional;

/** Finds retained checkpoints: {@code <dir>/<job id>/chk-<n>/_metadata}. */
public final class Checkpoints {
    private Checkpoints() {}

    /** Whether job {@code jobId} has a completed checkpoint under {@code dir}. */
    public static boolean hasCompleted(String dir, String jobId) throws IOException {
        Path job = new Path(dir, jobId);
        FileSystem fs = job.getFileSystem();
        if (!fs.exists(job)) return false;
        for (FileStatus chk : fs.listStatus(job)) {
            if (chk.isDir() && chk.getPath().getName().startsWith("chk-") && fs.exists(new Path(chk.getPath(), "_metadata"))) return true;
        }
        return false;
    }

    /**
     * Removes the job folders of earlier runs under {@code dir} but the newest {@code keep} (by their
     * newest file), never {@code currentJobId}'s. Local runs only: on a cluster Flink's own retention
     * (execution.checkpointing.num-retained) and claim mode do this.
     *
     * @return the folders removed
     */
    public static java.util.List<String> removeEarlierRuns(String dir, String currentJobId, int keep) throws IOException {
        Path base = new Path(dir);
        FileSystem fs = base.getFileSystem();
        java.util.List<FileStatus> jobs = new java.util.ArrayList<>();
        if (!fs.exists(base)) return java.util.List.of();
        for (FileStatus job : fs.listStatus(base)) {
            if (job.isDir() && job.getPath().getName().matches("[0-9a-f]{32}") && !job.getPath().getName().equals(currentJobId)) jobs.add(job);
        }
        jobs.sort(java.util.Comparator.comparingLong(FileStatus::getModificationTime).reversed());
        java.util.List<String> removed = new java.util.ArrayList<>();
        for (FileStatus job : jobs.subList(Math.min(keep, jobs.size()), jobs.size())) {
            fs.delete(job.getPath(), true);
            removed.add(job.getPath().toString());
        }
        return removed;
    }

    /** The completed checkpoint (one with _metadata) written last under {@code dir}, over all jobs. */
    public static Optional<String> latest(String dir) throws IOException {
        Path base = new Path(dir);
        FileSystem fs = base.getFileSystem();
        if (!fs.exists(base)) return Optional.empty();
        String best = null;
        long bestTime = Long.MIN_VALUE;
        for (FileStatus job : fs.listStatus(base)) {
            if (!job.isDir()) continue;
            for (FileStatus chk : fs.listStatus(job.getPath())) {
                if (!chk.isDir() || !chk.getPath().getName().startsWith("chk-")) continue;
                Path meta = new Path(chk.getPath(), "_metadata");
                if (!fs.exists(meta)) continue;
                long t = fs.getFileStatus(meta).getModificationTime();
                if (t > bestTime) {
                    bestTime = t;
                    best = chk.getPath().toString();
                }
            }
        }
        return Optional.ofNullable(best);
    }
}
