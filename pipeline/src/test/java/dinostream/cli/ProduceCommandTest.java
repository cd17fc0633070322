package dinostream.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** produce's checks of the order options, all made before Kafka is asked anything (ProduceCommandIT sends). */
class ProduceCommandTest {
    @TempDir
    Path dir;

    static final String[] BASE = {"produce", "--bootstrap", "127.0.0.1:9", "--topic", "x"};

    @Test
    void cameraOptionsAreUsageErrorsWhereTheyDoNotApply() {
        usageError("--frames and --run-length apply only to --order camera", "--source", "synthetic", "--frames", "2");
        usageError("--frames and --run-length apply only to --order camera", "--source", "synthetic", "--order", "class-sorted", "--run-length", "8");
        usageError("--frames must be at least 1, not 0", "--source", "synthetic", "--order", "camera", "--frames", "0");
        usageError("--run-length must be at least 1, not -3", "--source", "synthetic", "--order", "camera", "--run-length", "-3");
        usageError("--order camera needs raw-pixel images (--source fmnist or synthetic)", "--source", dir.toString(), "--order", "camera");
        usageError("unknown order 'random' (expected iid, class-sorted or camera)", "--source", "synthetic", "--order", "random");
    }

    static void usageError(String message, String... args) {
        usageError(BASE, message, args);
    }

    /** {@code base + args} is refused with one line starting with {@code message}, exit 2, nothing on stdout. */
    static void usageError(String[] base, String message, String... args) {
        String[] all = java.util.Arrays.copyOf(base, base.length + args.length);
        System.arraycopy(args, 0, all, base.length, args.length);
        StringWriter out = new StringWriter(), err = new StringWriter();
        int rc = Main.commandLine(new PrintWriter(out, true), new PrintWriter(err, true)).execute(all);
        List<String> lines = err.toString().lines().toList();
        assertEquals(2, rc, err.toString());
        assertEquals(1, lines.size(), "one line: " + err);
        assertTrue(lines.get(0).startsWith("dinostream: error: " + message), lines.get(0));
        assertEquals("", out.toString());
    }
}
