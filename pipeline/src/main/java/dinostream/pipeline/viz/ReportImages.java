package dinostream.pipeline.viz;

import dinostream.model.dino.DinoConfig;
import dinostream.pipeline.augment.MultiCrop;
import dinostream.pipeline.produce.FashionMnist;
import dinostream.pipeline.produce.ImageSource;
import dinostream.pipeline.produce.SourceImage;
import dinostream.pipeline.produce.SyntheticSource;
import dinostream.pipeline.records.CropSet;
import dinostream.pipeline.records.DecodedImage;

import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The report's sample images and the picture of their multi-crop views.
 */
final class ReportImages {
    private ReportImages() {}

    /** Display side the global views are enlarged towards (integer factors, nearest-neighbour). */
    static final int GLOBAL_DISPLAY = 112;
    static final int GAP = 8, HEADER = 18;

    /** Sample images with a name for each and where they came from. */
    record Samples(String source, List<DecodedImage> images, List<String> names) {}

    /**
     * {@code count} images of distinct classes: from the Fashion-MNIST test split in {@code fmnistDir}
     * when it is there and readable, else from the synthetic generator at the model's size.
     */
    static Samples samples(DinoConfig cfg, int count, Path fmnistDir) {
        if (FashionMnist.available(fmnistDir, FashionMnist.Split.TEST)) {
            try {
                FashionMnist f = FashionMnist.load(fmnistDir, FashionMnist.Split.TEST);
                return pick(f, count, FashionMnist.CLASSES, "Fashion-MNIST test split");
            } catch (IOException | RuntimeException e) {
                // A damaged dataset must not cost the whole report: the synthetic images still show the crops.
                Samples s = synthetic(cfg, count);
                return new Samples(s.source() + " (Fashion-MNIST unreadable: " + e.getMessage() + ")", s.images(), s.names());
            }
        }
        return synthetic(cfg, count);
    }

    private static Samples synthetic(DinoConfig cfg, int count) {
        SyntheticSource s = new SyntheticSource(0, SyntheticSource.CLASSES.size(), Math.max(8, cfg.imgSize), cfg.inChans);
        return pick(s, count, SyntheticSource.CLASSES, "synthetic shapes (Fashion-MNIST not installed)");
    }

    /** The first images of {@code count} distinct classes, in source order. */
    private static Samples pick(ImageSource src, int count, List<String> classes, String what) {
        List<DecodedImage> images = new ArrayList<>();
        List<String> names = new ArrayList<>();
        Set<Integer> seen = new HashSet<>();
        for (int i = 0; i < src.size() && images.size() < count; i++) {
            Integer label = src.label(i);
            if (label == null || !seen.add(label)) continue;
            SourceImage si;
            try {
                si = src.read(i);
            } catch (IOException e) {
                throw new IllegalStateException("cannot read sample image " + i + " of " + src.name() + ": " + e.getMessage(), e);
            }
            DecodedImage d = new DecodedImage();
            d.id = si.id();
            d.source = src.name();
            d.label = label;
            d.width = si.width();
            d.height = si.height();
            d.channels = si.channels();
            d.pixels = si.bytes();   // both sources hand out RAW_U8 HWC pixels
            images.add(d);
            names.add(classes.get(label));
        }
        return new Samples(what, images, names);
    }

    /**
     * One row per image: the image, then its views (global 1, global 2, locals) as
     * {@link MultiCrop#apply(DecodedImage, long)} makes them for {@code seed}, all enlarged by one
     * integer factor so their relative sizes stay true.
     */
    static BufferedImage cropsGrid(DinoConfig cfg, Samples samples, long seed) {
        MultiCrop mc = MultiCrop.forConfig(cfg);
        int[] sizes = mc.sizes();
        int f = Math.max(1, Math.round((float) GLOBAL_DISPLAY / cfg.imgSize));
        int cell = Math.max(cfg.imgSize, cfg.localSize) * f;   // every column as wide as the largest view, smaller ones centred
        int cols = 1 + sizes.length, rows = samples.images().size();
        int width = GAP + cols * (cell + GAP), height = HEADER + GAP + rows * (cell + GAP);
        BufferedImage out = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        try {
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, width, height);
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
            g.setColor(new Color(0x22, 0x22, 0x22));
            for (int c = 0; c < cols; c++) {
                String h = c == 0 ? "image" : c <= 2 ? "global " + c + " \u00b7 " + sizes[c - 1] + " px" : "local " + (c - 2) + " \u00b7 " + sizes[c - 1] + " px";
                centred(g, h, GAP + c * (cell + GAP), HEADER - 5, cell);
            }
            for (int r = 0; r < rows; r++) {
                DecodedImage img = samples.images().get(r);
                int y = HEADER + GAP + r * (cell + GAP);
                drawFitted(out, img, GAP, y, cell);
                CropSet cs = mc.apply(img, seed);
                for (int v = 0; v < cs.views(); v++) {
                    int s = cs.sizes[v], side = s * f;
                    int x = GAP + (1 + v) * (cell + GAP) + (cell - side) / 2;
                    drawView(out, cs, v, x, y + (cell - side) / 2, f);
                }
            }
        } finally {
            g.dispose();
        }
        return out;
    }

    private static void centred(Graphics2D g, String text, int x, int baseline, int width) {
        FontMetrics fm = g.getFontMetrics();
        String t = text;
        while (fm.stringWidth(t) > width && t.length() > 2) t = t.substring(0, t.length() - 2) + "\u2026";
        g.drawString(t, x + Math.max(0, (width - fm.stringWidth(t)) / 2), baseline);
    }

    /** View {@code v} (planar uint8) enlarged {@code f} times with nearest-neighbour. */
    private static void drawView(BufferedImage out, CropSet cs, int v, int x0, int y0, int f) {
        int s = cs.sizes[v], n = s * s, off = cs.viewOffset(v);
        byte[] p = cs.pixels;
        for (int y = 0; y < s * f; y++) {
            for (int x = 0; x < s * f; x++) {
                int i = off + (y / f) * s + x / f;
                int r = p[i] & 0xFF;
                int gr = cs.channels == 3 ? p[i + n] & 0xFF : r, b = cs.channels == 3 ? p[i + 2 * n] & 0xFF : r;
                out.setRGB(x0 + x, y0 + y, (r << 16) | (gr << 8) | b);
            }
        }
    }

    /** The original image (HWC) scaled with nearest-neighbour to fit a {@code box} square, centred. */
    private static void drawFitted(BufferedImage out, DecodedImage img, int x0, int y0, int box) {
        double k = (double) box / Math.max(img.width, img.height);
        int w = Math.max(1, (int) Math.round(img.width * k)), h = Math.max(1, (int) Math.round(img.height * k));
        int ox = x0 + (box - w) / 2, oy = y0 + (box - h) / 2;
        for (int y = 0; y < h; y++) {
            int sy = Math.min(img.height - 1, (int) (y / k));
            for (int x = 0; x < w; x++) {
                int sx = Math.min(img.width - 1, (int) (x / k));
                int i = (sy * img.width + sx) * img.channels;
                int r = img.pixels[i] & 0xFF;
                int gr = img.channels == 3 ? img.pixels[i + 1] & 0xFF : r, b = img.channels == 3 ? img.pixels[i + 2] & 0xFF : r;
                out.setRGB(ox + x, oy + y, (r << 16) | (gr << 8) | b);
            }
        }
    }
}
