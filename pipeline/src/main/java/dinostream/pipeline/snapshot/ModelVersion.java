package dinostream.pipeline.snapshot;

import dinostream.model.dino.ParamSpec;
import dinostream.model.dino.StateKeys;
import dinostream.model.io.DinoState;
import dinostream.model.io.TensorData;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.regex.Pattern;

/**
 * The model version stamped on embeddings and snapshots: the SHA-256 (lower-case hex) of the
 * teacher's weights, so two machines holding equal teachers agree on the version without talking
 * to each other, and nothing else in the state (student, optimizer, center, step) changes it.
 *
 * <p>The digest is over every parameter of {@link ParamSpec#of} in that order, each encoded as
 * <pre>
 *   int32 LE  length of the UTF-8 name, then the name (the official DINO name, no "teacher/")
 *   int32 LE  rank, then each dimension as int64 LE
 *   int64 LE  byte length, then the tensor's raw little-endian bytes
 * </pre>
 * The lengths make the encoding unambiguous (no two different teachers share one byte string).
 */
public final class ModelVersion {
    private ModelVersion() {}

    /** 64 lower-case hex digits. */
    public static final Pattern FORMAT = Pattern.compile("[0-9a-f]{64}");

    public static String of(DinoState state) {
        MessageDigest md = sha256();
        ByteBuffer header = ByteBuffer.allocate(256).order(ByteOrder.LITTLE_ENDIAN);
        for (ParamSpec p : ParamSpec.of(state.config())) {
            TensorData t = state.get(StateKeys.teacher(p.name()));
            byte[] name = p.name().getBytes(StandardCharsets.UTF_8);
            long[] shape = t.shape();
            int need = 4 + name.length + 4 + 8 * shape.length + 8;
            if (header.capacity() < need) header = ByteBuffer.allocate(need).order(ByteOrder.LITTLE_ENDIAN);
            header.clear();
            header.putInt(name.length).put(name).putInt(shape.length);
            for (long d : shape) header.putLong(d);
            header.putLong(t.byteSize());
            md.update(header.array(), 0, header.position());
            // The digest reads the (direct or mapped) buffer in small chunks: no copy of the whole tensor.
            md.update(t.data());
        }
        return HexFormat.of().formatHex(md.digest());
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("this JVM has no SHA-256", e);   // every Java SE platform must have it
        }
    }
}
