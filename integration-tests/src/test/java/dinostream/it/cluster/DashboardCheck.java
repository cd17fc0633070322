package dinostream.it.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Runs every query of the Grafana dashboard {@code ops/grafana/dinostream-dashboard.json} against a
 * {@link PrometheusServer}: one {@link Row} per target of every panel (panels nested in collapsed
 * rows included), with the query as sent, the number of series it returned, or the error
 * Prometheus gave for it.
 *
 * <p>Grafana's variables are replaced first: the built-in intervals ({@code $__rate_interval},
 * {@code $__interval}, {@code $__range}, ...) by the values in {@link #BUILT_INS}, and the
 * dashboard's own template variables by their "All" value ({@code allValue}, or {@code .*}) or their
 * current value. A variable left over is reported as that row's error, not sent.
 */
public final class DashboardCheck {
    /** The dashboard in this repository, relative to its root. */
    public static final String DASHBOARD = "ops/grafana/dinostream-dashboard.json";

    /** Grafana's built-in variables, as a 1 s scrape interval and a short test make them. */
    public static final Map<String, String> BUILT_INS = Map.of(
            "__rate_interval", "1m",
            "__interval", "2s",
            "__interval_ms", "2000",
            "__range", "1m",
            "__range_s", "60",
            "__range_ms", "60000");

    // $name, ${name}, ${name:format}, [[name]], [[name:format]]
    private static final Pattern VARIABLE = Pattern.compile(
            "\\$\\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?}|\\[\\[([A-Za-z_][A-Za-z0-9_]*)(?::[^]]*)?]]|\\$([A-Za-z_][A-Za-z0-9_]*)");

    private static final ObjectMapper JSON = new ObjectMapper();

    /** A panel target as written in the dashboard. */
    public record PanelTarget(String panel, String refId, String expr) {
    }

    /** One query run: {@code error} is null when Prometheus answered, {@code series} is then the number of series. */
    public record Row(String panel, String refId, String expr, String query, int series, String error) {
        public boolean ok() {
            return error == null;
        }
    }

    private DashboardCheck() {
    }

    /** The repository's root: {@code -Ddinostream.root}, else the nearest folder upwards from the working directory that holds {@link #DASHBOARD}. */
    public static Path repositoryRoot() {
        String named = System.getProperty("dinostream.root");
        if (named != null && !named.isBlank()) return Path.of(named).toAbsolutePath().normalize();
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve(DASHBOARD))) return p;
        }
        throw new IllegalStateException("no " + DASHBOARD + " above " + Path.of("").toAbsolutePath() + " (set -Ddinostream.root)");
    }

    public static Path defaultDashboard() {
        return repositoryRoot().resolve(DASHBOARD);
    }

    /** Every target of the repository's dashboard against {@code prometheus}. */
    public static List<Row> run(PrometheusServer prometheus) throws IOException, InterruptedException {
        return run(defaultDashboard(), prometheus);
    }

    public static List<Row> run(Path dashboard, PrometheusServer prometheus) throws IOException, InterruptedException {
        JsonNode root = JSON.readTree(dashboard.toFile());
        Map<String, String> vars = variables(root);
        List<Row> rows = new ArrayList<>();
        for (PanelTarget t : targets(root)) {
            String query;
            try {
                query = resolve(t.expr(), vars);
            } catch (IllegalArgumentException e) {
                rows.add(new Row(t.panel(), t.refId(), t.expr(), null, 0, e.getMessage()));
                continue;
            }
            try {
                rows.add(new Row(t.panel(), t.refId(), t.expr(), query, prometheus.query(query).size(), null));
            } catch (PrometheusServer.QueryException e) {
                rows.add(new Row(t.panel(), t.refId(), t.expr(), query, 0, e.getMessage()));
            }
        }
        return rows;
    }

    /** The panel targets of a dashboard file, in panel order. */
    public static List<PanelTarget> targets(Path dashboard) throws IOException {
        return targets(JSON.readTree(dashboard.toFile()));
    }

    static List<PanelTarget> targets(JsonNode dashboard) {
        List<PanelTarget> out = new ArrayList<>();
        collect(dashboard.path("panels"), out);
        return out;
    }

    private static void collect(JsonNode panels, List<PanelTarget> out) {
        for (JsonNode p : panels) {
            String title = p.path("title").asText("(untitled panel " + p.path("id").asText() + ")");
            for (JsonNode t : p.path("targets")) {
                if (t.hasNonNull("expr")) out.add(new PanelTarget(title, t.path("refId").asText(""), t.get("expr").asText()));
            }
            collect(p.path("panels"), out);   // a collapsed row holds its panels
        }
    }

    /** The dashboard's template variables as a test queries them: "All" (allValue, else .*) where allowed, else the current value. */
    static Map<String, String> variables(JsonNode dashboard) {
        Map<String, String> vars = new LinkedHashMap<>(BUILT_INS);
        for (JsonNode v : dashboard.path("templating").path("list")) {
            String name = v.path("name").asText();
            String type = v.path("type").asText();
            if (name.isEmpty() || "datasource".equals(type)) continue;
            String value;
            if (v.path("includeAll").asBoolean(false)) {
                value = v.hasNonNull("allValue") && !v.get("allValue").asText().isEmpty() ? v.get("allValue").asText() : ".*";
            } else {
                JsonNode cur = v.path("current").path("value");
                value = cur.isArray() ? (cur.size() > 0 ? cur.get(0).asText() : "") : cur.asText(v.path("query").asText(""));
            }
            vars.put(name, value);
        }
        return vars;
    }

    /** {@code expr} with Grafana's variables replaced; IllegalArgumentException naming a variable it does not know. */
    public static String resolve(String expr, Map<String, String> vars) {
        Matcher m = VARIABLE.matcher(expr);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String name = m.group(1) != null ? m.group(1) : m.group(2) != null ? m.group(2) : m.group(3);
            String value = vars.get(name);
            if (value == null) throw new IllegalArgumentException("unknown Grafana variable $" + name + " in: " + expr);
            m.appendReplacement(out, Matcher.quoteReplacement(value));
        }
        m.appendTail(out);
        return out.toString();
    }

    /** The rows as a plain-text table (panel, ref, series or error, query). */
    public static String report(List<Row> rows) {
        int w = 5;
        for (Row r : rows) w = Math.max(w, r.panel().length() + r.refId().length() + 1);
        StringBuilder b = new StringBuilder();
        b.append(String.format("%-" + w + "s  %7s  %s%n", "panel", "series", "query"));
        for (Row r : rows) {
            String name = r.panel() + (r.refId().isEmpty() ? "" : "/" + r.refId());
            String n = r.ok() ? Integer.toString(r.series()) : "ERROR";
            b.append(String.format("%-" + w + "s  %7s  %s%n", name, n, r.query() != null ? r.query() : r.expr()));
            if (!r.ok()) b.append(String.format("%-" + w + "s  %7s  %s%n", "", "", r.error()));
        }
        return b.toString();
    }
}
