package dinostream.pipeline.dedup;

import dinostream.pipeline.records.DecodedImage;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.api.operators.KeyedProcessOperator;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The near-duplicate filter, keyed by source, in Flink's keyed harness. */
class DedupFunctionTest {
    static final int SIDE = 28;

    /** A scene: smooth random blobs (a camera image, not noise, so that a jittered copy hashes close). */
    static byte[] scene(long seed) {
        Random r = new Random(seed);
        double[][] c = new double[4][3];
        for (double[] b : c) {
            b[0] = r.nextInt(SIDE);
            b[1] = r.nextInt(SIDE);
            b[2] = 4 + r.nextInt(8);
        }
        byte[] px = new byte[SIDE * SIDE];
        for (int y = 0; y < SIDE; y++) {
            for (int x = 0; x < SIDE; x++) {
                double v = 0;
                for (double[] b : c) v += 200 * Math.exp(-((x - b[0]) * (x - b[0]) + (y - b[1]) * (y - b[1])) / (2 * b[2] * b[2]));
                px[y * SIDE + x] = (byte) Math.min(255, v);
            }
        }
        return px;
    }

    /** The scene brightened by a few levels: the next frame of a still camera. */
    static byte[] nextFrame(byte[] px, int delta) {
        byte[] out = new byte[px.length];
        for (int i = 0; i < px.length; i++) out[i] = (byte) Math.min(255, (px[i] & 0xff) + delta);
        return out;
    }

    static DecodedImage image(String source, String id, byte[] px) {
        DecodedImage d = new DecodedImage();
        d.id = id;
        d.source = source;
        d.width = SIDE;
        d.height = SIDE;
        d.channels = 1;
        d.pixels = px;
        return d;
    }

    static KeyedOneInputStreamOperatorTestHarness<Integer, DecodedImage, DecodedImage> harness() throws Exception {
        return new KeyedOneInputStreamOperatorTestHarness<>(new KeyedProcessOperator<>(new DedupFunction(DedupOptions.on(6))),
                DedupFunction::bucketOf, Types.INT);
    }

    static List<String> ids(KeyedOneInputStreamOperatorTestHarness<Integer, DecodedImage, DecodedImage> h) {
        return h.extractOutputValues().stream().map(d -> d.id).toList();
    }

    @Test
    void nearDuplicatesOfTheLastKeptFrameAreDroppedPerSource() throws Exception {
        byte[] a = scene(1), b = scene(2);
        try (var h = harness()) {
            h.open();
            h.processElement(image("cam1", "a0", a), 0);
            h.processElement(image("cam1", "a1", nextFrame(a, 3)), 1);   // near-duplicate: dropped
            h.processElement(image("cam2", "b0", a), 2);                 // another camera: kept
            h.processElement(image("cam1", "b1", b), 3);                 // a new scene: kept
            h.processElement(image("cam1", "b2", nextFrame(b, 2)), 4);   // dropped
            h.processElement(image(null, "n0", a), 5);                   // no source: its own key
            assertEquals(List.of("a0", "b0", "b1", "n0"), ids(h));
        }
    }

    /** The last kept hash is checkpointed: after a restore the same frames get the same decisions. */
    @Test
    void aRestoreDecidesTheSame() throws Exception {
        byte[] a = scene(1), b = scene(2);
        OperatorSubtaskState checkpoint;
        try (var h = harness()) {
            h.open();
            h.processElement(image("cam1", "a0", a), 0);
            checkpoint = h.snapshot(1, 10);
            h.processElement(image("cam1", "a1", nextFrame(a, 3)), 1);
            h.processElement(image("cam1", "b0", b), 2);
            assertEquals(List.of("a0", "b0"), ids(h));
        }
        try (var h = harness()) {
            h.initializeState(checkpoint);
            h.open();
            h.processElement(image("cam1", "a1", nextFrame(a, 3)), 1);
            h.processElement(image("cam1", "b0", b), 2);
            assertEquals(List.of("b0"), ids(h));
        }
    }

    /** Two sources in one bucket: each one's frames are kept when the other came last (less filtering, never a wrong drop). */
    @Test
    void sourcesSharingABucketAreNotMixedUp() throws Exception {
        String one = "cam-0", other = null;
        for (int i = 1; other == null; i++) {
            String c = "cam-" + i;
            if (DedupFunction.bucketOf(image(c, "x", scene(1))).equals(DedupFunction.bucketOf(image(one, "x", scene(1))))) other = c;
        }
        byte[] a = scene(1);
        try (var h = harness()) {
            h.open();
            h.processElement(image(one, "a0", a), 0);
            h.processElement(image(other, "o0", a), 1);                 // same pixels, another source: kept
            h.processElement(image(one, "a1", nextFrame(a, 1)), 2);     // its bucket's last was the other source: kept
            h.processElement(image(one, "a2", nextFrame(a, 2)), 3);     // now a near-duplicate of its own last: dropped
            assertEquals(List.of("a0", "o0", "a1"), ids(h));
        }
    }
}
