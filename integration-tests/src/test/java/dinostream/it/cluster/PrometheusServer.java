package dinostream.it.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A real Prometheus server for tests: Debian's {@code prometheus} binary ({@code apt-get install
 * prometheus}, {@code /usr/bin/prometheus}) started as a child process with a generated
 * configuration that scrapes the given {@code host:port} targets every second or two, listening on
 * {@code 127.0.0.1} only, on a free port, with its storage in a temporary folder that {@link #close()}
 * deletes.
 *
 * <pre>{@code
 * try (PrometheusServer prom = PrometheusServer.builder()
 *         .scrape("flink-jobmanager", List.of("127.0.0.1:" + jmPort))
 *         .scrape("flink-taskmanagers", tmTargets)
 *         .start()) {
 *     prom.awaitScraped(Duration.ofSeconds(30));
 *     List<PrometheusServer.Series> s = prom.query("flink_taskmanager_job_task_operator_model_loss");
 * }
 * }</pre>
 *
 * <p>{@link #isAvailable()} says whether the binary is there (tests skip without it); the system
 * property {@code dinostream.prometheus} or the environment variable {@code DINOSTREAM_PROMETHEUS}
 * names another one.
 */
public final class PrometheusServer implements AutoCloseable {
    /** Where Debian's package puts the server. */
    public static final Path DEBIAN_BINARY = Path.of("/usr/bin/prometheus");
    public static final String HOST = "127.0.0.1";

    private static final Pattern TARGET = Pattern.compile("[A-Za-z0-9.\\-]+:[0-9]{1,5}|\\[[0-9A-Fa-f:.]+\\]:[0-9]{1,5}");
    private static final Pattern JOB_NAME = Pattern.compile("[A-Za-z0-9_\\-]+");
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One series of a query result: its labels ({@code __name__} included when the result has one) and its latest value. */
    public record Series(Map<String, String> labels, double value) {
        /** The metric name, or "" for an expression result without one. */
        public String name() {
            return labels.getOrDefault("__name__", "");
        }

        public String label(String key) {
            return labels.get(key);
        }
    }

    /** One scrape target as Prometheus sees it ({@code /api/v1/targets}). */
    public record Target(String job, String scrapeUrl, String health, String lastScrape, String lastError) {
        /** Scraped at least once (Prometheus reports the zero time before the first scrape). */
        public boolean scraped() {
            return lastScrape != null && !lastScrape.startsWith("0001-01-01");
        }

        public boolean up() {
            return "up".equals(health);
        }
    }

    /** A query Prometheus refused (bad PromQL, timeout, ...): its error type and message. */
    public static final class QueryException extends IOException {
        private final String errorType;

        QueryException(String errorType, String message) {
            super(errorType + ": " + message);
            this.errorType = errorType;
        }

        public String errorType() {
            return errorType;
        }
    }

    private final Process process;
    private final Path dir;
    private final Path log;
    private final Path config;
    private final int port;
    private final Duration interval;
    private final HttpClient http;
    private final Thread shutdownHook;
    private boolean closed;

    private PrometheusServer(Process process, Path dir, Path log, Path config, int port, Duration interval, HttpClient http) {
        this.process = process;
        this.dir = dir;
        this.log = log;
        this.config = config;
        this.port = port;
        this.interval = interval;
        this.http = http;
        this.shutdownHook = new Thread(this::stopProcess, "prometheus-server-shutdown");
        Runtime.getRuntime().addShutdownHook(shutdownHook);
    }

    /** The binary to run: {@code dinostream.prometheus}, {@code DINOSTREAM_PROMETHEUS}, {@code /usr/bin/prometheus}, or {@code prometheus} on the PATH; null when none exists. */
    public static Path binary() {
        String named = System.getProperty("dinostream.prometheus", System.getenv("DINOSTREAM_PROMETHEUS"));
        if (named != null && !named.isBlank()) {
            Path p = Path.of(named);
            return Files.isExecutable(p) ? p : null;
        }
        if (Files.isExecutable(DEBIAN_BINARY)) return DEBIAN_BINARY;
        String path = System.getenv("PATH");
        if (path != null) {
            for (String d : path.split(java.io.File.pathSeparator)) {
                if (d.isEmpty()) continue;
                Path p = Path.of(d, "prometheus");
                if (Files.isExecutable(p)) return p;
            }
        }
        return null;
    }

    public static boolean isAvailable() {
        return binary() != null;
    }

    /** A server scraping these {@code host:port} targets (job {@code flink}) every second. */
    public static PrometheusServer start(List<String> targets) throws IOException, InterruptedException {
        return builder().scrape("flink", targets).start();
    }

    public static Builder builder() {
        return new Builder();
    }

    public static final class Builder {
        private final Map<String, List<String>> jobs = new LinkedHashMap<>();
        private boolean self;
        private Duration interval = Duration.ofSeconds(1);
        private Duration startTimeout = Duration.ofSeconds(60);
        private Path binary;

        private Builder() {
        }

        /** One scrape job (its name becomes the {@code job} label) over these {@code host:port} targets, path {@code /metrics}. */
        public Builder scrape(String job, List<String> targets) {
            if (!JOB_NAME.matcher(job).matches()) throw new IllegalArgumentException("job name must match " + JOB_NAME + ": " + job);
            if (jobs.containsKey(job) || "prometheus".equals(job)) throw new IllegalArgumentException("job name used twice: " + job);
            for (String t : targets) {
                if (t == null || !TARGET.matcher(t).matches()) throw new IllegalArgumentException("a target is host:port, got: " + t);
            }
            jobs.put(job, List.copyOf(targets));
            return this;
        }

        /** Also scrape the server's own {@code /metrics} (job {@code prometheus}). */
        public Builder scrapeSelf() {
            this.self = true;
            return this;
        }

        /** Scrape and evaluation interval, 1 s by default; at least 1 s (Prometheus's own minimum is coarser than that for anything else). */
        public Builder interval(Duration d) {
            if (d.toMillis() < 1000 || d.toMillis() % 1000 != 0) throw new IllegalArgumentException("interval: whole seconds, at least 1 s: " + d);
            this.interval = d;
            return this;
        }

        public Builder startTimeout(Duration d) {
            this.startTimeout = d;
            return this;
        }

        public Builder binary(Path p) {
            this.binary = p;
            return this;
        }

        public PrometheusServer start() throws IOException, InterruptedException {
            Path bin = binary != null ? binary : PrometheusServer.binary();
            if (bin == null || !Files.isExecutable(bin)) {
                throw new IOException("no prometheus binary (apt-get install -y prometheus, or -Ddinostream.prometheus=PATH)");
            }
            if (jobs.isEmpty() && !self) throw new IllegalStateException("nothing to scrape: add a job or scrapeSelf()");
            IOException last = null;
            for (int attempt = 0; attempt < 3; attempt++) {
                int port = freePort();
                try {
                    return launch(bin, port);
                } catch (PortTakenException e) {
                    last = e;   // another process took the port between the probe and the bind: pick another
                }
            }
            throw last;
        }

        private PrometheusServer launch(Path bin, int port) throws IOException, InterruptedException {
            Path dir = Files.createTempDirectory("dinostream-prometheus-");
            Path config = dir.resolve("prometheus.yml");
            Path log = dir.resolve("prometheus.log");
            Files.createDirectories(dir.resolve("data"));
            Files.writeString(config, configYaml(port));
            List<String> cmd = List.of(bin.toString(),
                    "--config.file=" + config,
                    "--storage.tsdb.path=" + dir.resolve("data"),
                    "--storage.tsdb.retention.time=1d",
                    "--web.listen-address=" + HOST + ":" + port,
                    "--log.level=info");
            ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
                    .redirectOutput(log.toFile());
            Process p = pb.start();
            HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
            PrometheusServer server = new PrometheusServer(p, dir, log, config, port, interval, http);
            try {
                server.awaitReady(startTimeout);
                return server;
            } catch (IOException | RuntimeException | InterruptedException e) {
                String tail = server.log();
                server.close();
                if (tail.contains("address already in use")) throw new PortTakenException(tail);
                throw e;
            }
        }

        /** The generated configuration: one scrape job per {@link #scrape} call. */
        String configYaml(int port) {
            long s = interval.toSeconds();
            StringBuilder y = new StringBuilder();
            y.append("# generated by dinostream.it.cluster.PrometheusServer\n");
            y.append("global:\n");
            y.append("  scrape_interval: ").append(s).append("s\n");
            y.append("  scrape_timeout: ").append(s).append("s\n");
            y.append("  evaluation_interval: ").append(s).append("s\n");
            y.append("scrape_configs:\n");
            if (self) appendJob(y, "prometheus", List.of(HOST + ":" + port));
            for (Map.Entry<String, List<String>> e : jobs.entrySet()) appendJob(y, e.getKey(), e.getValue());
            return y.toString();
        }

        private static void appendJob(StringBuilder y, String job, List<String> targets) {
            y.append("  - job_name: '").append(job).append("'\n");
            y.append("    metrics_path: /metrics\n");
            y.append("    static_configs:\n");
            y.append("      - targets: [");
            for (int i = 0; i < targets.size(); i++) {
                if (i > 0) y.append(", ");
                y.append('\'').append(targets.get(i)).append('\'');
            }
            y.append("]\n");
        }
    }

    private static final class PortTakenException extends IOException {
        PortTakenException(String log) {
            super("prometheus: listen address taken\n" + log);
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName(HOST))) {
            s.setReuseAddress(true);
            return s.getLocalPort();
        }
    }

    private void awaitReady(Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            if (!process.isAlive()) {
                throw new IOException("prometheus exited with " + process.exitValue() + " before it was ready:\n" + log());
            }
            try {
                HttpResponse<String> r = http.send(request("/-/ready").build(), HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() == 200) return;
            } catch (IOException notYet) {
                // not listening yet
            }
            if (System.nanoTime() > deadline) throw new IOException("prometheus not ready after " + timeout + ":\n" + log());
            Thread.sleep(100);
        }
    }

    /**
     * Waits until every configured target has been scraped at least once and is up; returns the targets.
     * On timeout the exception lists each target's health and last error.
     */
    public List<Target> awaitScraped(Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            List<Target> t = targets();
            if (!t.isEmpty() && t.stream().allMatch(x -> x.scraped() && x.up())) return t;
            if (System.nanoTime() > deadline) throw new IOException("targets not all scraped and up after " + timeout + ": " + t);
            Thread.sleep(Math.min(500, interval.toMillis() / 2));
        }
    }

    /** The active scrape targets ({@code /api/v1/targets}). */
    public List<Target> targets() throws IOException, InterruptedException {
        JsonNode data = getJson("/api/v1/targets?state=active");
        List<Target> out = new ArrayList<>();
        for (JsonNode t : data.path("activeTargets")) {
            out.add(new Target(t.path("labels").path("job").asText(), t.path("scrapeUrl").asText(),
                    t.path("health").asText(), t.path("lastScrape").asText(), t.path("lastError").asText()));
        }
        out.sort(Comparator.comparing(Target::job).thenComparing(Target::scrapeUrl));
        return out;
    }

    /**
     * An instant query ({@code /api/v1/query}) at the server's current time: one {@link Series} per
     * result series (a range-vector result gives each series' latest sample, a scalar one series
     * without labels). Throws {@link QueryException} when Prometheus refuses the query.
     */
    public List<Series> query(String promql) throws IOException, InterruptedException {
        JsonNode data = getJson("/api/v1/query?query=" + URLEncoder.encode(promql, StandardCharsets.UTF_8));
        String type = data.path("resultType").asText();
        JsonNode result = data.path("result");
        List<Series> out = new ArrayList<>();
        switch (type) {
            case "vector" -> {
                for (JsonNode s : result) out.add(new Series(labels(s.path("metric")), number(s.path("value"))));
            }
            case "matrix" -> {
                for (JsonNode s : result) {
                    JsonNode values = s.path("values");
                    double v = values.size() == 0 ? Double.NaN : number(values.get(values.size() - 1));
                    out.add(new Series(labels(s.path("metric")), v));
                }
            }
            case "scalar" -> out.add(new Series(Map.of(), number(result)));
            case "string" -> out.add(new Series(Map.of("value", result.path(1).asText()), Double.NaN));
            default -> throw new IOException("unexpected result type '" + type + "' for " + promql);
        }
        return out;
    }

    private static Map<String, String> labels(JsonNode metric) {
        Map<String, String> m = new TreeMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = metric.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            m.put(e.getKey(), e.getValue().asText());
        }
        return Collections.unmodifiableMap(m);
    }

    /** A sample is [unix seconds, "value"]; the value is a string so that NaN and Inf survive JSON. */
    private static double number(JsonNode sample) {
        String v = sample.path(1).asText();
        return switch (v) {
            case "NaN" -> Double.NaN;
            case "+Inf" -> Double.POSITIVE_INFINITY;
            case "-Inf" -> Double.NEGATIVE_INFINITY;
            default -> Double.parseDouble(v);
        };
    }

    private JsonNode getJson(String pathAndQuery) throws IOException, InterruptedException {
        HttpResponse<String> r = http.send(request(pathAndQuery).build(), HttpResponse.BodyHandlers.ofString());
        JsonNode body;
        try {
            body = JSON.readTree(r.body());
        } catch (IOException e) {
            throw new IOException("prometheus " + pathAndQuery + ": HTTP " + r.statusCode() + ", not JSON: " + r.body());
        }
        if (!"success".equals(body.path("status").asText())) {
            throw new QueryException(body.path("errorType").asText("error"), body.path("error").asText(r.body()));
        }
        return body.path("data");
    }

    private HttpRequest.Builder request(String pathAndQuery) {
        return HttpRequest.newBuilder(URI.create(url() + pathAndQuery)).timeout(Duration.ofSeconds(30)).GET();
    }

    /** {@code http://127.0.0.1:<port>}. */
    public String url() {
        return "http://" + HOST + ":" + port;
    }

    public int port() {
        return port;
    }

    /** {@code 127.0.0.1:<port>}: what another server would scrape. */
    public String address() {
        return HOST + ":" + port;
    }

    public Duration interval() {
        return interval;
    }

    public Path configFile() {
        return config;
    }

    public long pid() {
        return process.pid();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** The last 8 kB of the server's log (stdout and stderr). */
    public String log() {
        try {
            if (!Files.exists(log)) return "";
            String s = Files.readString(log, StandardCharsets.UTF_8);
            return s.length() > 8192 ? "..." + s.substring(s.length() - 8192) : s;
        } catch (IOException e) {
            return "(log unreadable: " + e + ")";
        }
    }

    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        stopProcess();
        try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (IllegalStateException shuttingDown) {
            // the JVM is exiting: the hook runs anyway
        }
        deleteTree(dir);
    }

    private void stopProcess() {
        if (!process.isAlive()) return;
        process.destroy();   // SIGTERM: Prometheus shuts down cleanly
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    private static void deleteTree(Path root) {
        if (!Files.exists(root)) return;
        try (Stream<Path> s = Files.walk(root)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (IOException | UncheckedIOException e) {
            System.err.println("PrometheusServer: could not delete " + root + ": " + e);
        }
    }

    @Override
    public String toString() {
        return "PrometheusServer[" + url() + ", pid " + process.pid() + "]";
    }
}
