package dinostream.it.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@link PrometheusServer} and {@link DashboardCheck} against Debian's real {@code prometheus}
 * (skipped where it is not installed): the server scrapes itself, answers PromQL, refuses bad
 * PromQL, and every query of the repository's Grafana dashboard parses and runs (no series here:
 * no Flink job; {@code FlinkClusterIT} checks them against a live one). Also: the repository's
 * {@code ops/prometheus/prometheus.yml} passes {@code promtool check config}.
 */
// A live Prometheus answers within seconds; a hung process must not hold CI.
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class PrometheusServerIT {
    private static PrometheusServer prometheus;

    @BeforeAll
    static void start() throws Exception {
        if (!PrometheusServer.isAvailable()) return;
        prometheus = PrometheusServer.builder().scrapeSelf().interval(Duration.ofSeconds(1)).start();
        prometheus.awaitScraped(Duration.ofSeconds(30));
    }

    @AfterAll
    static void stop() {
        if (prometheus != null) {
            prometheus.close();
            assertFalse(prometheus.isAlive(), "prometheus still running after close()");
        }
    }

    private static void assumePrometheus() {
        assumeTrue(prometheus != null, "no prometheus binary (apt-get install -y prometheus)");
    }

    @Test
    void scrapesItselfAndAnswersQueries() throws Exception {
        assumePrometheus();
        assertTrue(prometheus.address().startsWith("127.0.0.1:"), prometheus.address());
        List<PrometheusServer.Target> targets = prometheus.targets();
        assertEquals(1, targets.size(), targets.toString());
        assertEquals("http://" + prometheus.address() + "/metrics", targets.get(0).scrapeUrl());

        List<PrometheusServer.Series> up = prometheus.query("up");
        assertEquals(1, up.size(), up.toString());
        assertEquals("prometheus", up.get(0).label("job"));
        assertEquals(prometheus.address(), up.get(0).label("instance"));
        assertEquals(1.0, up.get(0).value());

        List<PrometheusServer.Series> build = prometheus.query("prometheus_build_info");
        assertFalse(build.isEmpty(), "no prometheus_build_info series");
        assertEquals("prometheus_build_info", build.get(0).name());

        // an aggregation (no __name__), a scalar, and a range vector
        List<PrometheusServer.Series> sum = prometheus.query("sum by (job) (prometheus_http_requests_total)");
        assertEquals(1, sum.size(), sum.toString());
        assertEquals("", sum.get(0).name());
        assertEquals(List.of(new PrometheusServer.Series(Map.of(), 3.0)), prometheus.query("1 + 2"));
        List<PrometheusServer.Series> range = prometheus.query("up[10s]");
        assertEquals(1, range.size());
        assertEquals(1.0, range.get(0).value());
    }

    @Test
    void refusesBadPromQl() {
        assumePrometheus();
        PrometheusServer.QueryException e = assertThrows(PrometheusServer.QueryException.class,
                () -> prometheus.query("sum by (reason (rate(x[1m]))"));
        assertEquals("bad_data", e.errorType(), e.getMessage());
        assertTrue(e.getMessage().contains("parse error"), e.getMessage());
    }

    @Test
    void runsEveryDashboardQuery() throws Exception {
        assumePrometheus();
        Path dashboard = DashboardCheck.defaultDashboard();
        List<DashboardCheck.Row> rows = DashboardCheck.run(dashboard, prometheus);
        System.out.println(DashboardCheck.report(rows));

        // One row per target of every panel, counted here independently of DashboardCheck.
        JsonNode d = new ObjectMapper().readTree(dashboard.toFile());
        List<String> expected = new ArrayList<>();
        for (JsonNode p : d.path("panels")) {
            for (JsonNode t : p.path("targets")) expected.add(p.path("title").asText() + "/" + t.path("refId").asText());
        }
        List<String> got = rows.stream().map(r -> r.panel() + "/" + r.refId()).toList();
        assertEquals(expected, got);
        assertTrue(rows.size() >= 19, "dashboard lost targets: " + rows.size());

        for (DashboardCheck.Row r : rows) {
            assertNull(r.error(), () -> "Prometheus refused " + r.panel() + ": " + r.query() + " -> " + r.error());
            assertFalse(r.query().contains("$"), "unresolved variable in " + r.query());
            assertTrue(r.series() >= 0);
        }
        // The names the job exports (what the cluster test then checks with series > 0).
        String all = String.join("\n", rows.stream().map(DashboardCheck.Row::query).toList());
        for (String name : List.of("flink_taskmanager_job_task_operator_model_loss{",
                "flink_taskmanager_job_task_operator_model_knn_top1{",
                "flink_taskmanager_job_task_operator_reason_dead_letters[1m]",
                "flink_taskmanager_job_task_operator_embeddings[1m]",
                "flink_jobmanager_job_lastCheckpointDuration",
                "flink_jobmanager_job_lastCheckpointSize",
                "flink_jobmanager_job_numRestarts")) {
            assertTrue(all.contains(name), "no dashboard query uses " + name);
        }
    }

    @Test
    void resolvesGrafanaVariables() {
        Map<String, String> vars = new java.util.HashMap<>(DashboardCheck.BUILT_INS);
        vars.put("model", ".*");
        assertEquals("rate(x{model=~\".*\"}[1m])", DashboardCheck.resolve("rate(x{model=~\"$model\"}[$__rate_interval])", vars));
        assertEquals("x{model=~\".*\"} offset 1m", DashboardCheck.resolve("x{model=~\"${model:regex}\"} offset [[__range]]", vars));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DashboardCheck.resolve("x{a=\"$nope\"}", vars));
        assertTrue(e.getMessage().contains("$nope"), e.getMessage());
    }

    @Test
    void rejectsTargetsThatAreNotHostPort() {
        assertThrows(IllegalArgumentException.class, () -> PrometheusServer.builder().scrape("flink", List.of("http://127.0.0.1:9249")));
        assertThrows(IllegalArgumentException.class, () -> PrometheusServer.builder().scrape("flink", List.of("127.0.0.1:9249']\n- x")));
        assertThrows(IllegalArgumentException.class, () -> PrometheusServer.builder().scrape("bad job", List.of("127.0.0.1:9249")));
    }

    /**
     * ops/prometheus/prometheus.yml is valid for Prometheus (promtool comes in Debian's prometheus
     * package). Debian builds Prometheus without Kubernetes service discovery, so its promtool
     * rejects {@code kubernetes_sd_configs} as an unknown field: the jobs that use it are checked
     * here only for their shape, and the rest of the file by promtool.
     */
    @Test
    void opsScrapeConfigPassesPromtool() throws Exception {
        Path promtool = Path.of("/usr/bin/promtool");
        assumeTrue(Files.isExecutable(promtool), "no promtool (apt-get install -y prometheus)");
        Path config = DashboardCheck.repositoryRoot().resolve("ops/prometheus/prometheus.yml");
        ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
        ObjectNode root = (ObjectNode) yaml.readTree(config.toFile());
        ArrayNode jobs = (ArrayNode) root.get("scrape_configs");
        List<String> names = new ArrayList<>();
        List<String> kubernetes = new ArrayList<>();
        for (int i = jobs.size() - 1; i >= 0; i--) {
            JsonNode job = jobs.get(i);
            names.add(0, job.path("job_name").asText());
            if (job.has("kubernetes_sd_configs")) {
                kubernetes.add(job.path("job_name").asText());
                assertEquals("pod", job.path("kubernetes_sd_configs").path(0).path("role").asText());
                assertTrue(job.path("relabel_configs").toString().contains("__meta_kubernetes_pod_container_port_name"), job.toString());
                jobs.remove(i);
            }
        }
        assertEquals(List.of("flink-jobmanager", "flink-taskmanagers", "flink-kubernetes"), names);
        assertEquals(List.of("flink-kubernetes"), kubernetes);

        Path checked = Files.createTempFile("prometheus-", ".yml");
        try {
            yaml.writeValue(checked.toFile(), root);
            Process p = new ProcessBuilder(promtool.toString(), "check", "config", checked.toString())
                    .redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "promtool hung");
            assertEquals(0, p.exitValue(), out);
            assertTrue(out.contains("SUCCESS"), out);
        } finally {
            Files.deleteIfExists(checked);
        }
    }

    @Test
    void startFailsClearlyWithoutBinary() {
        IOException e = assertThrows(IOException.class,
                () -> PrometheusServer.builder().binary(Path.of("/nonexistent/prometheus")).scrapeSelf().start());
        assertTrue(e.getMessage().contains("no prometheus binary"), e.getMessage());
    }
}
