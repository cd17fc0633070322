package dinostream.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Linux /proc readings for benchmark reports; null where /proc is not there. */
final class Proc {
    private Proc() {}

    /** Peak resident set size (VmHWM) of this process in MiB. */
    static Double peakRssMb() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    String[] f = line.substring("VmHWM:".length()).trim().split("\\s+");
                    return Long.parseLong(f[0]) / 1024.0;   // reported in kB
                }
            }
            return null;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /** The 1, 5 and 15 minute load averages. */
    static double[] loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
            return new double[]{Double.parseDouble(f[0]), Double.parseDouble(f[1]), Double.parseDouble(f[2])};
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }
}
