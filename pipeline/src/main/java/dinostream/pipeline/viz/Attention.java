package dinostream.pipeline.viz;

import dinostream.model.dino.DinoConfig;
import dinostream.model.export.InferenceExport;
import dinostream.model.io.DinoState;
import dinostream.model.runtime.RuntimeOptions;
import dinostream.model.runtime.TeacherInference;
import dinostream.pipeline.augment.PilOps;
import dinostream.pipeline.embed.EmbedInput;
import dinostream.pipeline.records.DecodedImage;

import java.util.Arrays;

/**
 * The teacher's last-block CLS attention for single images ({@value InferenceExport#ATTENTION_FILE}):
 * prepares the image, runs the model and hands back the raw rows with the pixels they were computed
 * on, so that a figure shows exactly what the model saw.
 *
 * <p>Two ways to prepare an image: at the model's size, DINO's eval transform ({@link EmbedInput}:
 * resize and centre-crop to a square of {@code img_size}); or at a chosen {@code size} (a multiple
 * of the patch) as DINO's {@code visualize_attention.py} does, to keep more resolution: bicubic
 * resize of the shorter side to {@code size}, keeping the aspect ratio, then the longer side
 * centre-cropped to a multiple of the patch (the model interpolates its position embeddings).
 */
public final class Attention implements AutoCloseable {

    /**
     * The attention of one image.
     *
     * @param pixels what the model saw, 8-bit planar {@code channels x height x width} (the
     *               normalized input mapped back to 0..255)
     * @param rows   per head, the softmax row of the CLS query over {@code 1 + gridH * gridW}
     *               tokens: CLS first, then the patches row-major
     */
    public record Maps(int channels, int height, int width, byte[] pixels, int patch, int gridH, int gridW, float[][] rows) {
        public int heads() {
            return rows.length;
        }

        /** Head {@code h}'s attention on the patches (CLS column dropped), row-major {@code gridH x gridW}. */
        public float[] patchMap(int h) {
            return Arrays.copyOfRange(rows[h], 1, rows[h].length);
        }

        /** The weight head {@code h}'s CLS query puts on the CLS token itself (the column the maps drop). */
        public float clsWeight(int h) {
            return rows[h][0];
        }
    }

    private final DinoConfig cfg;
    private final TeacherInference teacher;

    /** A session on the teacher of {@code state} (its attention model is built here, in well under a second for the small presets). */
    public Attention(DinoState state, RuntimeOptions runtime) {
        this(InferenceExport.attentionModel(state), state.config(), runtime);
    }

    public Attention(byte[] attentionOnnx, DinoConfig cfg, RuntimeOptions runtime) {
        this.cfg = cfg.copy();
        this.teacher = new TeacherInference(attentionOnnx, runtime);
    }

    public DinoConfig config() {
        return cfg.copy();
    }

    /**
     * Checks a {@code --size}: null (the model's size) or a positive multiple of the patch.
     *
     * @throws IllegalArgumentException naming the patch size
     */
    public static void checkSize(Integer size, DinoConfig cfg) {
        if (size == null) return;
        if (size < cfg.patch || size % cfg.patch != 0) {
            throw new IllegalArgumentException("size " + size + " is not a positive multiple of the model's patch size " + cfg.patch
                    + " (e.g. " + Math.max(cfg.patch, Math.round((float) size / cfg.patch) * cfg.patch) + ")");
        }
    }

    /** The attention of {@code img} (8-bit HWC, 1 or 3 channels), prepared at the model's size (null) or at {@code size}. */
    public Maps run(DecodedImage img, Integer size) {
        checkSize(size, cfg);
        int c = cfg.inChans;
        int h, w;
        float[] input;
        byte[] shown;
        if (size == null) {
            h = w = cfg.imgSize;
            input = new float[c * h * w];
            EmbedInput.write(img, cfg, input, 0);
            shown = denormalize(input, c, h * w);
        } else {
            int[] hw = new int[2];
            shown = resizeKeepingAspect(img, c, size, cfg.patch, hw);
            h = hw[0];
            w = hw[1];
            input = new float[c * h * w];
            EmbedInput.normalize(shown, c, h * w, cfg, input, 0);
        }
        int gh = h / cfg.patch, gw = w / cfg.patch;
        float[][] rows = teacher.attention(input, 1, h, w)[0];
        int tokens = 1 + gh * gw;
        if (rows.length != cfg.heads || rows[0].length != tokens) {
            throw new IllegalStateException("the attention model returned [" + rows.length + ", " + rows[0].length + "] for a "
                    + h + "x" + w + " image; expected [" + cfg.heads + ", " + tokens + "]");
        }
        return new Maps(c, h, w, shown, cfg.patch, gh, gw, rows);
    }

    /**
     * The model input mapped back to 8-bit pixels. Exact: normalization is affine and the error of
     * float32 arithmetic is far below the half level that rounding tolerates.
     */
    private byte[] denormalize(float[] input, int c, int n) {
        double[] mean = cfg.meanOrDefault(), std = cfg.stdOrDefault();
        byte[] out = new byte[c * n];
        for (int p = 0; p < c; p++) {
            for (int i = 0; i < n; i++) {
                long v = Math.round((input[p * n + i] * std[p] + mean[p]) * 255.0);
                out[p * n + i] = (byte) Math.max(0, Math.min(255, v));
            }
        }
        return out;
    }

    /**
     * Shorter side to {@code size} (Pillow bicubic), longer side proportional, then centre-cropped
     * to a multiple of the patch. Writes the final height and width into {@code hw}.
     */
    static byte[] resizeKeepingAspect(DecodedImage img, int c, int size, int patch, int[] hw) {
        byte[] planar = PilOps.toPlanar(img.pixels, img.height, img.width, img.channels, c);
        int rh = img.height <= img.width ? size : (int) Math.round((double) size * img.height / img.width);
        int rw = img.width <= img.height ? size : (int) Math.round((double) size * img.width / img.height);
        byte[] resized = new byte[c * rh * rw];
        PilOps.resizedCropBicubic(planar, c, img.height, img.width, 0, 0, img.height, img.width, resized, 0, rh, rw);
        int h = rh / patch * patch, w = rw / patch * patch;
        int top = (rh - h) / 2, left = (rw - w) / 2;
        byte[] out = new byte[c * h * w];
        for (int p = 0; p < c; p++) {
            for (int y = 0; y < h; y++) System.arraycopy(resized, p * rh * rw + (top + y) * rw + left, out, p * h * w + y * w, w);
        }
        hw[0] = h;
        hw[1] = w;
        return out;
    }

    @Override
    public void close() {
        teacher.close();
    }
}
