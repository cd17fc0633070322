package dinostream.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Sums an ONNX Runtime profiler trace (Chrome trace JSON) per operator type and per phase of the
 * step. The phase is the node name's prefix before '/' ({@code Graph.phase}); nodes that ONNX
 * Runtime created while fusing carry names of its own and count as "(fused)" unless they kept the
 * prefix. Only the runs after the first {@code skipRuns} are counted (warm-up).
 */
final class TraceProfile {
    /** Time, share of kernel time, node executions and (for products) FLOPs of one row. */
    record Row(String key, double ms, int count, double gflop) {}

    /** Operators that only move or convert data. */
    static final Set<String> COPIES = Set.of("Transpose", "Reshape", "Concat", "Split", "Cast", "Slice", "Gather",
            "Expand", "Identity", "Squeeze", "Unsqueeze", "Flatten", "Tile", "Pad");
    /** Operators whose FLOPs are 2·M·N·K. */
    static final Set<String> PRODUCTS = Set.of("MatMul", "Gemm", "FusedMatMul", "FusedGemm");

    final int runs;
    final double runMs;      // summed model_run time of the counted runs
    final double kernelMs;   // summed node time of the counted runs
    final List<Row> byOp, byPhase;

    private TraceProfile(int runs, double runMs, double kernelMs, List<Row> byOp, List<Row> byPhase) {
        this.runs = runs;
        this.runMs = runMs;
        this.kernelMs = kernelMs;
        this.byOp = byOp;
        this.byPhase = byPhase;
    }

    static TraceProfile read(Path trace, int skipRuns) throws IOException {
        JsonNode root = Json.MAPPER.readTree(trace.toFile());
        JsonNode events = root.isArray() ? root : root.path("traceEvents");
        List<double[]> runs = new ArrayList<>();   // {start, duration} in microseconds
        for (JsonNode e : events) {
            if (e.path("cat").asText().equals("Session") && e.path("name").asText().equals("model_run")) {
                runs.add(new double[]{e.path("ts").asDouble(), e.path("dur").asDouble()});
            }
        }
        runs.sort(Comparator.comparingDouble(r -> r[0]));
        double from = runs.size() > skipRuns ? runs.get(skipRuns)[0] : Double.NEGATIVE_INFINITY;
        double runUs = 0;
        for (int i = Math.min(skipRuns, runs.size()); i < runs.size(); i++) runUs += runs.get(i)[1];
        Map<String, double[]> op = new LinkedHashMap<>(), phase = new LinkedHashMap<>();   // {us, count, flops}
        double kernelUs = 0;
        for (JsonNode e : events) {
            String name = e.path("name").asText();
            if (!e.path("cat").asText().equals("Node") || !name.endsWith("_kernel_time") || e.path("ts").asDouble() < from) continue;
            String node = name.substring(0, name.length() - "_kernel_time".length());
            String opType = e.path("args").path("op_name").asText("?");
            double us = e.path("dur").asDouble(), flops = PRODUCTS.contains(opType) ? productFlops(e.path("args")) : 0;
            int slash = node.indexOf('/');
            String ph = slash > 0 ? node.substring(0, slash) : node.matches("n\\d+") ? "(unphased)" : "(fused)";
            add(op, opType, us, flops);
            add(phase, ph, us, flops);
            kernelUs += us;
        }
        int counted = Math.max(0, runs.size() - skipRuns);
        return new TraceProfile(counted, runUs / 1e3, kernelUs / 1e3, rows(op, counted), rows(phase, counted));
    }

    private static void add(Map<String, double[]> m, String key, double us, double flops) {
        double[] a = m.computeIfAbsent(key, k -> new double[3]);
        a[0] += us;
        a[1]++;
        a[2] += flops;
    }

    /** Per-run rows (time and count divided by the number of runs), longest first. */
    private static List<Row> rows(Map<String, double[]> m, int runs) {
        int r = Math.max(1, runs);
        List<Row> out = new ArrayList<>();
        m.forEach((k, a) -> out.add(new Row(k, a[0] / 1e3 / r, (int) Math.round(a[1] / r), a[2] / 1e9 / r)));
        out.sort(Comparator.comparingDouble(Row::ms).reversed());
        return out;
    }

    /**
     * 2 · (output size) · K, with K the first input's other matrix axis: its last axis unless its
     * second-last one is not the output's rows (a transposed operand), which covers Gemm's transA
     * and FusedMatMul's transA without reading attributes the trace does not carry.
     */
    static double productFlops(JsonNode args) {
        long[] a = shape(args.path("input_type_shape").path(0)), y = shape(args.path("output_type_shape").path(0));
        if (a == null || y == null || a.length < 2 || y.length < 2) return 0;
        long rows = y[y.length - 2];
        long k = a[a.length - 2] == rows ? a[a.length - 1] : a[a.length - 2];
        double size = 1;
        for (long d : y) size *= d;
        return 2 * size * k;
    }

    private static long[] shape(JsonNode typed) {
        if (!typed.isObject() || typed.size() != 1) return null;
        JsonNode dims = typed.elements().next();
        long[] s = new long[dims.size()];
        for (int i = 0; i < s.length; i++) s[i] = dims.get(i).asLong();
        return s;
    }

    ObjectNode toJson() {
        ObjectNode o = Json.object();
        o.put("runs", runs);
        o.put("run_ms", Json.round(runMs / Math.max(1, runs), 2));
        o.put("kernel_ms", Json.round(kernelMs / Math.max(1, runs), 2));
        o.set("by_op", rowsJson(byOp));
        o.set("by_phase", rowsJson(byPhase));
        double copies = byOp.stream().filter(r -> COPIES.contains(r.key())).mapToDouble(Row::ms).sum();
        o.put("copies_ms", Json.round(copies, 2));
        return o;
    }

    private ArrayNode rowsJson(List<Row> rows) {
        ArrayNode a = Json.MAPPER.createArrayNode();
        double total = kernelMs / Math.max(1, runs);
        for (Row r : rows) {
            ObjectNode o = a.addObject();
            o.put("name", r.key());
            o.put("ms", Json.round(r.ms(), 3));
            o.put("share", Json.round(r.ms() / total, 4));
            o.put("count", r.count());
            if (r.gflop() > 0) {
                o.put("gflop", Json.round(r.gflop(), 3));
                o.put("gflops", Json.round(r.gflop() / (r.ms() / 1e3), 1));
            }
        }
        return a;
    }

    /** The two tables, per run, for a terminal (stderr beside the JSON on stdout). */
    void print(PrintWriter out, int topOps) {
        double total = kernelMs / Math.max(1, runs);
        out.printf("profile: %d run%s counted, %.1f ms of kernels per run of %.1f ms%n", runs, runs == 1 ? "" : "s",
                total, runMs / Math.max(1, runs));
        table(out, "op type", byOp.subList(0, Math.min(topOps, byOp.size())), total);
        double copies = byOp.stream().filter(r -> COPIES.contains(r.key())).mapToDouble(Row::ms).sum();
        out.printf("  copies and layout changes (%s): %.1f ms, %.1f%%%n", String.join(", ", new java.util.TreeSet<>(COPIES)),
                copies, 100 * copies / total);
        table(out, "phase", byPhase, total);
        out.flush();
    }

    private static void table(PrintWriter out, String what, List<Row> rows, double total) {
        out.printf("  %-22s %10s %7s %7s %10s%n", what, "ms/run", "share", "nodes", "GFLOP/s");
        for (Row r : rows) {
            out.printf("  %-22s %10.1f %6.1f%% %7d %10s%n", r.key(), r.ms(), 100 * r.ms() / total, r.count(),
                    r.gflop() > 0 ? String.format("%.1f", r.gflop() / (r.ms() / 1e3)) : "");
        }
    }
}
