package dinostream.pipeline.job;

import org.apache.flink.core.fs.FileStatus;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.fs.Path;

import java.io.IOException;
import java.util.Optional;

/** Finds retained checkpoints: {@code <dir>/<job id>/chk-<n>/_metadata}. */
public final class Checkpoints {
    private Checkpoints() {}

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
