package dinostream.pipeline.viz;

import dinostream.pipeline.augment.PilOps;

import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.util.List;
import java.util.Locale;

/**
 * Attention maps drawn as in the DINO paper's figures: per image one row of panels, the image as
 * the model saw it, then one panel per head with that head's CLS attention over the patches as a
 * heat map (inferno) blended over the image in gray, each panel under a small title.
 *
 * <p>Each head's map is scaled to its own minimum and maximum (as matplotlib's {@code imshow} in
 * DINO's {@code visualize_attention.py} does), so the title gives the largest share of attention
 * on one patch: a near-uniform head (an untrained teacher) shows a value close to 1/patches.
 *
 * <p>Panels are enlarged by an integer factor so that small images (28 px Fashion-MNIST) stay
 * readable: the image with nearest-neighbour (its pixels stay visible), the map either bilinear
 * (smooth, align-corners false like PyTorch's interpolate) or nearest (one block per patch).
 */
public final class AttentionFigure {
    private AttentionFigure() {}

    /** Space around and between panels, in pixels. */
    public static final int GAP = 8;
    /** Height of the title band above each row of panels. */
    public static final int TITLE_HEIGHT = 18;
    /** Panels are enlarged until their shorter side reaches this (integer factors only). */
    public static final int MIN_PANEL_SIDE = 160;
    /** Weight of the heat map over the gray image. */
    static final double HEAT_ALPHA = 0.6;

    public enum Upsample { BILINEAR, NEAREST }

    /** The integer enlargement of a panel of the given size. */
    public static int scale(int height, int width) {
        int side = Math.min(height, width);
        return Math.max(1, (MIN_PANEL_SIDE + side - 1) / side);
    }

    /** Width and height of the figure of {@code rows} images of one size with {@code heads} heads each. */
    public static int[] size(int rows, int heads, int height, int width) {
        int s = scale(height, width), panels = heads + 1;
        return new int[]{panels * width * s + (panels + 1) * GAP, rows * (TITLE_HEIGHT + height * s) + (rows + 1) * GAP};
    }

    /** One row: the image and its heads. */
    public static BufferedImage render(Attention.Maps maps, Upsample up) {
        return render(List.of(maps), List.of("image"), up);
    }

    /**
     * One row per image, all of one size and head count.
     *
     * @param labels the title of each row's image panel
     */
    public static BufferedImage render(List<Attention.Maps> rows, List<String> labels, Upsample up) {
        if (rows.isEmpty()) throw new IllegalArgumentException("no images to draw");
        if (labels.size() != rows.size()) throw new IllegalArgumentException(rows.size() + " images but " + labels.size() + " labels");
        Attention.Maps first = rows.get(0);
        for (Attention.Maps m : rows) {
            if (m.height() != first.height() || m.width() != first.width() || m.heads() != first.heads()) {
                throw new IllegalArgumentException("images of one figure must share size and head count");
            }
        }
        int h = first.height(), w = first.width(), s = scale(h, w), ph = h * s, pw = w * s;
        int[] size = size(rows.size(), first.heads(), h, w);
        BufferedImage out = new BufferedImage(size[0], size[1], BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        try {
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, size[0], size[1]);
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
            g.setColor(new Color(0x22, 0x22, 0x22));
            for (int r = 0; r < rows.size(); r++) {
                Attention.Maps m = rows.get(r);
                int y = GAP + r * (TITLE_HEIGHT + ph + GAP);
                int[] gray = grayLevels(m);
                int x = GAP;
                title(g, labels.get(r) + " " + w + "\u00d7" + h, x, y, pw);
                out.setRGB(x, y + TITLE_HEIGHT, pw, ph, imagePanel(m, s), 0, pw);
                for (int head = 0; head < m.heads(); head++) {
                    x += pw + GAP;
                    float[] map = m.patchMap(head);
                    float max = 0;
                    for (float v : map) max = Math.max(max, v);
                    title(g, String.format(Locale.ROOT, "head %d \u00b7 max %.3g", head, max), x, y, pw);
                    out.setRGB(x, y + TITLE_HEIGHT, pw, ph, heatPanel(m, map, gray, s, up), 0, pw);
                }
            }
        } finally {
            g.dispose();
        }
        return out;
    }

    /** A title centred over a panel, shortened with an ellipsis when it does not fit. */
    private static void title(Graphics2D g, String text, int x, int y, int width) {
        FontMetrics fm = g.getFontMetrics();
        String t = text;
        while (fm.stringWidth(t) > width && t.length() > 2) t = t.substring(0, t.length() - 2) + "\u2026";
        g.drawString(t, x + Math.max(0, (width - fm.stringWidth(t)) / 2), y + TITLE_HEIGHT - 5);
    }

    /** The image enlarged by {@code s} with nearest-neighbour, as ARGB pixels. */
    private static int[] imagePanel(Attention.Maps m, int s) {
        int h = m.height(), w = m.width(), n = h * w, pw = w * s;
        int[] px = new int[h * s * pw];
        byte[] p = m.pixels();
        for (int y = 0; y < h * s; y++) {
            for (int x = 0; x < pw; x++) {
                int i = (y / s) * w + x / s;
                int r = p[i] & 0xFF, gr = m.channels() == 3 ? p[n + i] & 0xFF : r, b = m.channels() == 3 ? p[2 * n + i] & 0xFF : r;
                px[y * pw + x] = (r << 16) | (gr << 8) | b;
            }
        }
        return px;
    }

    /** Per pixel, the image's gray level (Pillow's luma for RGB). */
    private static int[] grayLevels(Attention.Maps m) {
        int n = m.height() * m.width();
        byte[] p = m.pixels();
        int[] g = new int[n];
        for (int i = 0; i < n; i++) {
            g[i] = m.channels() == 3 ? PilOps.luma(p[i] & 0xFF, p[n + i] & 0xFF, p[2 * n + i] & 0xFF) : p[i] & 0xFF;
        }
        return g;
    }

    /** The head's map, scaled to [0, 1], upsampled to the enlarged panel and blended over the gray image. */
    private static int[] heatPanel(Attention.Maps m, float[] map, int[] gray, int s, Upsample up) {
        int h = m.height(), w = m.width(), gh = m.gridH(), gw = m.gridW();
        float lo = Float.POSITIVE_INFINITY, hi = Float.NEGATIVE_INFINITY;
        for (float v : map) {
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
        }
        float range = hi - lo;
        int ph = h * s, pw = w * s;
        // Patch units per output pixel: the grid covers the image exactly (sides are multiples of the patch).
        double fy = (double) gh / ph, fx = (double) gw / pw;
        int[] px = new int[ph * pw];
        for (int y = 0; y < ph; y++) {
            for (int x = 0; x < pw; x++) {
                double v = up == Upsample.NEAREST
                        ? map[Math.min(gh - 1, (int) (y * fy)) * gw + Math.min(gw - 1, (int) (x * fx))]
                        : bilinear(map, gh, gw, (y + 0.5) * fy - 0.5, (x + 0.5) * fx - 0.5);
                double t = range > 0 ? (v - lo) / range : 0;
                int heat = Colormap.inferno(t);
                int gv = gray[(y / s) * w + x / s];
                px[y * pw + x] = blend(gv, heat);
            }
        }
        return px;
    }

    /** Bilinear sample at fractional grid coordinates, edges clamped (PyTorch's align_corners=False). */
    static double bilinear(float[] map, int gh, int gw, double gy, double gx) {
        gy = Math.max(0, Math.min(gh - 1, gy));
        gx = Math.max(0, Math.min(gw - 1, gx));
        int y0 = (int) gy, x0 = (int) gx, y1 = Math.min(gh - 1, y0 + 1), x1 = Math.min(gw - 1, x0 + 1);
        double dy = gy - y0, dx = gx - x0;
        double top = map[y0 * gw + x0] * (1 - dx) + map[y0 * gw + x1] * dx;
        double bottom = map[y1 * gw + x0] * (1 - dx) + map[y1 * gw + x1] * dx;
        return top * (1 - dy) + bottom * dy;
    }

    private static int blend(int gray, int heat) {
        int r = (int) Math.round((1 - HEAT_ALPHA) * gray + HEAT_ALPHA * ((heat >> 16) & 0xFF));
        int g = (int) Math.round((1 - HEAT_ALPHA) * gray + HEAT_ALPHA * ((heat >> 8) & 0xFF));
        int b = (int) Math.round((1 - HEAT_ALPHA) * gray + HEAT_ALPHA * (heat & 0xFF));
        return (r << 16) | (g << 8) | b;
    }
}
