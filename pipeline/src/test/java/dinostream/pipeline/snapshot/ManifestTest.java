package dinostream.pipeline.snapshot;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Presets;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ManifestTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String SHA_A = "a".repeat(64), SHA_B = "b".repeat(64);

    static Manifest sample() {
        DinoConfig cfg = Presets.get("test");
        Map<String, Long> offsets = new LinkedHashMap<>();
        offsets.put("images-10", 5L);
        offsets.put("images-2", 7L);
        offsets.put("my-images-0", 3L);
        Map<String, Manifest.FileEntry> files = new LinkedHashMap<>();
        files.put(Manifest.STATE_FILE, new Manifest.FileEntry(1000, SHA_A));
        files.put(Manifest.ONNX_FILE, new Manifest.FileEntry(200, SHA_B));
        return new Manifest("cam-7", 42, 1344, cfg.preset, Manifest.configJson(cfg),
                Map.of(Manifest.LR, 5e-4, Manifest.MOMENTUM, 0.996),
                Map.of("loss", 8.25, "kl", Double.NaN, "teacher_entropy", Double.POSITIVE_INFINITY),
                offsets, "c".repeat(64), Instant.parse("2026-01-02T03:04:05.678Z"), files);
    }

    @Test
    void jsonRoundTripWithSnakeCaseNames() throws Exception {
        Manifest m = sample();
        byte[] json = m.toJson();
        Manifest back = Manifest.parse(json, "test");
        assertEquals(m, back);
        assertTrue(Double.isNaN(back.metrics().get("kl")));
        ObjectNode tree = (ObjectNode) JSON.readTree(json);
        assertEquals(Manifest.FORMAT, tree.get("format").textValue());
        assertEquals("cam-7", tree.get("model_id").textValue());
        assertEquals(1344, tree.get("images_seen").longValue());
        assertEquals(32, tree.get("config").get("dim").intValue());
        assertEquals("2026-01-02T03:04:05.678Z", tree.get("created").textValue());
        assertEquals(SHA_A, tree.get("files").get(Manifest.STATE_FILE).get("sha256").textValue());
        // Offsets sort by topic, then partition as a number.
        assertEquals(List.of("images-2", "images-10", "my-images-0"), List.copyOf(back.kafkaOffsets().keySet()));
        assertEquals("my-images", Manifest.offsetTopic("my-images-0"));
        assertEquals(10, Manifest.offsetPartition("images-10"));
        assertEquals(Presets.get("test").toJson(), back.dinoConfig().toJson());
    }

    @Test
    void missingFieldIsNamed() throws Exception {
        for (String f : List.of("format", "model_id", "step", "images_seen", "preset", "config", "hyperparameters",
                "metrics", "kafka_offsets", "model_version", "created", "files")) {
            String msg = parseEdited(o -> o.remove(f));
            assertEquals("s3://b/m/step-000000000042/manifest.json: missing field '" + f + "'", msg);
        }
        String msg = parseEdited(o -> ((ObjectNode) o.get("files").get(Manifest.ONNX_FILE)).remove("sha256"));
        assertTrue(msg.endsWith("missing field 'files.teacher-backbone.onnx.sha256'"), msg);
    }

    @Test
    void badValuesAreNamed() throws Exception {
        assertTrue(parseEdited(o -> o.put("step", -1)).contains("field 'step' must be an integer >= 0, got -1"));
        assertTrue(parseEdited(o -> o.put("step", "12")).contains("field 'step' must be an integer >= 0, got \"12\""));
        assertTrue(parseEdited(o -> o.put("format", "dinostream-snapshot/2")).contains("format 'dinostream-snapshot/2' is not supported"));
        assertTrue(parseEdited(o -> o.put("created", "yesterday")).contains("field 'created' must be an ISO-8601"));
        assertTrue(parseEdited(o -> o.put("model_version", "xyz")).contains("field 'model_version' must be 64 lower-case hex"));
        assertTrue(parseEdited(o -> ((ObjectNode) o.get("kafka_offsets")).put("nopartition", 1)).contains("'nopartition' is not \"topic-partition\""));
        assertTrue(parseEdited(o -> ((ObjectNode) o.get("hyperparameters")).put("lr", "fast")).contains("field 'hyperparameters.lr' must be a number"));
        assertTrue(parseEdited(o -> ((ObjectNode) o.get("files")).remove(Manifest.STATE_FILE)).contains("field 'files' does not list state.safetensors"));
        assertTrue(parseEdited(o -> ((ObjectNode) o.get("files").get(Manifest.STATE_FILE)).put("sha256", "ABC"))
                .contains("field 'files.state.safetensors': sha256 must be 64 lower-case hex digits"));
        assertTrue(parseEdited(o -> ((ObjectNode) o.get("config")).put("dim", 33)).contains("field 'config': invalid configuration"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Manifest.parse("{\"format\": ".getBytes(StandardCharsets.UTF_8), "m.json"));
        assertTrue(e.getMessage().startsWith("m.json: not valid JSON"), e.getMessage());
    }

    /** The sample, with maps in a fixed order (Map.of's order changes from one JVM to the next). */
    static Manifest golden() {
        Manifest m = sample();
        Map<String, Double> h = new LinkedHashMap<>();
        h.put(Manifest.LR, 5e-4);
        h.put(Manifest.WEIGHT_DECAY, 0.04);
        h.put(Manifest.TEACHER_TEMP, 0.04);
        h.put(Manifest.MOMENTUM, 0.996);
        Map<String, Double> x = new LinkedHashMap<>();
        x.put("loss", 8.25);
        x.put("teacher_entropy", Double.POSITIVE_INFINITY);
        x.put("kl", Double.NaN);
        x.put("drift", Double.NEGATIVE_INFINITY);
        x.put("big", 1e300);
        x.put("int", 3.0);
        return new Manifest(m.modelId(), m.step(), m.imagesSeen(), m.preset(), m.config(), h, x, m.kafkaOffsets(),
                m.modelVersion(), m.created(), m.files());
    }

    /** manifest-v1*.json were written by the hand-written writer this version replaced: same bytes, both ways. */
    @Test
    void readsAndWritesTheBytesOfEarlierVersions() throws Exception {
        byte[] v1 = resource("manifest-v1.json");
        assertEquals(new String(v1, StandardCharsets.UTF_8), new String(golden().toJson(), StandardCharsets.UTF_8));
        Manifest back = Manifest.parse(v1, "v1");
        assertEquals(golden(), back);
        assertEquals(List.copyOf(golden().metrics().keySet()), List.copyOf(back.metrics().keySet()));
        assertEquals(Double.NEGATIVE_INFINITY, back.metrics().get("drift"));

        byte[] noPreset = resource("manifest-v1-no-preset.json");
        Manifest m = Manifest.parse(noPreset, "v1");
        assertEquals(null, m.preset());
        assertTrue(m.hyperparameters().isEmpty() && m.metrics().isEmpty() && m.kafkaOffsets().isEmpty());
        assertEquals(new String(noPreset, StandardCharsets.UTF_8), new String(m.toJson(), StandardCharsets.UTF_8));
    }

    @Test
    void wrongTypesAreNamedWithTheValueFound() throws Exception {
        assertTrue(parseEdited(o -> o.put("model_id", 7)).endsWith("field 'model_id' must be a string, got 7"));
        assertTrue(parseEdited(o -> o.put("preset", true)).endsWith("field 'preset' must be a string, got true"));
        assertTrue(parseEdited(o -> o.put("step", 1.5)).endsWith("field 'step' must be an integer >= 0, got 1.5"));
        assertTrue(parseEdited(o -> o.putNull("step")).endsWith("field 'step' must be an integer >= 0, got null"));
        assertTrue(parseEdited(o -> o.put("images_seen", new java.math.BigInteger("99999999999999999999")))
                .endsWith("field 'images_seen' must be an integer >= 0, got 99999999999999999999"));
        assertTrue(parseEdited(o -> o.putArray("config")).endsWith("field 'config' must be an object, got []"));
        assertTrue(parseEdited(o -> o.putNull("config")).endsWith("field 'config' must be an object, got null"));
        assertTrue(parseEdited(o -> o.put("metrics", "none")).endsWith("field 'metrics' must be an object, got \"none\""));
        assertTrue(parseEdited(o -> ((ObjectNode) o.get("metrics")).put("loss", "lots")).endsWith("field 'metrics.loss' must be a number, got \"lots\""));
        assertTrue(parseEdited(o -> ((ObjectNode) o.get("hyperparameters")).put("lr", true)).endsWith("field 'hyperparameters.lr' must be a number, got true"));
        assertTrue(parseEdited(o -> ((ObjectNode) o.get("hyperparameters")).put("lr", "NaN")).endsWith("field 'hyperparameters.lr' must be finite, got NaN"));
        assertTrue(parseEdited(o -> ((ObjectNode) o.get("kafka_offsets")).put("images-2", "7")).endsWith("field 'kafka_offsets.images-2' must be an integer >= 0, got \"7\""));
        assertTrue(parseEdited(o -> ((ObjectNode) o.get("kafka_offsets")).put("images-2", -1)).endsWith("field 'kafka_offsets.images-2' must be an offset >= 0, got -1"));
        assertTrue(parseEdited(o -> ((ObjectNode) o.get("files")).put(Manifest.STATE_FILE, "x")).endsWith("field 'files.state.safetensors' must be an object with bytes and sha256, got \"x\""));
        assertTrue(parseEdited(o -> ((ObjectNode) o.get("files").get(Manifest.STATE_FILE)).put("bytes", -3)).endsWith("field 'files.state.safetensors': bytes must be >= 0, got -3"));
        assertTrue(parseEdited(o -> ((ObjectNode) o.get("files")).putObject("../x").put("bytes", 1).put("sha256", SHA_A)).endsWith("field 'files' lists an invalid file name '../x'"));
        assertTrue(parseEdited(o -> o.put("created", 1700000000)).endsWith("field 'created' must be an ISO-8601 date-time with offset, got 1700000000"));
        assertEquals("m.json: missing field 'format'", assertThrows(IllegalArgumentException.class,
                () -> Manifest.parse("{}".getBytes(StandardCharsets.UTF_8), "m.json")).getMessage());
        assertTrue(parseEdited(o -> o.put("format", 1)).endsWith("format '1' is not supported (this version reads dinostream-snapshot/1)"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Manifest.parse("[1]".getBytes(StandardCharsets.UTF_8), "m.json"))
                .getMessage().endsWith("not a JSON object"));
        String dup = new String(sample().toJson(), StandardCharsets.UTF_8).replaceFirst("\"step\" : 42,", "\"step\" : 42, \"step\" : 43,");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Manifest.parse(dup.getBytes(StandardCharsets.UTF_8), "m.json"))
                .getMessage().contains("Duplicate field 'step'"));
    }

    @Test
    void createdAcceptsAnyOffsetAndIsWrittenInUtc() throws Exception {
        ObjectNode o = (ObjectNode) JSON.readTree(sample().toJson());
        o.put("created", "2026-01-02T05:04:05.678+02:00");
        Manifest m = Manifest.parse(JSON.writeValueAsBytes(o), "x");
        assertEquals(sample().created(), m.created());
        assertTrue(new String(m.toJson(), StandardCharsets.UTF_8).contains("\"created\" : \"2026-01-02T03:04:05.678Z\""));
    }

    private static byte[] resource(String name) throws Exception {
        try (var in = ManifestTest.class.getResourceAsStream("/snapshot/" + name)) {
            return in.readAllBytes();
        }
    }

    @Test
    void unknownFieldsAreIgnored() throws Exception {
        ObjectNode o = (ObjectNode) JSON.readTree(sample().toJson());
        o.put("added_later", true);
        assertEquals(sample(), Manifest.parse(JSON.writeValueAsBytes(o), "x"));
    }

    @Test
    void constructorRejectsUnusableValues() {
        Manifest m = sample();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Manifest("../up", m.step(),
                m.imagesSeen(), m.preset(), m.config(), m.hyperparameters(), m.metrics(), m.kafkaOffsets(), m.modelVersion(),
                m.created(), m.files()));
        assertTrue(e.getMessage().startsWith("field 'model_id' must match"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Manifest(m.modelId(), m.step(), m.imagesSeen(), m.preset(),
                m.config(), Map.of(Manifest.LR, Double.NaN), m.metrics(), m.kafkaOffsets(), m.modelVersion(), m.created(), m.files()));
        assertEquals("field 'hyperparameters.lr' must be finite, got NaN", e.getMessage());
    }

    private static String parseEdited(Consumer<ObjectNode> edit) throws Exception {
        ObjectNode o = (ObjectNode) JSON.readTree(sample().toJson());
        edit.accept(o);
        byte[] json = JSON.writeValueAsBytes(o);
        return assertThrows(IllegalArgumentException.class,
                () -> Manifest.parse(json, "s3://b/m/step-000000000042/manifest.json")).getMessage();
    }
}
