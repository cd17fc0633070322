package dinostream.pipeline.snapshot;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.ParamSpec;
import dinostream.model.dino.Presets;
import dinostream.model.dino.StateKeys;
import dinostream.model.io.DinoState;
import dinostream.model.io.TensorData;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelVersionTest {
    private static final DinoConfig CFG = Presets.get("test");

    @Test
    void equalTeachersGiveEqualVersions() {
        String a = ModelVersion.of(DinoState.init(CFG, 1));
        String b = ModelVersion.of(DinoState.init(CFG, 1));
        assertEquals(a, b);
        assertTrue(ModelVersion.FORMAT.matcher(a).matches(), a);
        assertNotEquals(a, ModelVersion.of(DinoState.init(CFG, 2)));
    }

    @Test
    void oneChangedTeacherValueChangesTheVersion() {
        DinoState s = DinoState.init(CFG, 1);
        String before = ModelVersion.of(s);
        String key = StateKeys.teacher("backbone.blocks.1.mlp.fc2.bias");
        s.put(key, withFirstValue(s.get(key), 1e-7f));
        assertNotEquals(before, ModelVersion.of(s));
    }

    @Test
    void studentOptimizerCenterAndStepDoNotChangeTheVersion() {
        DinoState s = DinoState.init(CFG, 1);
        String before = ModelVersion.of(s);
        String p = "backbone.blocks.0.attn.qkv.weight";
        s.put(StateKeys.student(p), withFirstValue(s.get(StateKeys.student(p)), 0.5f));
        s.put(StateKeys.expAvg(p), withFirstValue(s.get(StateKeys.expAvg(p)), 0.5f));
        s.put(StateKeys.expAvgSq(p), withFirstValue(s.get(StateKeys.expAvgSq(p)), 0.5f));
        s.put(StateKeys.optimStep(p), TensorData.scalarLong(9));
        s.put(StateKeys.CENTER, withFirstValue(s.get(StateKeys.CENTER), 0.5f));
        s.put(StateKeys.STEP, TensorData.scalarLong(1234));
        assertEquals(before, ModelVersion.of(s));
    }

    /** The encoding the class comment documents, written out independently, so other tools can reproduce it. */
    @Test
    void isTheDocumentedEncoding() throws Exception {
        DinoState s = DinoState.init(CFG, 3);
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        for (ParamSpec p : ParamSpec.of(CFG)) {
            TensorData t = s.get("teacher/" + p.name());
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            byte[] name = p.name().getBytes(StandardCharsets.UTF_8);
            writeIntLE(b, name.length);
            b.write(name);
            writeIntLE(b, p.shape().length);
            for (long d : p.shape()) writeLongLE(b, d);
            writeLongLE(b, t.byteSize());
            md.update(b.toByteArray());
            byte[] data = new byte[(int) t.byteSize()];
            t.data().get(data);
            md.update(data);
        }
        assertEquals(HexFormat.of().formatHex(md.digest()), ModelVersion.of(s));
    }

    private static TensorData withFirstValue(TensorData t, float delta) {
        float[] v = t.toFloatArray();
        v[0] += delta;
        return TensorData.ofFloats(t.shape(), v);
    }

    private static void writeIntLE(ByteArrayOutputStream b, int v) throws IOException {
        new DataOutputStream(b).writeInt(Integer.reverseBytes(v));
    }

    private static void writeLongLE(ByteArrayOutputStream b, long v) throws IOException {
        new DataOutputStream(b).writeLong(Long.reverseBytes(v));
    }
}
