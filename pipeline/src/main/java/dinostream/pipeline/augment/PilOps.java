package dinostream.pipeline.augment;

import java.util.Arrays;

/**
 * The Pillow 8-bit image operations DINO's torchvision pipeline runs, ported so that the same
 * inputs give the same bytes (checked against Pillow 9.4 in the tests). Images are planar
 * (channel-major, C x H x W) unsigned bytes starting at {@code off}; RGB is three planes.
 *
 * <p>Where Pillow computes in C {@code float} the port uses Java {@code float}, and where it
 * computes in {@code double} (mixed with double literals) the port does too: the rounding of the
 * last bit decides which 8-bit value comes out.
 */
public final class PilOps {
    private PilOps() {}

    // ---------------------------------------------------------------- conversions

    /** ITU-R 601-2 luma as Pillow's RGB to "L" conversion: fixed point, rounded. */
    public static int luma(int r, int g, int b) {
        return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
    }

    /**
     * Interleaved HWC bytes to planar CHW with {@code outC} channels: RGB to gray by Pillow's
     * {@code convert("L")}, gray to RGB by repeating the plane (Pillow's {@code convert("RGB")}).
     */
    public static byte[] toPlanar(byte[] hwc, int h, int w, int inC, int outC) {
        if (inC != 1 && inC != 3) throw new IllegalArgumentException("channels must be 1 or 3, got " + inC);
        if (outC != 1 && outC != 3) throw new IllegalArgumentException("output channels must be 1 or 3, got " + outC);
        int n = h * w;
        if (hwc.length != n * inC) {
            throw new IllegalArgumentException("pixels: expected " + n * inC + " bytes for " + h + "x" + w + "x" + inC + ", got " + hwc.length);
        }
        byte[] out = new byte[n * outC];
        if (inC == outC) {
            if (inC == 1) {
                System.arraycopy(hwc, 0, out, 0, n);
            } else {
                for (int i = 0, s = 0; i < n; i++, s += 3) {
                    out[i] = hwc[s];
                    out[n + i] = hwc[s + 1];
                    out[2 * n + i] = hwc[s + 2];
                }
            }
        } else if (inC == 3) {
            for (int i = 0, s = 0; i < n; i++, s += 3) {
                out[i] = (byte) luma(hwc[s] & 0xFF, hwc[s + 1] & 0xFF, hwc[s + 2] & 0xFF);
            }
        } else {
            for (int ch = 0; ch < 3; ch++) System.arraycopy(hwc, 0, out, ch * n, n);
        }
        return out;
    }

    // ---------------------------------------------------------------- geometry

    /** Pillow's {@code FLIP_LEFT_RIGHT}, in place. */
    public static void hflip(byte[] px, int off, int c, int h, int w) {
        for (int row = 0; row < c * h; row++) {
            int a = off + row * w, b = a + w - 1;
            while (a < b) {
                byte t = px[a];
                px[a++] = px[b];
                px[b--] = t;
            }
        }
    }

    /** Bicubic kernel of Pillow's Resample.c (a = -0.5), support 2. */
    static double bicubic(double x) {
        final double a = -0.5;
        if (x < 0.0) x = -x;
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }

    private static final int PRECISION_BITS = 32 - 8 - 2;

    /** Per output pixel: first input index, count, and ksize fixed-point weights (Pillow's precompute_coeffs + normalize_coeffs_8bpc). */
    private static final class Coeffs {
        final int ksize;
        final int[] bounds;
        final int[] kk;

        Coeffs(int inSize, int outSize) {
            // Box (0, inSize): Pillow passes the box corners as C floats; integral sizes are exact.
            double scale = (double) ((float) inSize - 0f) / outSize;
            double filterscale = Math.max(scale, 1.0); // the kernel widens when shrinking: antialiasing
            double support = 2.0 * filterscale;
            ksize = (int) Math.ceil(support) * 2 + 1;
            bounds = new int[outSize * 2];
            kk = new int[outSize * ksize];
            double[] k = new double[ksize];
            for (int xx = 0; xx < outSize; xx++) {
                double center = 0f + (xx + 0.5) * scale;
                double ww = 0.0;
                double ss = 1.0 / filterscale;
                int xmin = (int) (center - support + 0.5);
                if (xmin < 0) xmin = 0;
                int xmax = (int) (center + support + 0.5);
                if (xmax > inSize) xmax = inSize;
                xmax -= xmin;
                for (int x = 0; x < xmax; x++) {
                    double wgt = bicubic((x + xmin - center + 0.5) * ss);
                    k[x] = wgt;
                    ww += wgt;
                }
                for (int x = 0; x < xmax; x++) {
                    double v = ww != 0.0 ? k[x] / ww : k[x];
                    kk[xx * ksize + x] = v < 0 ? (int) (-0.5 + v * (1 << PRECISION_BITS)) : (int) (0.5 + v * (1 << PRECISION_BITS));
                }
                bounds[xx * 2] = xmin;
                bounds[xx * 2 + 1] = xmax;
            }
        }
    }

    /** Pillow's clip8: the fixed-point sum back to 0..255 (arithmetic shift = floor). */
    private static int clip8(int ss) {
        int v = ss >> PRECISION_BITS;
        return v < 0 ? 0 : (v > 255 ? 255 : v);
    }

    /**
     * torchvision's {@code resized_crop} on a PIL image: crop the box (left {@code x0}, top {@code y0},
     * {@code cw} x {@code ch}) out of the planar {@code src} (C x srcH x srcW), then Pillow's
     * {@code resize((outW, outH), BICUBIC)}: a horizontal then a vertical pass of the separable
     * antialiased bicubic filter with 22-bit fixed-point weights, each pass rounded and clipped to
     * 8 bits. The result is written planar to {@code dst} at {@code dstOff}.
     */
    public static void resizedCropBicubic(byte[] src, int c, int srcH, int srcW, int y0, int x0, int ch, int cw,
                                          byte[] dst, int dstOff, int outH, int outW) {
        if (x0 < 0 || y0 < 0 || cw <= 0 || ch <= 0 || x0 + cw > srcW || y0 + ch > srcH) {
            throw new IllegalArgumentException("crop box outside the image: " + x0 + "," + y0 + " " + cw + "x" + ch + " in " + srcW + "x" + srcH);
        }
        int srcPlane = srcH * srcW, dstPlane = outH * outW;
        boolean needH = cw != outW, needV = ch != outH;
        if (!needH && !needV) {
            for (int p = 0; p < c; p++) {
                for (int y = 0; y < ch; y++) {
                    System.arraycopy(src, p * srcPlane + (y0 + y) * srcW + x0, dst, dstOff + p * dstPlane + y * outW, cw);
                }
            }
            return;
        }
        Coeffs hc = needH ? new Coeffs(cw, outW) : null;
        Coeffs cv = needV ? new Coeffs(ch, outH) : null;
        // Rows of the crop that the vertical pass reads (Pillow resamples only these horizontally).
        int rowFirst = 0, rowLast = ch;
        if (needV) {
            rowFirst = cv.bounds[0];
            rowLast = cv.bounds[outH * 2 - 2] + cv.bounds[outH * 2 - 1];
        }
        int rows = rowLast - rowFirst;
        byte[] tmp = needH ? new byte[rows * outW] : null;
        int[] acc = new int[outW];
        for (int p = 0; p < c; p++) {
            int sp = p * srcPlane;
            // Source of the vertical pass: the horizontally resampled rows, or the crop itself.
            byte[] vin;
            int vOff, vStride;
            if (needH) {
                for (int y = 0; y < rows; y++) {
                    int rowBase = sp + (y0 + rowFirst + y) * srcW + x0;
                    for (int xx = 0; xx < outW; xx++) {
                        int xmin = hc.bounds[xx * 2], xmax = hc.bounds[xx * 2 + 1], kb = xx * hc.ksize;
                        int ss = 1 << (PRECISION_BITS - 1);
                        for (int x = 0; x < xmax; x++) ss += (src[rowBase + xmin + x] & 0xFF) * hc.kk[kb + x];
                        int v = clip8(ss);
                        if (needV) tmp[y * outW + xx] = (byte) v;
                        else dst[dstOff + p * dstPlane + y * outW + xx] = (byte) v;
                    }
                }
                if (!needV) continue;
                vin = tmp;
                vOff = 0;
                vStride = outW;
            } else {
                vin = src;
                vOff = sp + (y0 + rowFirst) * srcW + x0;
                vStride = srcW;
            }
            // Whole rows at a time (the same integer sums as Pillow's per-pixel loop, in cache order).
            for (int yy = 0; yy < outH; yy++) {
                int ymin = cv.bounds[yy * 2] - rowFirst, ymax = cv.bounds[yy * 2 + 1], kb = yy * cv.ksize;
                Arrays.fill(acc, 1 << (PRECISION_BITS - 1));
                for (int y = 0; y < ymax; y++) {
                    int k = cv.kk[kb + y], row = vOff + (ymin + y) * vStride;
                    for (int xx = 0; xx < outW; xx++) acc[xx] += (vin[row + xx] & 0xFF) * k;
                }
                int outRow = dstOff + p * dstPlane + yy * outW;
                for (int xx = 0; xx < outW; xx++) dst[outRow + xx] = (byte) clip8(acc[xx]);
            }
        }
    }

    // ---------------------------------------------------------------- colour (Pillow ImageEnhance = Image.blend)

    /** Pillow's ImagingBlend of one pixel: {@code in1 + alpha * (in2 - in1)} in C float, truncated (clipped when extrapolating). */
    static int blend(int in1, int in2, float alpha) {
        float t = in1 + alpha * (in2 - in1);
        if (alpha >= 0 && alpha <= 1.0f) return (int) t;
        if (t <= 0.0f) return 0;
        if (t >= 255.0f) return 255;
        return (int) t;
    }

    /** torchvision {@code adjust_brightness} (PIL ImageEnhance.Brightness): blend with black. */
    public static void adjustBrightness(byte[] px, int off, int c, int h, int w, double factor) {
        float a = (float) factor; // Pillow takes the factor as a C float
        if (a == 1.0f) return;
        blendLut(px, off, c * h * w, 0, a);
    }

    /** Blend with a constant grey {@code degenerate}: the result depends on the input byte alone, so a table does it. */
    private static void blendLut(byte[] px, int off, int n, int degenerate, float a) {
        byte[] lut = new byte[256];
        for (int v = 0; v < 256; v++) lut[v] = (byte) blend(degenerate, v, a);
        for (int i = off; i < off + n; i++) px[i] = lut[px[i] & 0xFF];
    }

    /** Pillow's ImageEnhance.Contrast grey level: {@code int(mean(convert("L")) + 0.5)}. */
    public static int grayMean(byte[] px, int off, int c, int h, int w) {
        int n = h * w;
        long sum = 0;
        if (c == 1) {
            for (int i = off; i < off + n; i++) sum += px[i] & 0xFF;
        } else {
            for (int i = off; i < off + n; i++) sum += luma(px[i] & 0xFF, px[i + n] & 0xFF, px[i + 2 * n] & 0xFF);
        }
        return (int) ((double) sum / n + 0.5);
    }

    /** torchvision {@code adjust_contrast} (PIL ImageEnhance.Contrast): blend with the integer grey mean. */
    public static void adjustContrast(byte[] px, int off, int c, int h, int w, double factor) {
        float a = (float) factor;
        if (a == 1.0f) return;
        blendLut(px, off, c * h * w, grayMean(px, off, c, h, w), a);
    }

    /** torchvision {@code adjust_saturation} (PIL ImageEnhance.Color): blend with the luma; a no-op on one channel. */
    public static void adjustSaturation(byte[] px, int off, int c, int h, int w, double factor) {
        float a = (float) factor;
        if (c == 1 || a == 1.0f) return;
        int n = h * w;
        for (int i = off; i < off + n; i++) {
            int r = px[i] & 0xFF, g = px[i + n] & 0xFF, b = px[i + 2 * n] & 0xFF;
            int l = luma(r, g, b);
            px[i] = (byte) blend(l, r, a);
            px[i + n] = (byte) blend(l, g, a);
            px[i + 2 * n] = (byte) blend(l, b, a);
        }
    }

    private static int clamp8(int v) {
        return v < 0 ? 0 : (v > 255 ? 255 : v);
    }

    /**
     * torchvision {@code adjust_hue} on a PIL image: to Pillow's 8-bit HSV, add
     * {@code uint8(hue * 255)} to H with wrap-around, back to RGB. A no-op on one channel.
     * The shift is {@code (int)(hue * 255)} modulo 256, which is what numpy < 1.24 did for a
     * negative factor (numpy 1.24 raises OverflowError there instead).
     */
    public static void adjustHue(byte[] px, int off, int c, int h, int w, double hue) {
        if (c == 1) return;
        int shift = ((int) (hue * 255.0)) & 0xFF;
        int n = h * w;
        int[] hsv = new int[3];
        for (int i = off; i < off + n; i++) {
            rgbToHsv(px[i] & 0xFF, px[i + n] & 0xFF, px[i + 2 * n] & 0xFF, hsv);
            int rgb = hsvToRgb((hsv[0] + shift) & 0xFF, hsv[1], hsv[2]);
            px[i] = (byte) (rgb >> 16);
            px[i + n] = (byte) (rgb >> 8);
            px[i + 2 * n] = (byte) rgb;
        }
    }

    /** Pillow's rgb2hsv_row (Convert.c), float and double steps as there. */
    static void rgbToHsv(int r, int g, int b, int[] out) {
        int maxc = Math.max(r, Math.max(g, b));
        int minc = Math.min(r, Math.min(g, b));
        if (minc == maxc) {
            out[0] = 0;
            out[1] = 0;
            out[2] = maxc;
            return;
        }
        float cr = (float) (maxc - minc);
        float s = cr / (float) maxc;
        float rc = ((float) (maxc - r)) / cr;
        float gc = ((float) (maxc - g)) / cr;
        float bc = ((float) (maxc - b)) / cr;
        float hh;
        if (r == maxc) hh = bc - gc;
        else if (g == maxc) hh = (float) (2.0 + rc - bc);
        else hh = (float) (4.0 + gc - rc);
        hh = (float) ((hh / 6.0 + 1.0) % 1.0); // C fmod: same truncating remainder as Java's %
        out[0] = clamp8((int) (hh * 255.0));
        out[1] = clamp8((int) (s * 255.0));
        out[2] = maxc;
    }

    /** Pillow's hsv2rgb (Convert.c); returns 0xRRGGBB. */
    static int hsvToRgb(int h, int s, int v) {
        if (s == 0) return (v << 16) | (v << 8) | v;
        int i = (int) Math.floor((float) h * 6.0 / 255.0);
        float f = (float) ((float) h * 6.0 / 255.0 - (float) i);
        float fs = (float) (((float) s) / 255.0);
        // C round(): half away from zero; all arguments here are >= 0, where Math.round agrees.
        int p = clamp8((int) Math.round((float) v * (1.0 - fs)));
        int q = clamp8((int) Math.round((float) v * (1.0 - fs * f)));
        int t = clamp8((int) Math.round((float) v * (1.0 - fs * (1.0 - f))));
        int r, g, b;
        switch (i % 6) {
            case 0: r = v; g = t; b = p; break;
            case 1: r = q; g = v; b = p; break;
            case 2: r = p; g = v; b = t; break;
            case 3: r = p; g = q; b = v; break;
            case 4: r = t; g = p; b = v; break;
            default: r = v; g = p; b = q; break;
        }
        return (r << 16) | (g << 8) | b;
    }

    /** torchvision {@code rgb_to_grayscale(img, 3)}: Pillow's luma written to all three planes; a no-op on one channel. */
    public static void grayscale(byte[] px, int off, int c, int h, int w) {
        if (c == 1) return;
        int n = h * w;
        for (int i = off; i < off + n; i++) {
            byte l = (byte) luma(px[i] & 0xFF, px[i + n] & 0xFF, px[i + 2 * n] & 0xFF);
            px[i] = l;
            px[i + n] = l;
            px[i + 2 * n] = l;
        }
    }

    /** Pillow's {@code ImageOps.solarize(img, 128)}: every value {@code v >= 128} becomes {@code 255 - v}. */
    public static void solarize(byte[] px, int off, int n) {
        for (int i = off; i < off + n; i++) {
            int v = px[i] & 0xFF;
            if (v >= 128) px[i] = (byte) (255 - v);
        }
    }

    // ---------------------------------------------------------------- blur

    /** Box radius of Pillow's _gaussian_blur_radius (BoxBlur.c) for {@code passes} extended box passes. */
    static float boxRadius(float radius, int passes) {
        float sigma2 = radius * radius / passes;
        float bigL = (float) Math.sqrt(12.0 * sigma2 + 1.0);
        float l = (float) Math.floor((bigL - 1.0) / 2.0);
        float a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2);
        a /= 6 * (sigma2 - (l + 1) * (l + 1));
        return l + a;
    }

    /**
     * Pillow's {@code ImageFilter.GaussianBlur(radius)}: not a sampled Gaussian but three passes of an
     * "extended box" (integer box plus fractional end weights, 24-bit fixed point, edges clamped) per
     * axis, rows first, with the box radius chosen so that the variance matches {@code radius^2}
     * (Gwosdek et al. 2011). Reproduced bit for bit, since that is what DINO's blur is.
     */
    public static void gaussianBlur(byte[] px, int off, int c, int h, int w, double radius) {
        float fr = boxRadius((float) radius, 3);
        if (fr == 0) return;
        int ir = (int) fr;
        long ww = (long) ((float) (1 << 24) / (fr * 2 + 1)) & 0xFFFFFFFFL;
        long fw = (((1L << 24) - (ir * 2L + 1) * ww) & 0xFFFFFFFFL) / 2;
        int n = Math.max(h, w);
        int[] a = new int[n], b = new int[n];
        for (int p = 0; p < c; p++) {
            int base = off + p * h * w;
            for (int y = 0; y < h; y++) boxPasses(px, base + y * w, 1, w, ir, ww, fw, a, b);
            for (int x = 0; x < w; x++) boxPasses(px, base + x, w, h, ir, ww, fw, a, b);
        }
    }

    /** Three extended-box passes over one line of {@code len} pixels at {@code start} with {@code stride}. */
    private static void boxPasses(byte[] px, int start, int stride, int len, int r, long ww, long fw, int[] a, int[] b) {
        for (int i = 0; i < len; i++) a[i] = px[start + i * stride] & 0xFF;
        int[] in = a, out = b;
        for (int pass = 0; pass < 3; pass++) {
            boxLine(in, out, len, r, ww, fw);
            int[] t = in;
            in = out;
            out = t;
        }
        for (int i = 0; i < len; i++) px[start + i * stride] = (byte) in[i];
    }

    /**
     * One pass of Pillow's ImagingLineBoxBlur8: out[x] = round((ww * sum_{|k|<=r} in[x+k] +
     * fw * (in[x-r-1] + in[x+r+1])) / 2^24), indices clamped to the line (edge replication).
     */
    private static void boxLine(int[] in, int[] out, int len, int r, long ww, long fw) {
        int last = len - 1;
        long acc = 0;
        for (int k = -r - 1; k <= r - 1; k++) acc += in[clampIdx(k, last)];
        // Edges clamp their indices; the interior, where every index is inside, does not need to.
        int lo = Math.min(r + 1, len), hi = Math.max(lo, len - r - 1);
        for (int x = 0; x < lo; x++) acc = boxPixel(in, out, x, acc, clampIdx(x - r - 1, last), clampIdx(x + r, last), clampIdx(x + r + 1, last), ww, fw);
        for (int x = lo; x < hi; x++) acc = boxPixel(in, out, x, acc, x - r - 1, x + r, x + r + 1, ww, fw);
        for (int x = hi; x < len; x++) acc = boxPixel(in, out, x, acc, clampIdx(x - r - 1, last), clampIdx(x + r, last), clampIdx(x + r + 1, last), ww, fw);
    }

    private static long boxPixel(int[] in, int[] out, int x, long acc, int left, int add, int right, long ww, long fw) {
        acc += in[add] - in[left];
        long bulk = acc * ww + (long) (in[left] + in[right]) * fw;
        out[x] = (int) ((bulk + (1L << 23)) >>> 24);
        return acc;
    }

    private static int clampIdx(int i, int last) {
        return i < 0 ? 0 : (i > last ? last : i);
    }
}
