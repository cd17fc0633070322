package dinostream.pipeline.job;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CheckpointsTest {
    static Path job(Path dir, int n, long mtime, boolean completed) throws Exception {
        Path job = dir.resolve(String.format("%032x", n));
        Path chk = Files.createDirectories(job.resolve("chk-3"));
        if (completed) Files.writeString(chk.resolve("_metadata"), "x");
        Files.setLastModifiedTime(job, FileTime.fromMillis(mtime));
        return job;
    }

    @Test
    void earlierRunsButTheNewestAreRemovedNeverTheCurrentOne(@TempDir Path dir) throws Exception {
        Path old1 = job(dir, 1, 1_000, true), old2 = job(dir, 2, 2_000, true), old3 = job(dir, 3, 3_000, false);
        Path current = job(dir, 4, 500, true);   // oldest mtime, but it is this run's
        Files.createDirectories(dir.resolve("not-a-job"));
        String uri = dir.toUri().toString();
        assertTrue(Checkpoints.hasCompleted(uri, current.getFileName().toString()));
        assertFalse(Checkpoints.hasCompleted(uri, old3.getFileName().toString()));

        List<String> removed = Checkpoints.removeEarlierRuns(uri, current.getFileName().toString(), 1);
        assertEquals(2, removed.size());
        assertTrue(Files.exists(old3), "the newest earlier run is kept");
        assertFalse(Files.exists(old1));
        assertFalse(Files.exists(old2));
        assertTrue(Files.exists(current));
        assertTrue(Files.exists(dir.resolve("not-a-job")), "only Flink job folders are touched");
    }
}
