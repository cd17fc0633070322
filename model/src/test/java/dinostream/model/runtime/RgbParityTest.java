package dinostream.model.runtime;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Presets;
import dinostream.model.dino.StateKeys;
import dinostream.model.io.DinoState;
import dinostream.model.io.SafeTensors;
import dinostream.model.io.SafeTensorsFile;
import dinostream.model.io.TensorData;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.awt.image.Raster;
import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Real-size RGB parity (issue 12 item 5): the exported teacher backbone of {@code vit-s16} on real
 * photographs at 224 px (stored position embeddings) and 320 px (interpolated, model/docs/algorithm.md
 * §2.1) against the PyTorch reference's forward with the official kernels (F.conv2d, F.interpolate
 * bicubic), float32, to 1e-4 relative.
 *
 * <p>The weights are not the official release (not downloadable where the fixture was made) but
 * {@code DinoState.init(vit-s16, seed)}, regenerated here from the seed; the fixture records a
 * SHA-256 of the teacher backbone it was made with, checked first. Fixture:
 * {@code model/src/test/python/make_rgb_fixture.py} (photos from Debian's python3-skimage:
 * astronaut, public domain; coffee and chelsea, CC0), see fixtures/rgb/README.txt.
 */
class RgbParityTest {
    static final double REL_TOL = 1e-4;
    static final String FIXTURE = "/fixtures/rgb/";

    static SafeTensorsFile expected;
    static DinoConfig cfg;
    static DinoState state;
    static TeacherInference teacher;

    @BeforeAll
    static void setUp() throws IOException, URISyntaxException {
        Path dir = Paths.get(RgbParityTest.class.getResource(FIXTURE + "embeddings.safetensors").toURI()).getParent();
        expected = SafeTensors.read(dir.resolve("embeddings.safetensors"));
        cfg = Presets.get(expected.metadata().get("preset"));
        state = DinoState.init(cfg, Long.parseLong(expected.metadata().get("seed")));
        teacher = TeacherInference.backbone(state, RuntimeOptions.cpu());
    }

    @AfterAll
    static void tearDown() {
        if (teacher != null) teacher.close();
    }

    /** DinoState.init is documented to give the same numbers on every JVM: the fixture's weights are these. */
    @Test
    void weightsAreThoseTheFixtureWasMadeWith() throws NoSuchAlgorithmException {
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        String prefix = StateKeys.teacher("backbone.");
        TreeMap<String, TensorData> sorted = new TreeMap<>();   // the script hashes in Python's sorted() order
        state.tensors().forEach((k, v) -> {
            if (k.startsWith(prefix)) sorted.put(k.substring(prefix.length()), v);
        });
        for (TensorData t : sorted.values()) {
            ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(t.byteSize())).order(ByteOrder.LITTLE_ENDIAN);
            t.copyTo(b);
            sha.update(b.array());
        }
        assertEquals(expected.metadata().get("backbone_sha256"), HexFormat.of().formatHex(sha.digest()));
    }

    @Test
    void embeddingsMatchPyTorchAt224() throws IOException {
        assertParity(224);
    }

    @Test
    void embeddingsMatchPyTorchAt320WithInterpolatedPositions() throws IOException {
        assertParity(320);
    }

    private static void assertParity(int size) throws IOException {
        List<String> photos = List.of(expected.metadata().get("photos").split(","));
        int n = photos.size(), chw = 3 * size * size;
        float[] pixels = new float[n * chw];
        for (int i = 0; i < n; i++) normalize(readRgb(photos.get(i) + "-" + size + ".png", size), pixels, i * chw);
        float[][] got = teacher.embed(pixels, n, size, size);
        float[] want = expected.tensors().get("embeddings/" + size).toFloatArray();
        StringBuilder report = new StringBuilder();
        for (int i = 0; i < n; i++) {
            double maxDiff = 0, maxRef = 0;
            for (int d = 0; d < cfg.dim; d++) {
                float b = want[i * cfg.dim + d];
                maxDiff = Math.max(maxDiff, Math.abs(got[i][d] - b));
                maxRef = Math.max(maxRef, Math.abs(b));
            }
            double rel = maxDiff / maxRef;
            report.append(String.format("%s@%d: max|a-b| %.3g, max|b| %.4f, rel %.3g%n", photos.get(i), size, maxDiff, maxRef, rel));
            assertTrue(rel <= REL_TOL, report.toString());
        }
        System.out.print(report);
    }

    /** The PNG's 8-bit samples, [3][size*size] channel-major (raw raster bands: no colour-model conversion). */
    private static int[][] readRgb(String name, int size) throws IOException {
        BufferedImage img;
        try (InputStream in = RgbParityTest.class.getResourceAsStream(FIXTURE + name)) {
            img = ImageIO.read(in);
        }
        Raster r = img.getRaster();
        assertEquals(size, r.getWidth(), name);
        assertEquals(size, r.getHeight(), name);
        assertEquals(3, r.getNumBands(), name + " must be 8-bit RGB");
        int[][] c = new int[3][];
        for (int k = 0; k < 3; k++) c[k] = r.getSamples(0, 0, size, size, k, (int[]) null);
        return c;
    }

    /** (x/255 - mean)/std in float32, in the reference's order of operations. */
    private static void normalize(int[][] rgb, float[] dst, int offset) {
        double[] mean = cfg.meanOrDefault(), std = cfg.stdOrDefault();
        int plane = rgb[0].length;
        for (int k = 0; k < 3; k++) {
            float m = (float) mean[k], s = (float) std[k];
            for (int j = 0; j < plane; j++) dst[offset + k * plane + j] = (rgb[k][j] / 255f - m) / s;
        }
    }
}
