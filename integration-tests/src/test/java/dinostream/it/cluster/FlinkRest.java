package dinostream.it.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/** The few calls of Flink's REST API (https://nightlies.apache.org/flink/flink-docs-stable/docs/ops/rest_api/) the cluster tests use. */
public final class FlinkRest {
    /** Status code and body of a call. */
    public record Response(int status, String body) {
        public JsonNode json() {
            try {
                return JSON.readTree(body);
            } catch (IOException e) {
                throw new AssertionError("not JSON (HTTP " + status + "): " + body, e);
            }
        }

        public boolean ok() {
            return status >= 200 && status < 300;
        }
    }

    static final ObjectMapper JSON = new ObjectMapper();

    private final String base;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    public FlinkRest(String base) {
        this.base = base;
    }

    public String base() {
        return base;
    }

    public Response call(String method, String path, HttpRequest.BodyPublisher body, String contentType, Duration timeout)
            throws IOException {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).timeout(timeout).method(method, body);
        if (contentType != null) b.header("Content-Type", contentType);
        try {
            HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
            return new Response(r.statusCode(), r.body());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }

    /** GET that must answer 200, as JSON. */
    public JsonNode get(String path) throws IOException {
        Response r = call("GET", path, HttpRequest.BodyPublishers.noBody(), null, Duration.ofSeconds(20));
        if (r.status != 200) throw new IOException("GET " + path + ": HTTP " + r.status + ": " + r.body);
        return r.json();
    }

    /** {@code GET /overview}: taskmanagers, slots-total, slots-available, jobs-running, ... */
    public JsonNode overview() throws IOException {
        return get("/overview");
    }

    /** {@code GET /jobs/overview}. */
    public JsonNode jobsOverview() throws IOException {
        return get("/jobs/overview");
    }

    /** {@code GET /jobs/<id>}: state, timestamps, vertices with their status and tasks. */
    public JsonNode job(String jobId) throws IOException {
        return get("/jobs/" + jobId);
    }

    public String jobState(String jobId) throws IOException {
        return job(jobId).path("state").asText();
    }

    /** RUNNING with every vertex RUNNING (every task deployed and running, not just the job's status). */
    public boolean fullyRunning(String jobId) throws IOException {
        JsonNode j = job(jobId);
        if (!"RUNNING".equals(j.path("state").asText())) return false;
        for (JsonNode v : j.path("vertices")) if (!"RUNNING".equals(v.path("status").asText())) return false;
        return true;
    }

    /** {@code GET /jobs/<id>/checkpoints}: counts, summary (sizes, durations), latest, history. */
    public JsonNode checkpoints(String jobId) throws IOException {
        return get("/jobs/" + jobId + "/checkpoints");
    }

    /** {@code GET /jobs/<id>/exceptions}: the root causes of the job's failovers. */
    public JsonNode exceptions(String jobId) throws IOException {
        return get("/jobs/" + jobId + "/exceptions");
    }

    /** The id of the job's vertex whose name starts with {@code prefix}. */
    public String vertexId(String jobId, String prefix) throws IOException {
        List<String> names = new ArrayList<>();
        for (JsonNode v : job(jobId).path("vertices")) {
            String name = v.path("name").asText();
            names.add(name);
            if (name.startsWith(prefix)) return v.path("id").asText();
        }
        throw new IOException("no vertex named " + prefix + "... in " + names);
    }

    /** {@code GET /jobs/<id>/vertices/<vid>}: its subtasks, with the TaskManager each runs on. */
    public JsonNode vertex(String jobId, String vertexId) throws IOException {
        return get("/jobs/" + jobId + "/vertices/" + vertexId);
    }

    /** The metric ids available for a vertex's subtasks ({@code GET .../subtasks/metrics}). */
    public List<String> subtaskMetricIds(String jobId, String vertexId) throws IOException {
        List<String> ids = new ArrayList<>();
        for (JsonNode m : get("/jobs/" + jobId + "/vertices/" + vertexId + "/subtasks/metrics")) ids.add(m.path("id").asText());
        return ids;
    }

    /**
     * Aggregates over a vertex's subtasks of the given metrics
     * ({@code GET /jobs/<id>/vertices/<vid>/subtasks/metrics?get=...}): id -> {min, max, avg, sum, skew}.
     */
    public Map<String, JsonNode> subtaskMetrics(String jobId, String vertexId, List<String> ids) throws IOException {
        Map<String, JsonNode> out = new LinkedHashMap<>();
        if (ids.isEmpty()) return out;
        String get = URLEncoder.encode(String.join(",", ids), StandardCharsets.UTF_8).replace("+", "%20");
        for (JsonNode m : get("/jobs/" + jobId + "/vertices/" + vertexId + "/subtasks/metrics?get=" + get)) out.put(m.path("id").asText(), m);
        return out;
    }

    /** {@code GET /jobs/<id>/metrics?get=...} (job-level metrics such as numRestarts): id -> value. */
    public Map<String, String> jobMetrics(String jobId, List<String> ids) throws IOException {
        Map<String, String> out = new LinkedHashMap<>();
        String get = URLEncoder.encode(String.join(",", ids), StandardCharsets.UTF_8);
        for (JsonNode m : get("/jobs/" + jobId + "/metrics?get=" + get)) out.put(m.path("id").asText(), m.path("value").asText());
        return out;
    }

    /** {@code POST /jars/upload}, multipart form with the jar as "jarfile". */
    public Response uploadJar(Path jar) throws IOException {
        String boundary = "----dinostream" + UUID.randomUUID().toString().replace("-", "");
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        String head = "--" + boundary + "\r\n"
                + "Content-Disposition: form-data; name=\"jarfile\"; filename=\"" + jar.getFileName() + "\"\r\n"
                + "Content-Type: application/x-java-archive\r\n\r\n";
        body.write(head.getBytes(StandardCharsets.UTF_8));
        body.write(Files.readAllBytes(jar));
        body.write(("\r\n--" + boundary + "--\r\n").getBytes(StandardCharsets.UTF_8));
        return call("POST", "/jars/upload", HttpRequest.BodyPublishers.ofByteArray(body.toByteArray()),
                "multipart/form-data; boundary=" + boundary, Duration.ofSeconds(120));
    }

    /** The jar id ("filename" of {@code /jars/upload}'s answer, last path element). */
    public static String jarId(Response upload) {
        String f = upload.json().path("filename").asText();
        if (!upload.ok() || f.isEmpty()) throw new AssertionError("jar upload failed: HTTP " + upload.status + ": " + upload.body);
        return f.substring(f.lastIndexOf('/') + 1);
    }

    /** {@code POST /jars/<jarId>/run} with {@code {"programArgsList": [...]}}. */
    public Response runJar(String jarId, List<String> programArgs, Duration timeout) throws IOException {
        ObjectNode req = JSON.createObjectNode();
        var list = req.putArray("programArgsList");
        programArgs.forEach(list::add);
        return call("POST", "/jars/" + jarId + "/run", HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(req)),
                "application/json", timeout);
    }

    /** {@code PATCH /jobs/<id>?mode=cancel}. */
    public Response cancel(String jobId) throws IOException {
        return call("PATCH", "/jobs/" + jobId + "?mode=cancel", HttpRequest.BodyPublishers.noBody(), null, Duration.ofSeconds(20));
    }
}
