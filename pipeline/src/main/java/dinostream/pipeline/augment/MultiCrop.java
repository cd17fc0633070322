package dinostream.pipeline.augment;

import dinostream.model.dino.DinoConfig;
import dinostream.pipeline.records.CropSet;
import dinostream.pipeline.records.DecodedImage;

import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * DINO's multi-crop augmentation (DataAugmentationDINO, model/docs/algorithm.md §1) on 8-bit images:
 * views {@code [global_1, global_2, local_1 .. local_n]}, each a torchvision RandomResizedCrop with
 * Pillow bicubic resampling, horizontal flip, colour jitter in random order, random grayscale,
 * Gaussian blur and (global 2 only) solarization; the pixel operations are those of {@link PilOps}.
 * One-channel configurations use the Fashion-MNIST adaptation of model/docs/algorithm.md §1
 * ({@link Params#oneChannel()}).
 *
 * <p>Randomness comes only from the {@link SplittableRandom} passed in, and only through
 * {@code nextLong()} (doubles and bounded integers are derived here), so the crops of a record are
 * a function of (model seed, record id) via {@link #rngFor}, stable across JVMs and JDK versions.
 * torchvision's torch/Python generators are not reproduced: the distributions are the same, the
 * draws are not.
 *
 * <p>Immutable and thread-safe: buffers are allocated per call.
 */
public final class MultiCrop {

    /** Augmentation parameters; {@link #dino()} holds DINO's defaults. Copied and validated by {@link MultiCrop}. */
    public static final class Params implements Serializable {
        private static final long serialVersionUID = 1L;

        public double globalScaleMin = 0.4, globalScaleMax = 1.0;
        public double localScaleMin = 0.05, localScaleMax = 0.4;
        public double ratioMin = 3.0 / 4.0, ratioMax = 4.0 / 3.0;
        public double flipP = 0.5;
        /** Probability of applying ColorJitter (RandomApply). */
        public double jitterP = 0.8;
        /** ColorJitter strengths: factors U[max(0, 1-s), 1+s]; hue shift U[-hue, hue]; 0 turns an op off. */
        public double brightness = 0.4, contrast = 0.4, saturation = 0.2, hue = 0.1;
        public double grayscaleP = 0.2;
        /** Blur probability for global 1, global 2 and each local view. */
        public double blurPGlobal1 = 1.0, blurPGlobal2 = 0.1, blurPLocal = 0.5;
        /** Blur radius (Gaussian sigma in pixels) ~ U(min, max). */
        public double blurRadiusMin = 0.1, blurRadiusMax = 2.0;
        /** Solarization probability, global 2 only. */
        public double solarizeP = 0.2;

        /** DINO's three-channel defaults. */
        public static Params dino() {
            return new Params();
        }

        /**
         * The one-channel (Fashion-MNIST) adaptation of model/docs/algorithm.md §1: jitter brightness and contrast
         * only (saturation, hue and grayscale are no-ops on one channel), blur radius U(0.1, 1.0).
         */
        public static Params oneChannel() {
            Params p = new Params();
            p.saturation = 0;
            p.hue = 0;
            p.grayscaleP = 0;
            p.blurRadiusMax = 1.0;
            return p;
        }

        public static Params forChannels(int channels) {
            return channels == 1 ? oneChannel() : dino();
        }

        public Params copy() {
            Params p = new Params();
            p.globalScaleMin = globalScaleMin; p.globalScaleMax = globalScaleMax;
            p.localScaleMin = localScaleMin; p.localScaleMax = localScaleMax;
            p.ratioMin = ratioMin; p.ratioMax = ratioMax;
            p.flipP = flipP; p.jitterP = jitterP;
            p.brightness = brightness; p.contrast = contrast; p.saturation = saturation; p.hue = hue;
            p.grayscaleP = grayscaleP;
            p.blurPGlobal1 = blurPGlobal1; p.blurPGlobal2 = blurPGlobal2; p.blurPLocal = blurPLocal;
            p.blurRadiusMin = blurRadiusMin; p.blurRadiusMax = blurRadiusMax;
            p.solarizeP = solarizeP;
            return p;
        }

        public Params validate() {
            StringBuilder bad = new StringBuilder();
            range(bad, "global scale", globalScaleMin, globalScaleMax, 0, 1);
            range(bad, "local scale", localScaleMin, localScaleMax, 0, 1);
            if (!(ratioMin > 0 && ratioMin <= ratioMax)) bad.append("; ratio needs 0 < min <= max");
            for (double p : new double[]{flipP, jitterP, grayscaleP, blurPGlobal1, blurPGlobal2, blurPLocal, solarizeP}) {
                if (!(p >= 0 && p <= 1)) bad.append("; probabilities must be in [0, 1]");
            }
            if (!(brightness >= 0 && contrast >= 0 && saturation >= 0)) bad.append("; jitter strengths must be >= 0");
            if (!(hue >= 0 && hue <= 0.5)) bad.append("; hue must be in [0, 0.5]");
            if (!(blurRadiusMin >= 0 && blurRadiusMin <= blurRadiusMax)) bad.append("; blur radius needs 0 <= min <= max");
            if (bad.length() > 0) throw new IllegalArgumentException("invalid augmentation parameters: " + bad.substring(2));
            return this;
        }

        private static void range(StringBuilder bad, String name, double lo, double hi, double min, double max) {
            if (!(lo > min && lo <= hi && hi <= max)) bad.append("; ").append(name).append(" needs ").append(min).append(" < min <= max <= ").append(max);
        }
    }

    /** Jitter operations, in torchvision's numbering (the order of ColorJitter's randperm). */
    static final int BRIGHTNESS = 0, CONTRAST = 1, SATURATION = 2, HUE = 3;

    /** Everything drawn for one view; {@link #render} turns it into pixels deterministically. */
    static final class ViewParams {
        int top, left, height, width;
        boolean flip;
        /** Jitter ops in application order (empty when jitter was not applied) and their factors by op id. */
        int[] jitterOrder = new int[0];
        final double[] factors = {1, 1, 1, 0};
        boolean grayscale;
        /** Blur radius, or NaN for no blur. */
        double blurRadius = Double.NaN;
        boolean solarize;
    }

    private final int channels, globalSize, localSize, nLocal;
    private final Params p;
    private final int[] jitterOps;

    public MultiCrop(int channels, int globalSize, int localSize, int nLocal, Params params) {
        if (channels != 1 && channels != 3) throw new IllegalArgumentException("channels must be 1 or 3, got " + channels);
        if (globalSize <= 0 || localSize <= 0 || nLocal < 0) throw new IllegalArgumentException("crop sizes must be positive and n_local >= 0");
        this.channels = channels;
        this.globalSize = globalSize;
        this.localSize = localSize;
        this.nLocal = nLocal;
        this.p = params.copy().validate();
        // Saturation and hue do nothing to one channel (torchvision returns the image); drawing
        // them anyway would only change which random numbers the other ops get.
        int[] ops = new int[4];
        int k = 0;
        if (p.brightness > 0) ops[k++] = BRIGHTNESS;
        if (p.contrast > 0) ops[k++] = CONTRAST;
        if (p.saturation > 0 && channels == 3) ops[k++] = SATURATION;
        if (p.hue > 0 && channels == 3) ops[k++] = HUE;
        this.jitterOps = Arrays.copyOf(ops, k);
    }

    /** The views for a model configuration: sizes, view count and channels from it, parameters by channel count. */
    public static MultiCrop forConfig(DinoConfig cfg) {
        return forConfig(cfg, Params.forChannels(cfg.inChans));
    }

    public static MultiCrop forConfig(DinoConfig cfg, Params params) {
        return new MultiCrop(cfg.inChans, cfg.imgSize, cfg.localSize, cfg.nLocal, params);
    }

    public int views() {
        return 2 + nLocal;
    }

    public int channels() {
        return channels;
    }

    /** View sides: two global, then the locals. */
    public int[] sizes() {
        int[] s = new int[views()];
        for (int v = 0; v < s.length; v++) s[v] = v < 2 ? globalSize : localSize;
        return s;
    }

    // ---------------------------------------------------------------- randomness

    private static final long GOLDEN_GAMMA = 0x9E3779B97F4A7C15L;

    /** Stafford's variant 13 of the MurmurHash3 finalizer (as SplitMix64); the project's seed mixer (replay, camera feed too). */
    public static long mix64(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** 64-bit FNV-1a over the UTF-8 bytes of {@code s}; the project's string hash (record ids, source names). */
    public static long fnv1a64(String s) {
        long h = 0xCBF29CE484222325L;
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            h ^= b & 0xFF;
            h *= 0x100000001B3L;
        }
        return h;
    }

    /**
     * The generator for one record: seeded from the model seed and a 64-bit FNV-1a hash of the id's
     * UTF-8 bytes, both mixed so that nearby seeds or ids give unrelated streams. A null id hashes
     * like the empty string.
     */
    public static SplittableRandom rngFor(long modelSeed, String recordId) {
        long h = fnv1a64(recordId == null ? "" : recordId);
        return new SplittableRandom(mix64(mix64(modelSeed + GOLDEN_GAMMA) ^ h));
    }

    /**
     * A replayed image's generator: its record's, moved by the train step that replays it, so each
     * replay gets new views and a replay after a failover the same ones.
     */
    public static SplittableRandom rngFor(long modelSeed, String recordId, long step) {
        return new SplittableRandom(mix64(rngFor(modelSeed, recordId).nextLong() ^ mix64(step + GOLDEN_GAMMA)));
    }

    /** Uniform in [0, 1) from the top 53 bits. */
    static double nextDouble(SplittableRandom rng) {
        return (rng.nextLong() >>> 11) * 0x1.0p-53;
    }

    static double uniform(SplittableRandom rng, double lo, double hi) {
        return lo + (hi - lo) * nextDouble(rng);
    }

    /** Uniform in [0, n) for n < 2^31, by a 32x32-bit multiply (bias below n / 2^32). */
    static int nextInt(SplittableRandom rng, int n) {
        return (int) (((rng.nextLong() >>> 32) * n) >>> 32);
    }

    /**
     * torchvision's {@code RandomResizedCrop.get_params}: up to 10 tries of area {@code H*W*U(scale)}
     * and log-uniform ratio, {@code w = round(sqrt(area*r))}, {@code h = round(sqrt(area/r))}
     * (Python's round: half to even), accepted if it fits, top-left uniform; otherwise the centre
     * crop with the ratio clamped into range. Returns {@code {top, left, height, width}}.
     */
    public static int[] cropParams(int height, int width, double scaleMin, double scaleMax,
                                   double ratioMin, double ratioMax, SplittableRandom rng) {
        double area = (double) height * width;
        double logLo = Math.log(ratioMin), logHi = Math.log(ratioMax);
        for (int attempt = 0; attempt < 10; attempt++) {
            double target = area * uniform(rng, scaleMin, scaleMax);
            double ratio = Math.exp(uniform(rng, logLo, logHi));
            int w = (int) Math.rint(Math.sqrt(target * ratio));
            int h = (int) Math.rint(Math.sqrt(target / ratio));
            if (0 < w && w <= width && 0 < h && h <= height) {
                int i = nextInt(rng, height - h + 1);
                int j = nextInt(rng, width - w + 1);
                return new int[]{i, j, h, w};
            }
        }
        double inRatio = (double) width / height;
        int w, h;
        if (inRatio < ratioMin) {
            w = width;
            h = (int) Math.rint(w / ratioMin);
        } else if (inRatio > ratioMax) {
            h = height;
            w = (int) Math.rint(h * ratioMax);
        } else {
            w = width;
            h = height;
        }
        return new int[]{(height - h) / 2, (width - w) / 2, h, w};
    }

    /**
     * Draws the random choices of view {@code v} in torchvision's order: crop, flip, jitter
     * (apply?, order, factors), grayscale, blur (apply?, radius), solarize (global 2 only).
     */
    ViewParams sample(int v, int imgH, int imgW, SplittableRandom rng) {
        ViewParams vp = new ViewParams();
        boolean global = v < 2;
        int[] box = cropParams(imgH, imgW, global ? p.globalScaleMin : p.localScaleMin,
                global ? p.globalScaleMax : p.localScaleMax, p.ratioMin, p.ratioMax, rng);
        vp.top = box[0];
        vp.left = box[1];
        vp.height = box[2];
        vp.width = box[3];
        vp.flip = nextDouble(rng) < p.flipP;
        // RandomApply applies when its draw is <= p.
        if (jitterOps.length > 0 && nextDouble(rng) <= p.jitterP) {
            int[] order = jitterOps.clone();
            for (int i = order.length - 1; i > 0; i--) {
                int j = nextInt(rng, i + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            vp.jitterOrder = order;
            // Factors drawn in op-id order, as ColorJitter.get_params does.
            for (int op : jitterOps) {
                vp.factors[op] = switch (op) {
                    case BRIGHTNESS -> uniform(rng, Math.max(0, 1 - p.brightness), 1 + p.brightness);
                    case CONTRAST -> uniform(rng, Math.max(0, 1 - p.contrast), 1 + p.contrast);
                    case SATURATION -> uniform(rng, Math.max(0, 1 - p.saturation), 1 + p.saturation);
                    default -> uniform(rng, -p.hue, p.hue);
                };
            }
        }
        if (channels == 3 && p.grayscaleP > 0) vp.grayscale = nextDouble(rng) < p.grayscaleP;
        double blurP = v == 0 ? p.blurPGlobal1 : (v == 1 ? p.blurPGlobal2 : p.blurPLocal);
        // DINO's GaussianBlur applies when random.random() <= p.
        if (blurP > 0 && nextDouble(rng) <= blurP) vp.blurRadius = uniform(rng, p.blurRadiusMin, p.blurRadiusMax);
        if (v == 1 && p.solarizeP > 0) vp.solarize = nextDouble(rng) < p.solarizeP;
        return vp;
    }

    /** Renders one view of the planar image {@code src} (channels() x imgH x imgW) into {@code dst} at {@code off}. */
    void render(ViewParams vp, byte[] src, int imgH, int imgW, int size, byte[] dst, int off) {
        int c = channels;
        PilOps.resizedCropBicubic(src, c, imgH, imgW, vp.top, vp.left, vp.height, vp.width, dst, off, size, size);
        if (vp.flip) PilOps.hflip(dst, off, c, size, size);
        for (int op : vp.jitterOrder) {
            double f = vp.factors[op];
            switch (op) {
                case BRIGHTNESS -> PilOps.adjustBrightness(dst, off, c, size, size, f);
                case CONTRAST -> PilOps.adjustContrast(dst, off, c, size, size, f);
                case SATURATION -> PilOps.adjustSaturation(dst, off, c, size, size, f);
                default -> PilOps.adjustHue(dst, off, c, size, size, f);
            }
        }
        if (vp.grayscale) PilOps.grayscale(dst, off, c, size, size);
        if (!Double.isNaN(vp.blurRadius)) PilOps.gaussianBlur(dst, off, c, size, size, vp.blurRadius);
        if (vp.solarize) PilOps.solarize(dst, off, c * size * size);
    }

    /** The views of {@code img} with the generator of (modelSeed, img.id). */
    public CropSet apply(DecodedImage img, long modelSeed) {
        return apply(img, rngFor(modelSeed, img.id));
    }

    /**
     * The 2 + n_local views of {@code img} (8-bit HWC, 1 or 3 channels; converted to this
     * instance's channel count as Pillow's convert would), drawing from {@code rng}.
     */
    public CropSet apply(DecodedImage img, SplittableRandom rng) {
        if (img.width <= 0 || img.height <= 0) throw new IllegalArgumentException("image " + img.id + " has no pixels: " + img.width + "x" + img.height);
        if (img.pixels == null) throw new IllegalArgumentException("image " + img.id + " has no pixel array");
        byte[] src = PilOps.toPlanar(img.pixels, img.height, img.width, img.channels, channels);
        CropSet out = new CropSet();
        out.id = img.id;
        out.modelId = img.modelId;
        out.eventTime = img.eventTime;
        out.label = img.label;
        out.topic = img.topic;
        out.partition = img.partition;
        out.offset = img.offset;
        out.channels = channels;
        out.sizes = sizes();
        int total = 0;
        for (int s : out.sizes) total += channels * s * s;
        out.pixels = new byte[total];
        int off = 0;
        for (int v = 0; v < out.sizes.length; v++) {
            int s = out.sizes[v];
            render(sample(v, img.height, img.width, rng), src, img.height, img.width, s, out.pixels, off);
            off += channels * s * s;
        }
        return out;
    }

    /**
     * ToTensor + Normalize of view {@code view}: writes {@code (x/255 - mean[c]) / std[c]} as CHW
     * floats at {@code dst[dstOffset]}, in float32 steps as torch does. Returns the count written.
     */
    public static int normalize(CropSet crops, int view, double[] mean, double[] std, float[] dst, int dstOffset) {
        int c = crops.channels, s = crops.sizes[view], n = s * s;
        if (mean.length != c || std.length != c) throw new IllegalArgumentException("mean/std need " + c + " values");
        int src = crops.viewOffset(view);
        for (int ch = 0; ch < c; ch++) {
            float m = (float) mean[ch], sd = (float) std[ch];
            int so = src + ch * n, d = dstOffset + ch * n;
            for (int i = 0; i < n; i++) dst[d + i] = ((crops.pixels[so + i] & 0xFF) / 255f - m) / sd;
        }
        return c * n;
    }
}
