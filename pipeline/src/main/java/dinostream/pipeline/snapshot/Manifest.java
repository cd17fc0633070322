package dinostream.pipeline.snapshot;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.model.dino.DinoConfig;
import dinostream.model.export.InferenceExport;

import java.io.IOException;
import java.time.Instant;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@value #FILE} of a snapshot folder (../shared/DESIGN.md, "Formats"): what the snapshot is
 * (model, step, images seen, preset and configuration, hyperparameters and metrics at that step,
 * the Kafka offsets to resume from, the model version) and the size and SHA-256 of every other
 * file in the folder. It is written last, so a folder holding it (and the files it lists, at the
 * listed sizes) is complete.
 *
 * <p>JSON field names are snake_case: {@code format} ({@value #FORMAT}), {@code model_id},
 * {@code step}, {@code images_seen}, {@code preset} (null for a configuration not from a preset),
 * {@code config} (the {@link DinoConfig} object), {@code hyperparameters} and {@code metrics}
 * (name → number; metrics may be {@code "NaN"} or {@code "Infinity"}, since a diverging loss is
 * exactly what one wants to see), {@code kafka_offsets} ({@code "topic-partition"} → the next
 * offset to read), {@code model_version} ({@link ModelVersion}), {@code created} (ISO-8601) and
 * {@code files} (name → {@code {"bytes": n, "sha256": hex}}). Fields this version does not know
 * are ignored, so later writers of format 1 may add some; a different {@code format} is refused.
 *
 * @param preset       may be null
 * @param config       the configuration as a JSON object (the accessor returns a copy)
 * @param kafkaOffsets {@code "topic-partition"} → next offset to read; see {@link #offsetKey}
 */
public record Manifest(String modelId, long step, long imagesSeen, String preset, ObjectNode config,
                       Map<String, Double> hyperparameters, Map<String, Double> metrics,
                       Map<String, Long> kafkaOffsets, String modelVersion, Instant created,
                       Map<String, FileEntry> files) {

    public static final String FORMAT = "dinostream-snapshot/1";
    public static final String FILE = "manifest.json";
    public static final String STATE_FILE = "state.safetensors";
    public static final String ONNX_FILE = InferenceExport.BACKBONE_FILE;
    /** The files every snapshot of this format holds besides the manifest. */
    public static final List<String> REQUIRED_FILES = List.of(STATE_FILE, ONNX_FILE);

    /** Conventional hyperparameter names (the schedules' values at the snapshot's step). */
    public static final String LR = "lr", WEIGHT_DECAY = "weight_decay", TEACHER_TEMP = "teacher_temp", MOMENTUM = "momentum";

    /**
     * Model ids become folder names on every file system, so they are restricted to a portable
     * set: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128.
     */
    public static final Pattern MODEL_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");

    /** A file's name inside the snapshot folder: one plain path segment, not hidden. */
    static final Pattern FILE_NAME = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9._-]{0,254}");
    private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");
    private static final Pattern OFFSET_KEY = Pattern.compile("(.+)-(\\d{1,10})");

    private static final List<String> REQUIRED_FIELDS = List.of("format", "model_id", "step", "images_seen", "preset",
            "config", "hyperparameters", "metrics", "kafka_offsets", "model_version", "created", "files");

    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .disable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .build();

    /** One file of the snapshot: its size and the SHA-256 of its bytes (lower-case hex). */
    public record FileEntry(long bytes, String sha256) {
        public FileEntry {
            if (bytes < 0) throw new IllegalArgumentException("bytes must be >= 0, got " + bytes);
            if (sha256 == null || !SHA256.matcher(sha256).matches()) {
                throw new IllegalArgumentException("sha256 must be 64 lower-case hex digits, got " + quote(sha256));
            }
        }
    }

    /** Checks every field; the messages name the JSON field, so they read the same from {@link #parse}. */
    public Manifest {
        if (modelId == null || !MODEL_ID.matcher(modelId).matches()) {
            throw new IllegalArgumentException("field 'model_id' must match " + MODEL_ID.pattern() + ", got " + quote(modelId));
        }
        if (step < 0) throw new IllegalArgumentException("field 'step' must be >= 0, got " + step);
        if (imagesSeen < 0) throw new IllegalArgumentException("field 'images_seen' must be >= 0, got " + imagesSeen);
        if (config == null) throw new IllegalArgumentException("field 'config' is null");
        try {
            DinoConfig.fromJson(config.toString());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("field 'config': " + e.getMessage(), e);
        }
        config = config.deepCopy();
        hyperparameters = numbers("hyperparameters", hyperparameters, false);
        metrics = numbers("metrics", metrics, true);
        kafkaOffsets = offsets(kafkaOffsets);
        if (modelVersion == null || !ModelVersion.FORMAT.matcher(modelVersion).matches()) {
            throw new IllegalArgumentException("field 'model_version' must be 64 lower-case hex digits, got " + quote(modelVersion));
        }
        if (created == null) throw new IllegalArgumentException("field 'created' is null");
        files = files(files);
    }

    @Override
    public ObjectNode config() {
        return config.deepCopy();
    }

    /** The configuration the snapshot's state was trained with. */
    public DinoConfig dinoConfig() {
        return DinoConfig.fromJson(config.toString());
    }

    /** The configuration as the JSON object the manifest stores. */
    public static ObjectNode configJson(DinoConfig cfg) {
        try {
            return (ObjectNode) JSON.readTree(cfg.toJson());
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("DinoConfig.toJson gave invalid JSON", e);
        }
    }

    /** Sum of the listed files' sizes (the manifest itself not included). */
    public long filesBytes() {
        return files.values().stream().mapToLong(FileEntry::bytes).sum();
    }

    /** The {@code kafka_offsets} key of a partition: {@code topic + "-" + partition}, as Kafka names partitions. */
    public static String offsetKey(String topic, int partition) {
        if (topic == null || topic.isEmpty()) throw new IllegalArgumentException("empty topic name");
        if (partition < 0) throw new IllegalArgumentException("partition must be >= 0, got " + partition);
        return topic + "-" + partition;
    }

    /** The topic of an {@link #offsetKey} (topic names may themselves contain '-': the partition is after the last). */
    public static String offsetTopic(String key) {
        return offsetMatch(key).group(1);
    }

    public static int offsetPartition(String key) {
        return Integer.parseInt(offsetMatch(key).group(2));
    }

    /** Pretty-printed UTF-8 JSON, fields in a fixed order, ending with a newline. */
    public byte[] toJson() {
        ObjectNode o = JSON.createObjectNode();
        o.put("format", FORMAT);
        o.put("model_id", modelId);
        o.put("step", step);
        o.put("images_seen", imagesSeen);
        o.put("preset", preset);
        o.put("model_version", modelVersion);
        o.put("created", DateTimeFormatter.ISO_INSTANT.format(created));
        ObjectNode h = o.putObject("hyperparameters");
        hyperparameters.forEach(h::put);
        ObjectNode m = o.putObject("metrics");
        // Written as strings: JSON has no NaN or Infinity, and Jackson's default would depend on a feature flag.
        metrics.forEach((k, v) -> {
            if (Double.isFinite(v)) m.put(k, v);
            else m.put(k, v.toString());
        });
        ObjectNode k = o.putObject("kafka_offsets");
        kafkaOffsets.forEach(k::put);
        ObjectNode f = o.putObject("files");
        files.forEach((name, e) -> f.putObject(name).put("bytes", e.bytes()).put("sha256", e.sha256()));
        o.set("config", config.deepCopy());
        try {
            byte[] json = JSON.writeValueAsBytes(o);
            byte[] out = new byte[json.length + 1];
            System.arraycopy(json, 0, out, 0, json.length);
            out[json.length] = '\n';
            return out;
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot encode a manifest", e);
        }
    }

    /**
     * Reads and checks a manifest.
     *
     * @param source names the manifest in errors (e.g. its URI)
     * @throws IllegalArgumentException one line starting with {@code source}: not JSON, another
     *     format, a missing field, a field of the wrong type or out of range
     */
    public static Manifest parse(byte[] json, String source) {
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (IOException e) {
            String m = e instanceof JsonProcessingException j ? j.getOriginalMessage() : e.getMessage();
            throw bad(source, "not valid JSON: " + (m == null ? "" : m.replaceAll("\\s*\\R\\s*", " ")));
        }
        if (root == null || !root.isObject()) throw bad(source, "not a JSON object");
        for (String f : REQUIRED_FIELDS) {
            if (!root.has(f)) throw bad(source, "missing field '" + f + "'");
        }
        String format = root.get("format").isTextual() ? root.get("format").textValue() : root.get("format").toString();
        if (!FORMAT.equals(format)) throw bad(source, "format " + quote(format) + " is not supported (this version reads " + FORMAT + ")");
        try {
            JsonNode preset = root.get("preset");
            if (!preset.isNull() && !preset.isTextual()) throw field("preset", "must be a string or null", preset);
            JsonNode config = root.get("config");
            if (!config.isObject()) throw field("config", "must be an object", config);
            Instant created;
            try {
                created = DateTimeFormatter.ISO_OFFSET_DATE_TIME.parse(text(root, "created"), Instant::from);
            } catch (DateTimeParseException e) {
                throw field("created", "must be an ISO-8601 date-time with offset", root.get("created"));
            }
            return new Manifest(text(root, "model_id"), nonNegative(root, "step"), nonNegative(root, "images_seen"),
                    preset.isNull() ? null : preset.textValue(), (ObjectNode) config,
                    readNumbers(root, "hyperparameters"), readNumbers(root, "metrics"), readOffsets(root),
                    text(root, "model_version"), created, readFiles(root));
        } catch (IllegalArgumentException e) {
            throw bad(source, e.getMessage());
        }
    }

    // ------------------------------------------------------------------ validation of the Java values

    static Map<String, Double> numbers(String field, Map<String, Double> in, boolean nonFiniteAllowed) {
        if (in == null) throw new IllegalArgumentException("field '" + field + "' is null");
        Map<String, Double> out = new LinkedHashMap<>();
        in.forEach((k, v) -> {
            if (k == null || k.isEmpty()) throw new IllegalArgumentException("field '" + field + "' has an empty name");
            if (v == null) throw new IllegalArgumentException("field '" + field + "." + k + "' is null");
            if (!nonFiniteAllowed && !Double.isFinite(v)) {
                throw new IllegalArgumentException("field '" + field + "." + k + "' must be finite, got " + v);
            }
            out.put(k, v);
        });
        return Collections.unmodifiableMap(out);
    }

    /** Sorted by topic, then partition number, so the file reads naturally ("t-2" before "t-10"). */
    static Map<String, Long> offsets(Map<String, Long> in) {
        if (in == null) throw new IllegalArgumentException("field 'kafka_offsets' is null");
        List<String> keys = new ArrayList<>();
        for (Map.Entry<String, Long> e : in.entrySet()) {
            String k = e.getKey();
            if (k == null || !OFFSET_KEY.matcher(k).matches()) {
                throw new IllegalArgumentException("field 'kafka_offsets' key " + quote(k) + " is not \"topic-partition\"");
            }
            if (e.getValue() == null || e.getValue() < 0) {
                throw new IllegalArgumentException("field 'kafka_offsets." + k + "' must be an offset >= 0, got " + e.getValue());
            }
            keys.add(k);
        }
        keys.sort(Comparator.comparing(Manifest::offsetTopic).thenComparingInt(Manifest::offsetPartition));
        Map<String, Long> out = new LinkedHashMap<>();
        for (String k : keys) out.put(k, in.get(k));
        return Collections.unmodifiableMap(out);
    }

    private static Map<String, FileEntry> files(Map<String, FileEntry> in) {
        if (in == null) throw new IllegalArgumentException("field 'files' is null");
        Map<String, FileEntry> out = new LinkedHashMap<>();
        in.forEach((name, e) -> {
            if (name == null || !FILE_NAME.matcher(name).matches() || name.equals(FILE)) {
                throw new IllegalArgumentException("field 'files' lists an invalid file name " + quote(name));
            }
            if (e == null) throw new IllegalArgumentException("field 'files." + name + "' is null");
            out.put(name, e);
        });
        for (String f : REQUIRED_FILES) {
            if (!out.containsKey(f)) throw new IllegalArgumentException("field 'files' does not list " + f);
        }
        return Collections.unmodifiableMap(out);
    }

    private static Matcher offsetMatch(String key) {
        Matcher m = OFFSET_KEY.matcher(key == null ? "" : key);
        if (!m.matches()) throw new IllegalArgumentException(quote(key) + " is not \"topic-partition\"");
        return m;
    }

    // ------------------------------------------------------------------ reading the JSON tree

    private static String text(JsonNode root, String f) {
        return textValue(root.get(f), f);
    }

    private static String textValue(JsonNode n, String name) {
        if (!n.isTextual()) throw field(name, "must be a string", n);
        return n.textValue();
    }

    private static long nonNegative(JsonNode root, String f) {
        return nonNegativeValue(root.get(f), f);
    }

    private static long nonNegativeValue(JsonNode n, String name) {
        if (!n.isIntegralNumber() || !n.canConvertToLong() || n.longValue() < 0) throw field(name, "must be an integer >= 0", n);
        return n.longValue();
    }

    private static Map<String, Double> readNumbers(JsonNode root, String f) {
        JsonNode n = root.get(f);
        if (!n.isObject()) throw field(f, "must be an object of numbers", n);
        Map<String, Double> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : n.properties()) {
            JsonNode v = e.getValue();
            if (v.isNumber()) out.put(e.getKey(), v.doubleValue());
            else if (v.isTextual() && NON_FINITE.contains(v.textValue())) out.put(e.getKey(), Double.valueOf(v.textValue()));
            else throw field(f + "." + e.getKey(), "must be a number", v);
        }
        return out;
    }

    private static final Set<String> NON_FINITE = Set.of("NaN", "Infinity", "-Infinity");

    private static Map<String, Long> readOffsets(JsonNode root) {
        JsonNode n = root.get("kafka_offsets");
        if (!n.isObject()) throw field("kafka_offsets", "must be an object", n);
        Map<String, Long> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : n.properties()) {
            JsonNode v = e.getValue();
            if (!v.isIntegralNumber() || !v.canConvertToLong()) throw field("kafka_offsets." + e.getKey(), "must be an integer", v);
            out.put(e.getKey(), v.longValue());
        }
        return out;
    }

    private static Map<String, FileEntry> readFiles(JsonNode root) {
        JsonNode n = root.get("files");
        if (!n.isObject()) throw field("files", "must be an object", n);
        Map<String, FileEntry> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : n.properties()) {
            String f = "files." + e.getKey();
            JsonNode v = e.getValue();
            if (!v.isObject()) throw field(f, "must be an object with bytes and sha256", v);
            if (!v.has("bytes")) throw new IllegalArgumentException("missing field '" + f + ".bytes'");
            if (!v.has("sha256")) throw new IllegalArgumentException("missing field '" + f + ".sha256'");
            long bytes = nonNegativeValue(v.get("bytes"), f + ".bytes");
            String sha = textValue(v.get("sha256"), f + ".sha256");
            try {
                out.put(e.getKey(), new FileEntry(bytes, sha));
            } catch (IllegalArgumentException x) {
                throw new IllegalArgumentException("field '" + f + "': " + x.getMessage(), x);
            }
        }
        return out;
    }

    private static IllegalArgumentException field(String f, String rule, JsonNode got) {
        String shown = got.toString();
        if (shown.length() > 80) shown = shown.substring(0, 77) + "...";
        return new IllegalArgumentException("field '" + f + "' " + rule + ", got " + shown);
    }

    private static IllegalArgumentException bad(String source, String problem) {
        return new IllegalArgumentException(source + ": " + problem);
    }

    private static String quote(String s) {
        return s == null ? "null" : "'" + s + "'";
    }
}
