package dinostream.pipeline.snapshot;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonPointer;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.exc.InputCoercionException;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.annotation.JsonDeserialize;
import com.fasterxml.jackson.databind.annotation.JsonSerialize;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.deser.std.StdScalarDeserializer;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.ValueInstantiationException;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.ser.std.ToStringSerializer;
import com.fasterxml.jackson.databind.type.LogicalType;
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
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@value #FILE} of a snapshot folder (pipeline/docs/snapshots.md): what the snapshot is (model,
 * step, images seen, preset and configuration, hyperparameters and metrics at that step, the
 * Kafka offsets to resume from, the model version) and the size and SHA-256 of every other file in
 * the folder. It is written last, so a folder holding it (and the files it lists, at the listed
 * sizes) is complete.
 *
 * <p>Jackson binds the JSON onto this record and {@link FileEntry}; the compact constructors check
 * every value, and {@link #parse} turns any failure into one line naming the JSON field. Field
 * names are snake_case: {@code format} ({@value #FORMAT}, checked before anything else is read),
 * {@code model_id}, {@code step}, {@code images_seen}, {@code preset} (null for a configuration not
 * from a preset), {@code model_version} ({@link ModelVersion}), {@code created} (ISO-8601, written
 * in UTC), {@code hyperparameters} and {@code metrics} (name → number; metrics may be
 * {@code "NaN"}, {@code "Infinity"} or {@code "-Infinity"}, since a diverging loss is exactly what
 * one wants to see), {@code kafka_offsets} ({@code "topic-partition"} → the next offset to read),
 * {@code files} (name → {@code {"bytes": n, "sha256": hex}}) and {@code config} (the
 * {@link DinoConfig} object). Every one of them must be present; fields this version does not know
 * are ignored, so later writers of format 1 may add some; a different {@code format} is refused.
 *
 * @param preset       may be null
 * @param config       the configuration as a JSON object (the accessor returns a copy)
 * @param kafkaOffsets {@code "topic-partition"} → next offset to read; see {@link #offsetKey}
 */
@JsonPropertyOrder({"format", "model_id", "step", "images_seen", "preset", "model_version", "created",
        "hyperparameters", "metrics", "kafka_offsets", "files", "config"})
@JsonIgnoreProperties(ignoreUnknown = true)
public record Manifest(@JsonProperty(value = "model_id", required = true) String modelId,
                       @JsonProperty(value = "step", required = true) long step,
                       @JsonProperty(value = "images_seen", required = true) long imagesSeen,
                       @JsonProperty(value = "preset", required = true) String preset,
                       @JsonProperty(value = "config", required = true) ObjectNode config,
                       @JsonProperty(value = "hyperparameters", required = true) Map<String, Double> hyperparameters,
                       @JsonProperty(value = "metrics", required = true) Map<String, Double> metrics,
                       @JsonProperty(value = "kafka_offsets", required = true) Map<String, Long> kafkaOffsets,
                       @JsonProperty(value = "model_version", required = true) String modelVersion,
                       @JsonProperty(value = "created", required = true)
                       @JsonSerialize(using = ToStringSerializer.class)   // Instant.toString is ISO_INSTANT
                       @JsonDeserialize(using = IsoDateTime.class) Instant created,
                       @JsonProperty(value = "files", required = true) Map<String, FileEntry> files) {

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

    /**
     * Strict types: no string for a number or a number for a string, no fraction for an integer,
     * no null for a count; no NaN token in the JSON (non-finite metrics are written as strings).
     */
    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .disable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
            .enable(JsonWriteFeature.WRITE_NAN_AS_STRINGS)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
            .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT)
            .disable(MapperFeature.ALLOW_COERCION_OF_SCALARS)
            .withCoercionConfig(LogicalType.Textual, c -> c.setCoercion(CoercionInputShape.Integer, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.Float, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.Boolean, CoercionAction.Fail))
            .enable(SerializationFeature.INDENT_OUTPUT)
            .build();

    /** One file of the snapshot: its size and the SHA-256 of its bytes (lower-case hex). */
    @JsonIgnoreProperties(ignoreUnknown = true)
    public record FileEntry(@JsonProperty(value = "bytes", required = true) long bytes,
                            @JsonProperty(value = "sha256", required = true) String sha256) {
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
        if (step < 0) throw new IllegalArgumentException("field 'step' must be an integer >= 0, got " + step);
        if (imagesSeen < 0) throw new IllegalArgumentException("field 'images_seen' must be an integer >= 0, got " + imagesSeen);
        if (config == null) throw new IllegalArgumentException("field 'config' must be an object, got null");
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

    /** The {@code format} field, first in the file. */
    @JsonProperty("format")
    public String format() {
        return FORMAT;
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

    /** Pretty-printed UTF-8 JSON, fields in the order of {@link JsonPropertyOrder} above, ending with a newline. */
    public byte[] toJson() {
        try {
            byte[] json = JSON.writeValueAsBytes(this);
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
        JsonNode format = root.get("format");
        if (format == null) throw bad(source, "missing field 'format'");
        String f = format.isTextual() ? format.textValue() : format.toString();
        if (!FORMAT.equals(f)) throw bad(source, "format " + quote(f) + " is not supported (this version reads " + FORMAT + ")");
        try {
            return JSON.treeToValue(root, Manifest.class);
        } catch (JsonMappingException e) {
            throw bad(source, problem(e, root));
        } catch (JsonProcessingException | IllegalArgumentException e) {
            throw bad(source, e.getMessage());
        }
    }

    // ------------------------------------------------------------------ validation of the Java values

    static Map<String, Double> numbers(String field, Map<String, Double> in, boolean nonFiniteAllowed) {
        if (in == null) throw new IllegalArgumentException("field '" + field + "' is null");
        Map<String, Double> out = new LinkedHashMap<>();
        in.forEach((k, v) -> {
            if (k == null || k.isEmpty()) throw new IllegalArgumentException("field '" + field + "' has an empty name");
            if (v == null) throw new IllegalArgumentException("field '" + field + "." + k + "' must be a number, got null");
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

    // ------------------------------------------------------------------ Jackson's failures as one line naming the field

    /**
     * What went wrong, from where Jackson stopped: the JSON path of the failure names the field, the
     * tree shows the value found there, and the Java type it was bound to says what was expected.
     */
    private static String problem(JsonMappingException e, JsonNode root) {
        StringBuilder field = new StringBuilder();
        JsonPointer at = JsonPointer.empty();
        for (JsonMappingException.Reference r : e.getPath()) {
            if (r.getFieldName() != null) {
                field.append(field.length() == 0 ? "" : ".").append(r.getFieldName());
                at = at.appendProperty(r.getFieldName());
            } else {
                field.append('[').append(r.getIndex()).append(']');
                at = at.appendIndex(r.getIndex());
            }
        }
        if (e instanceof ValueInstantiationException && e.getCause() instanceof IllegalArgumentException c) {
            // A compact constructor refused the value; the Manifest's own messages already name their field.
            return field.length() == 0 ? c.getMessage() : "field '" + field + "': " + c.getMessage();
        }
        JsonNode got = root.at(at);
        if (got.isMissingNode()) return "missing field '" + field + "'";
        Class<?> expected = e instanceof MismatchedInputException m && m.getTargetType() != null ? m.getTargetType()
                : e.getCause() instanceof InputCoercionException c ? c.getTargetType() : null;
        String shown = got.toString();
        if (shown.length() > 80) shown = shown.substring(0, 77) + "...";
        return "field '" + field + "' " + expectation(expected, e) + ", got " + shown;
    }

    private static String expectation(Class<?> type, JsonMappingException e) {
        if (type == long.class || type == Long.class) return "must be an integer >= 0";
        if (type == Double.class || type == double.class) return "must be a number";
        if (type == String.class) return "must be a string";
        if (type == Instant.class) return "must be an ISO-8601 date-time with offset";
        if (type == FileEntry.class) return "must be an object with bytes and sha256";
        if (type != null && (ObjectNode.class.isAssignableFrom(type) || Map.class.isAssignableFrom(type))) return "must be an object";
        return "is invalid (" + e.getOriginalMessage().replaceAll("\\s*\\R\\s*", " ") + ")";
    }

    /** {@code created}: an ISO-8601 date-time with an offset (written as UTC, read from any offset). */
    static final class IsoDateTime extends StdScalarDeserializer<Instant> {
        IsoDateTime() {
            super(Instant.class);
        }

        @Override
        public Instant deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
            if (p.currentToken() == JsonToken.VALUE_STRING) {
                try {
                    return DateTimeFormatter.ISO_OFFSET_DATE_TIME.parse(p.getText(), Instant::from);
                } catch (DateTimeParseException e) {
                    // reported below, like any other value that is not a date-time
                }
            }
            throw MismatchedInputException.from(p, Instant.class, "not an ISO-8601 date-time with offset");
        }
    }

    private static IllegalArgumentException bad(String source, String problem) {
        return new IllegalArgumentException(source + ": " + problem);
    }

    private static String quote(String s) {
        return s == null ? "null" : "'" + s + "'";
    }
}
