package dinostream.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;

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

    /** What a benchmark's numbers depend on besides its options: the load around it, cores and versions. */
    static void putRunEnvironment(ObjectNode o, double[] loadBefore, double[] loadAfter) {
        o.set("loadavg_before", Json.array(loadBefore));
        o.set("loadavg_after", Json.array(loadAfter));
        o.put("cores", Runtime.getRuntime().availableProcessors());
        o.put("java", System.getProperty("java.version"));
        o.put("onnxruntime", VersionProvider.onnxRuntimeVersion());
        o.put("dinostream", VersionProvider.version());
    }
}
