package dinostream.pipeline.snapshot;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Presets;
import dinostream.model.dino.StateKeys;
import dinostream.model.export.InferenceExport;
import dinostream.model.io.DinoState;
import dinostream.model.io.TensorData;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SnapshotStoreTest {
    private static final DinoConfig CFG = Presets.get("test");
    private static DinoState base;
    private static byte[] onnx;

    @TempDir
    Path dir;

    @BeforeAll
    static void exportOnce() {
        base = DinoState.init(CFG, 11);
        // The teacher is the same in every state below (only the step differs), so one export serves all.
        onnx = InferenceExport.backboneModel(base);
    }

    private static DinoState atStep(long step) {
        DinoState s = base.copy();
        s.put(StateKeys.STEP, TensorData.scalarLong(step));
        return s;
    }

    private static SnapshotInfo info(long images) {
        return new SnapshotInfo(images, Map.of(Manifest.LR, 1e-3, Manifest.WEIGHT_DECAY, 0.04, Manifest.TEACHER_TEMP, 0.04,
                Manifest.MOMENTUM, 0.996), Map.of("loss", 4.5, "teacher_entropy", 4.1, "kl", 0.3),
                Map.of("images-0", 100L, "images-1", 57L));
    }

    private SnapshotStore store(int keep) {
        return new SnapshotStore(dir.toUri().toString(), keep);
    }

    @Test
    void writeThenLoadRoundTrip() throws Exception {
        DinoState s = atStep(42);
        // A changed student and center must survive the round trip too.
        s.put(StateKeys.CENTER, TensorData.fullFloats(new long[]{1, CFG.outDim}, 0.25f));
        Instant before = Instant.now();
        SnapshotRef ref = store(5).write("cam-1", s, info(1344));   // exports the ONNX model itself

        Path folder = dir.resolve("cam-1").resolve("step-000000000042");
        assertEquals(folder.toUri().getPath().replaceAll("/$", ""), java.net.URI.create(ref.uri()).getPath());
        try (Stream<Path> files = Files.list(folder)) {
            assertEquals(List.of("manifest.json", "state.safetensors", "teacher-backbone.onnx"),
                    files.map(p -> p.getFileName().toString()).sorted().toList());
        }
        try (Stream<Path> entries = Files.list(dir.resolve("cam-1"))) {
            assertEquals(1, entries.count(), "the temporary folder is gone");
        }

        Snapshot back = SnapshotStore.load(ref.uri());
        assertEquals(s.tensors().keySet(), back.state().tensors().keySet());
        for (String k : s.tensors().keySet()) assertEquals(s.get(k), back.state().get(k), k);
        assertArrayEquals(InferenceExport.backboneModel(s), back.onnx());

        Manifest m = back.manifest();
        assertEquals(ref.manifest(), m);
        assertEquals("cam-1", m.modelId());
        assertEquals(42, m.step());
        assertEquals(1344, m.imagesSeen());
        assertEquals("test", m.preset());
        assertEquals(CFG.toJson(), m.dinoConfig().toJson());
        assertEquals(info(1).hyperparameters(), m.hyperparameters());
        assertEquals(4.5, m.metrics().get("loss"));
        assertEquals(Map.of("images-0", 100L, "images-1", 57L), m.kafkaOffsets());
        assertEquals(ModelVersion.of(s), m.modelVersion());
        assertFalse(m.created().isBefore(before.minusSeconds(1)));
        for (String f : Manifest.REQUIRED_FILES) {
            byte[] bytes = Files.readAllBytes(folder.resolve(f));
            assertEquals(bytes.length, m.files().get(f).bytes(), f);
            assertEquals(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes)), m.files().get(f).sha256(), f);
        }

        TeacherSnapshot t = SnapshotStore.loadTeacher(ref.uri());
        assertArrayEquals(back.onnx(), t.onnx());
        assertEquals(m, t.manifest());
        // A plain local path names the same snapshot.
        assertEquals(m, SnapshotStore.readManifest(folder.toString()));
    }

    @Test
    void keepsTheNewestK() throws Exception {
        SnapshotStore store = store(5);
        for (long step = 10; step <= 70; step += 10) store.write("m", atStep(step), info(step * 32), onnx);
        assertEquals(List.of(30L, 40L, 50L, 60L, 70L), store.list("m").stream().map(SnapshotRef::step).toList());
        assertFalse(Files.exists(dir.resolve("m/step-000000000010")));
        assertFalse(Files.exists(dir.resolve("m/step-000000000020")));
        assertTrue(Files.exists(dir.resolve("m/step-000000000030/manifest.json")));
        assertEquals(70, store.latest("m").orElseThrow().step());
        assertTrue(store.list("other").isEmpty());
        assertTrue(store.latest("other").isEmpty());
    }

    /** After a restore from an earlier checkpoint the job writes a lower step again: it is kept, and replaces an equal step. */
    @Test
    void aRewrittenStepReplacesTheOldOneAndIsKept() throws Exception {
        SnapshotStore store = store(2);
        store.write("m", atStep(10), info(1), onnx);
        store.write("m", atStep(20), info(2), onnx);
        SnapshotRef again = store.write("m", atStep(20), info(3), onnx);
        assertEquals(3, SnapshotStore.load(again.uri()).manifest().imagesSeen());
        store.write("m", atStep(15), info(4), onnx);
        assertEquals(List.of(15L, 20L), store.list("m").stream().map(SnapshotRef::step).toList());
    }

    @Test
    void leftoversOfACrashedWriteAreIgnoredAndCleanedUp() throws Exception {
        SnapshotStore store = store(5);
        store.write("m", atStep(10), info(1), onnx);
        Path model = dir.resolve("m");
        // A write that died before its rename (fresh), one that died long ago, and a folder whose
        // rename was interrupted on an object store (files copied, manifest not yet).
        long now = System.currentTimeMillis();
        Path fresh = model.resolve(".tmp-step-000000000020-" + now + "-" + UUID.randomUUID());
        Path stale = model.resolve(".tmp-step-000000000015-" + (now - 2 * 3600_000L) + "-" + UUID.randomUUID());
        Path halfCopied = model.resolve("step-000000000012");
        for (Path p : List.of(fresh, stale, halfCopied)) {
            Files.createDirectories(p);
            Files.write(p.resolve(Manifest.STATE_FILE), new byte[100]);
        }
        // A manifest that lists a file not (yet) there at its size is not complete either.
        Path partial = model.resolve("step-000000000030");
        Files.createDirectories(partial);
        Files.copy(model.resolve("step-000000000010/manifest.json"), partial.resolve("manifest.json"));

        assertEquals(List.of(10L), store.list("m").stream().map(SnapshotRef::step).toList());
        assertEquals(10, store.latest("m").orElseThrow().step());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SnapshotStore.load(halfCopied.toUri().toString()));
        assertTrue(e.getMessage().contains("is not a complete snapshot: it has no manifest.json"), e.getMessage());

        store.write("m", atStep(20), info(2), onnx);
        assertTrue(Files.exists(fresh), "a write younger than an hour may still be running");
        assertFalse(Files.exists(stale));
        assertFalse(Files.exists(halfCopied), "incomplete and below the step just written");
        assertTrue(Files.exists(partial), "above the step just written: left alone");
        assertEquals(List.of(10L, 20L), store.list("m").stream().map(SnapshotRef::step).toList());
    }

    @Test
    void aCorruptByteIsDetectedAndTheFileNamed() throws Exception {
        SnapshotRef ref = store(5).write("m", atStep(5), info(1), onnx);
        Path folder = dir.resolve("m/step-000000000005");

        flipLastByte(folder.resolve(Manifest.STATE_FILE));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SnapshotStore.load(ref.uri()));
        assertTrue(e.getMessage().contains("state.safetensors: SHA-256 mismatch"), e.getMessage());
        assertTrue(e.getMessage().contains(ref.manifest().files().get(Manifest.STATE_FILE).sha256()), e.getMessage());
        // The teacher alone does not read the state.
        SnapshotStore.loadTeacher(ref.uri());

        flipLastByte(folder.resolve(Manifest.ONNX_FILE));
        e = assertThrows(IllegalArgumentException.class, () -> SnapshotStore.loadTeacher(ref.uri()));
        assertTrue(e.getMessage().contains("teacher-backbone.onnx: SHA-256 mismatch"), e.getMessage());

        Files.write(folder.resolve(Manifest.ONNX_FILE), new byte[10]);
        e = assertThrows(IllegalArgumentException.class, () -> SnapshotStore.load(ref.uri()));
        assertTrue(e.getMessage().contains("teacher-backbone.onnx has 10 bytes, manifest.json lists " + onnx.length), e.getMessage());
    }

    @Test
    void aManifestWithoutAFieldGivesAClearError() throws Exception {
        SnapshotRef ref = store(5).write("m", atStep(5), info(1), onnx);
        Path manifest = dir.resolve("m/step-000000000005/manifest.json");
        ObjectMapper json = new ObjectMapper();
        ObjectNode o = (ObjectNode) json.readTree(manifest.toFile());
        o.remove("model_version");
        json.writeValue(manifest.toFile(), o);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SnapshotStore.load(ref.uri()));
        assertEquals(ref.uri() + "/manifest.json: missing field 'model_version'", e.getMessage());
        assertTrue(store(5).list("m").isEmpty(), "an invalid manifest does not count as a snapshot");
    }

    @Test
    void aManifestThatDisagreesWithTheStateIsRefused() throws Exception {
        SnapshotRef ref = store(5).write("m", atStep(5), info(1), onnx);
        // Another teacher's weights under this manifest: checksums re-pointed, version not.
        DinoState other = DinoState.init(CFG, 12);
        other.put(StateKeys.STEP, TensorData.scalarLong(5));
        Path folder = dir.resolve("m/step-000000000005");
        byte[] bytes = other.toBytes();
        Files.write(folder.resolve(Manifest.STATE_FILE), bytes);
        Manifest m = ref.manifest();
        Map<String, Manifest.FileEntry> files = new java.util.LinkedHashMap<>(m.files());
        files.put(Manifest.STATE_FILE, new Manifest.FileEntry(bytes.length,
                HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes))));
        Files.write(folder.resolve(Manifest.FILE), new Manifest(m.modelId(), m.step(), m.imagesSeen(), m.preset(), m.config(),
                m.hyperparameters(), m.metrics(), m.kafkaOffsets(), m.modelVersion(), m.created(), files).toJson());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SnapshotStore.load(ref.uri()));
        assertTrue(e.getMessage().contains("teacher weights hash to " + ModelVersion.of(other)), e.getMessage());
        assertNotEquals(ModelVersion.of(other), m.modelVersion());
    }

    @Test
    void unusableModelIdsAndKeepAreRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> store(5).write("../escape", atStep(1), info(1), onnx));
        assertTrue(e.getMessage().startsWith("model id '../escape' cannot name a snapshot folder"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> store(0));
        // Bad values in the trainer's info fail before anything is written.
        e = assertThrows(IllegalArgumentException.class,
                () -> new SnapshotInfo(1, Map.of(Manifest.LR, Double.NaN), Map.of(), Map.of()));
        assertEquals("field 'hyperparameters.lr' must be finite, got NaN", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new SnapshotInfo(1, Map.of(), Map.of(), Map.of("images", 3L)));
        assertEquals("field 'kafka_offsets' key 'images' is not \"topic-partition\"", e.getMessage());
    }

    private static void flipLastByte(Path p) throws IOException {
        byte[] b = Files.readAllBytes(p);
        b[b.length - 1] ^= 0x01;
        Files.write(p, b);
    }
}
