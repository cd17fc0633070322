package dinostream.pipeline.viz;

import org.junit.jupiter.api.Test;

import java.awt.image.BufferedImage;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The figure's geometry and that the heat follows the attention, on hand-made maps. */
class AttentionFigureTest {
    /** A 16x16 gray image, 4x4 patches, two heads: head 0 all on the top-left patch, head 1 all on the bottom-right. */
    static Attention.Maps corners() {
        byte[] px = new byte[16 * 16];
        java.util.Arrays.fill(px, (byte) 128);
        float[][] rows = new float[2][17];
        rows[0][1] = 1;
        rows[1][16] = 1;
        return new Attention.Maps(1, 16, 16, px, 4, 4, 4, rows);
    }

    static double brightness(int rgb) {
        return ((rgb >> 16) & 0xFF) + ((rgb >> 8) & 0xFF) + (rgb & 0xFF);
    }

    @Test
    void onePanelPerHeadPlusTheImage() {
        BufferedImage img = AttentionFigure.render(corners(), AttentionFigure.Upsample.BILINEAR);
        int s = AttentionFigure.scale(16, 16);
        assertEquals(10, s, "16 px enlarged to reach 160");
        assertEquals(3 * 160 + 4 * AttentionFigure.GAP, img.getWidth());
        assertEquals(AttentionFigure.TITLE_HEIGHT + 160 + 2 * AttentionFigure.GAP, img.getHeight());
        assertArrayEquals(new int[]{img.getWidth(), img.getHeight()}, AttentionFigure.size(1, 2, 16, 16));
    }

    @Test
    void theHeatIsWhereTheAttentionIs() {
        for (AttentionFigure.Upsample up : AttentionFigure.Upsample.values()) {
            BufferedImage img = AttentionFigure.render(corners(), up);
            int top = AttentionFigure.GAP + AttentionFigure.TITLE_HEIGHT, panel = 160;
            int head0 = AttentionFigure.GAP + panel + AttentionFigure.GAP, head1 = head0 + panel + AttentionFigure.GAP;
            double tl0 = brightness(img.getRGB(head0 + 5, top + 5)), br0 = brightness(img.getRGB(head0 + panel - 5, top + panel - 5));
            double tl1 = brightness(img.getRGB(head1 + 5, top + 5)), br1 = brightness(img.getRGB(head1 + panel - 5, top + panel - 5));
            assertTrue(tl0 > br0 + 200, up + ": head 0 is bright top left: " + tl0 + " vs " + br0);
            assertTrue(br1 > tl1 + 200, up + ": head 1 is bright bottom right: " + br1 + " vs " + tl1);
            // The image panel is the gray image itself.
            assertEquals(0x808080, img.getRGB(AttentionFigure.GAP + 80, top + 80) & 0xFFFFFF);
        }
    }

    @Test
    void rowsStackAndMustMatch() {
        BufferedImage img = AttentionFigure.render(List.of(corners(), corners(), corners()), List.of("a", "b", "c"),
                AttentionFigure.Upsample.NEAREST);
        assertEquals(3 * (AttentionFigure.TITLE_HEIGHT + 160) + 4 * AttentionFigure.GAP, img.getHeight());
        Attention.Maps other = new Attention.Maps(1, 8, 8, new byte[64], 4, 2, 2, new float[2][5]);
        assertThrows(IllegalArgumentException.class, () -> AttentionFigure.render(List.of(corners(), other), List.of("a", "b"),
                AttentionFigure.Upsample.NEAREST));
    }

    @Test
    void bilinearIsExactAtPatchCentresAndClampedAtTheEdges() {
        float[] map = {0, 1, 2, 3};   // 2x2
        assertEquals(0, AttentionFigure.bilinear(map, 2, 2, 0, 0), 1e-12);
        assertEquals(3, AttentionFigure.bilinear(map, 2, 2, 1, 1), 1e-12);
        assertEquals(1.5, AttentionFigure.bilinear(map, 2, 2, 0.5, 0.5), 1e-12);
        assertEquals(0, AttentionFigure.bilinear(map, 2, 2, -0.5, -0.5), 1e-12);
        assertEquals(3, AttentionFigure.bilinear(map, 2, 2, 1.5, 1.5), 1e-12);
    }

    @Test
    void infernoRunsFromDarkToBright() {
        assertEquals(0x000004, Colormap.inferno(0));
        assertEquals(0xFCFFA4, Colormap.inferno(1));
        assertEquals(0x000004, Colormap.inferno(Double.NaN));
        double last = -1;
        for (int i = 0; i <= 20; i++) {
            int c = Colormap.inferno(i / 20.0);
            double lum = 0.299 * ((c >> 16) & 0xFF) + 0.587 * ((c >> 8) & 0xFF) + 0.114 * (c & 0xFF);
            assertTrue(lum >= last - 1e-9, "luminance rises along the map");
            last = lum;
        }
    }
}
