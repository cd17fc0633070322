package dinostream.cli;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The job jar's entry point under Flink: an error is an exception with the one line, never System.exit. */
class JobMainTest {
    @Test
    void badArgumentsAreAnExceptionWithTheOneLine() {
        // Were System.exit called, this JVM (surefire's) would end and the test would not pass.
        JobMain.JobSubmissionError e = assertThrows(JobMain.JobSubmissionError.class,
                () -> JobMain.main(new String[]{"train", "--bootstrap", "127.0.0.1:9", "--batch", "0"}));
        assertEquals("dinostream: error: --batch must be at least 2, got 0 (see 'dinostream train --help')", e.getMessage());
    }

    @Test
    void anUnknownSubcommandIsAnException() {
        JobMain.JobSubmissionError e = assertThrows(JobMain.JobSubmissionError.class, () -> JobMain.main(new String[]{"demo"}));
        assertTrue(e.getMessage().startsWith("dinostream: error: "), e.getMessage());
    }

    @Test
    void theLastErrorLineIsTheMessage() {
        assertEquals("dinostream: error: b", JobMain.lastError("x\ndinostream: error: a\ny\ndinostream: error: b\n"));
        assertEquals("dinostream: error: the command failed", JobMain.lastError("nothing"));
    }

    @Test
    void clusterLocationsMustBeShared() {
        Submission.requireShared("--snapshot-dir", "s3://bucket/x", false);
        Submission.requireShared("--snapshot-dir", "file:///nfs/x", true);
        CliFailure e = assertThrows(CliFailure.class, () -> Submission.requireShared("--snapshot-dir", "file:///tmp/x", false));
        assertTrue(e.getMessage().contains("--shared-file-system"), e.getMessage());
        assertThrows(CliFailure.class, () -> Submission.requireShared("--snapshot-dir", "/tmp/x", false));
    }
}
