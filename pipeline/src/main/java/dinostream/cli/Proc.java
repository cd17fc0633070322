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

    /** The instruction-set flags that decide which matrix-product kernels a CPU can run. */
    static final String[] MATMUL_FLAGS = {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"};

    /**
     * The CPU's model name and whether each of {@link #MATMUL_FLAGS} is present, from
     * /proc/cpuinfo's first processor; null fields where it is not there.
     */
    static void putCpu(ObjectNode o) {
        String model = null;
        java.util.Set<String> flags = null;
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                int colon = line.indexOf(':');
                if (colon < 0) continue;
                String key = line.substring(0, colon).trim(), value = line.substring(colon + 1).trim();
                if (key.equals("model name") && model == null) model = value;
                if (key.equals("flags") && flags == null) flags = new java.util.HashSet<>(java.util.Arrays.asList(value.split("\\s+")));
            }
        } catch (IOException | RuntimeException e) {
            // no /proc/cpuinfo: reported as null
        }
        o.put("cpu_model", model);
        ObjectNode f = o.putObject("cpu_flags");
        for (String flag : MATMUL_FLAGS) {
            if (flags == null) f.putNull(flag);
            else f.put(flag, flags.contains(flag));
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
