package dinostream.pipeline.viz;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A run folder's JSON-lines histories ({@code metrics.jsonl}, {@code probe.jsonl}) as numeric
 * columns per model, for the report's charts and summary.
 *
 * <p>Lenient where a live run makes it necessary: a line that is not a JSON object (a write cut
 * short by a crash) is skipped and counted; a missing or non-numeric field reads as NaN, and so do
 * the strings {@code "NaN"} and {@code "Infinity"} that Jackson writes for non-finite numbers.
 * Rows are ordered by images seen, then step (a restore replays steps, appending them again).
 */
final class ReportMetrics {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Charts draw at most this many points per series (bucket means beyond): a chart is ~500 px wide. */
    static final int MAX_POINTS = 1500;

    /** One model's rows: {@code columns[name][row]}. */
    record History(String modelId, Map<String, double[]> columns) {
        int size() {
            return columns.values().iterator().next().length;
        }

        double[] column(String name) {
            double[] c = columns.get(name);
            if (c == null) throw new IllegalArgumentException("no column " + name);
            return c;
        }

        double last(String name) {
            double[] c = column(name);
            for (int i = c.length - 1; i >= 0; i--) if (!Double.isNaN(c[i])) return c[i];
            return Double.NaN;
        }
    }

    /** The histories by model (in order of first appearance) and how many lines were unreadable. */
    record Read(List<History> models, int rows, int skipped, long firstTimeMs, long lastTimeMs) {
        boolean empty() {
            return rows == 0;
        }
    }

    /**
     * Reads {@code file}, keeping {@code columns} (plus {@code time_ms}).
     *
     * @throws IllegalArgumentException when the file has lines but none is a JSON object with a {@code step}
     */
    static Read read(Path file, List<String> columns) throws IOException {
        Map<String, List<double[]>> byModel = new LinkedHashMap<>();
        int rows = 0, skipped = 0, lines = 0;
        long first = Long.MAX_VALUE, last = Long.MIN_VALUE;
        try (BufferedReader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            for (String line; (line = in.readLine()) != null; ) {
                if (line.isBlank()) continue;
                lines++;
                JsonNode o;
                try {
                    o = JSON.readTree(line);
                } catch (JsonProcessingException e) {
                    skipped++;
                    continue;
                }
                if (o == null || !o.isObject() || !o.has("step")) {
                    skipped++;
                    continue;
                }
                double[] row = new double[columns.size()];
                for (int i = 0; i < row.length; i++) row[i] = number(o.get(columns.get(i)));
                String model = o.path("model_id").asText("");
                byModel.computeIfAbsent(model, k -> new ArrayList<>()).add(row);
                double t = number(o.get("time_ms"));
                if (!Double.isNaN(t)) {
                    first = Math.min(first, (long) t);
                    last = Math.max(last, (long) t);
                }
                rows++;
            }
        }
        if (lines > 0 && rows == 0) {
            throw new IllegalArgumentException(file + " has " + lines + " lines but none is a metrics record (a JSON object with a step)");
        }
        int seen = columns.indexOf("images_seen"), step = columns.indexOf("step");
        List<History> out = new ArrayList<>();
        for (Map.Entry<String, List<double[]>> e : byModel.entrySet()) {
            List<double[]> r = e.getValue();
            Comparator<double[]> order = (a, b) -> 0;
            if (seen >= 0) order = order.thenComparingDouble(a -> Double.isNaN(a[seen]) ? Double.MAX_VALUE : a[seen]);
            if (step >= 0) order = order.thenComparingDouble(a -> a[step]);
            r.sort(order);   // stable: equal keys keep file order
            Map<String, double[]> cols = new LinkedHashMap<>();
            for (int i = 0; i < columns.size(); i++) {
                double[] c = new double[r.size()];
                for (int j = 0; j < c.length; j++) c[j] = r.get(j)[i];
                cols.put(columns.get(i), c);
            }
            out.add(new History(e.getKey(), cols));
        }
        return new Read(out, rows, skipped, rows == 0 ? 0 : first, rows == 0 ? 0 : last);
    }

    private static double number(JsonNode n) {
        if (n == null || n.isNull()) return Double.NaN;
        if (n.isNumber()) return n.doubleValue();
        if (n.isBoolean()) return n.booleanValue() ? 1 : 0;
        if (n.isTextual()) {
            try {
                return Double.parseDouble(n.textValue());   // "NaN", "Infinity", "-Infinity" as Jackson writes them
            } catch (NumberFormatException e) {
                return Double.NaN;
            }
        }
        return Double.NaN;
    }

    /**
     * At most {@link #MAX_POINTS} (x, y) pairs: consecutive rows grouped into equal buckets, each
     * drawn at its last x with the mean of its finite y (NaN when it has none, which the charts
     * leave as a gap). Fewer rows are returned as they are.
     */
    static double[][] downsample(double[] x, double[] y) {
        int n = x.length;
        if (n <= MAX_POINTS) return new double[][]{x.clone(), y.clone()};
        double[] ox = new double[MAX_POINTS], oy = new double[MAX_POINTS];
        for (int b = 0; b < MAX_POINTS; b++) {
            int from = (int) ((long) b * n / MAX_POINTS), to = (int) ((long) (b + 1) * n / MAX_POINTS);
            double sum = 0;
            int k = 0;
            for (int i = from; i < to; i++) {
                if (Double.isFinite(y[i])) {
                    sum += y[i];
                    k++;
                }
            }
            ox[b] = x[to - 1];
            oy[b] = k == 0 ? Double.NaN : sum / k;
        }
        return new double[][]{ox, oy};
    }

    /** The median of the finite values, NaN when there are none. */
    static double median(double[] v) {
        double[] f = Arrays.stream(v).filter(Double::isFinite).sorted().toArray();
        if (f.length == 0) return Double.NaN;
        return f.length % 2 == 1 ? f[f.length / 2] : (f[f.length / 2 - 1] + f[f.length / 2]) / 2;
    }
}
