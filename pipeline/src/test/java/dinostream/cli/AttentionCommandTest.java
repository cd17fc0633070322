package dinostream.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dinostream.model.dino.Presets;
import dinostream.model.io.DinoState;
import dinostream.pipeline.snapshot.SnapshotInfo;
import dinostream.pipeline.snapshot.SnapshotRef;
import dinostream.pipeline.snapshot.SnapshotStore;
import dinostream.pipeline.viz.AttentionFigure;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static dinostream.cli.CliTest.JSON;
import static dinostream.cli.CliTest.assertOneLineError;
import static dinostream.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code dinostream attention} in-process on a "test" snapshot (2 heads, patch 4, 16 px) and generated images. */
class AttentionCommandTest {
    @TempDir
    static Path dir;
    static SnapshotRef snapshot;
    static Path square, wide;

    static Path image(String name, int w, int h, int type) throws Exception {
        BufferedImage img = new BufferedImage(w, h, type);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) img.setRGB(x, y, (x * 255 / w) << 16 | (y * 255 / h) << 8 | 90);
        Path p = dir.resolve(name);
        ImageIO.write(img, name.endsWith(".png") ? "png" : "jpeg", p.toFile());
        return p;
    }

    @BeforeAll
    static void setUp() throws Exception {
        snapshot = new SnapshotStore(dir.resolve("snapshots").toUri().toString(), 5)
                .write("m", DinoState.init(Presets.get("test"), 0), new SnapshotInfo(0, Map.of(), Map.of(), Map.of()));
        square = image("square.png", 16, 16, BufferedImage.TYPE_INT_RGB);
        wide = image("wide.jpg", 60, 40, BufferedImage.TYPE_INT_RGB);
    }

    static BufferedImage read(Path p) throws Exception {
        BufferedImage img = ImageIO.read(p.toFile());
        assertTrue(img != null, p + " is a PNG");
        return img;
    }

    @Test
    void writesOnePanelForTheImageAndOnePerHead() throws Exception {
        Path out = dir.resolve("figs/att.png");
        CliTest.Result r = run("attention", "--snapshot", snapshot.uri(), "--image", square.toString(), "--out", out.toString(), "--threads", "1");
        assertEquals(0, r.rc(), r.toString());
        assertEquals("", r.out());
        assertTrue(r.err().startsWith("wrote " + out), r.err());
        BufferedImage img = read(out);
        // 16 px enlarged 10x to 160; panels = heads + 1 = 3.
        assertEquals(3 * 160 + 4 * AttentionFigure.GAP, img.getWidth());
        assertEquals(AttentionFigure.TITLE_HEIGHT + 160 + 2 * AttentionFigure.GAP, img.getHeight());
    }

    @Test
    void aSizeKeepsTheAspectRatioAndJsonDescribesTheFigure() throws Exception {
        Path out = dir.resolve("wide.png");
        CliTest.Result r = run("attention", "--snapshot", snapshot.uri(), "--image", wide.toString(), "--out", out.toString(),
                "--size", "32", "--upsample", "nearest", "--threads", "1", "--json");
        assertEquals(0, r.rc(), r.toString());
        JsonNode j = JSON.readTree(r.out());
        assertEquals(2, j.get("heads").asInt());
        assertEquals(32, j.get("input_height").asInt());
        assertEquals(48, j.get("input_width").asInt(), "60x40 at shorter side 32 is 48x32");
        assertEquals(12, j.get("grid_width").asInt());
        assertEquals(8, j.get("grid_height").asInt());
        BufferedImage img = read(out);
        int s = AttentionFigure.scale(32, 48);
        assertEquals(5, s);
        assertEquals(3 * 48 * s + 4 * AttentionFigure.GAP, img.getWidth());
        assertEquals(j.get("width").asInt(), img.getWidth());
        assertEquals(AttentionFigure.TITLE_HEIGHT + 32 * s + 2 * AttentionFigure.GAP, img.getHeight());
        for (int h = 0; h < 2; h++) {
            double cls = j.get("cls_weight").get(h).asDouble(), max = j.get("max_patch_weight").get(h).asDouble();
            assertTrue(cls > 0 && cls < 1 && max > 0 && max < 1, j.toString());
        }
    }

    @Test
    void errorsAreOneLine() throws Exception {
        String snap = snapshot.uri();
        Path out = dir.resolve("never.png");
        assertOneLineError(run("attention", "--snapshot", dir.resolve("missing").toString(), "--image", square.toString(),
                "--out", out.toString()), 1, "no such snapshot folder", "missing");
        assertOneLineError(run("attention", "--snapshot", dir.toString(), "--image", square.toString(), "--out", out.toString()),
                1, "not a complete snapshot", "manifest.json");
        assertOneLineError(run("attention", "--snapshot", snap, "--image", dir.resolve("nope.png").toString(), "--out", out.toString()),
                1, "no such image file", "nope.png");
        Path text = Files.writeString(dir.resolve("notes.txt"), "hello");
        assertOneLineError(run("attention", "--snapshot", snap, "--image", text.toString(), "--out", out.toString()),
                1, "neither a JPEG nor a PNG");
        Path broken = dir.resolve("broken.png");
        byte[] png = Files.readAllBytes(square);
        Files.write(broken, java.util.Arrays.copyOf(png, 40));
        assertOneLineError(run("attention", "--snapshot", snap, "--image", broken.toString(), "--out", out.toString()), 1, "broken.png");
        assertOneLineError(run("attention", "--snapshot", snap, "--image", square.toString(), "--size", "18", "--out", out.toString()),
                2, "--size 18 is not a positive multiple of the model's patch size 4");
        assertOneLineError(run("attention", "--snapshot", snap, "--image", square.toString(), "--upsample", "cubic"), 2, "--upsample");
        assertOneLineError(run("attention", "--image", square.toString()), 2, "--snapshot");
        assertTrue(!Files.exists(out), "nothing written on error");
    }
}
