package dinostream.pipeline.embed;

import dinostream.model.dino.DinoConfig;
import dinostream.pipeline.augment.PilOps;
import dinostream.pipeline.decode.DecodedPixels;
import dinostream.pipeline.records.DecodedImage;

/**
 * DINO's evaluation transform for one image: an image already at the model's size is used as it
 * is; any other is resized (bicubic, shorter side to size * 256/224) and centre-cropped to the
 * model's size, as eval_knn.py does (Resize(256) + CenterCrop(224) at ImageNet scale); then
 * normalized with the model's mean and std, channel-major.
 */
public final class EmbedInput {
    private EmbedInput() {}

    public static void write(DecodedImage img, DinoConfig c, float[] dst, int offset) {
        write(img.pixels, img.height, img.width, img.channels, c, dst, offset);
    }

    public static void write(DecodedPixels px, DinoConfig c, float[] dst, int offset) {
        write(px.pixels(), px.height(), px.width(), px.channels(), c, dst, offset);
    }

    /** {@code hwc}: 8-bit {@code height x width x channels}, channels interleaved (1 or 3). */
    public static void write(byte[] hwc, int height, int width, int channels, DinoConfig c, float[] dst, int offset) {
        int side = c.imgSize, ch = c.inChans;
        byte[] planar = PilOps.toPlanar(hwc, height, width, channels, ch);
        byte[] square;
        if (width == side && height == side) {
            square = planar;
        } else {
            int shortSide = Math.round(side * 256f / 224f);
            int rh = height <= width ? shortSide : Math.round((float) shortSide * height / width);
            int rw = width <= height ? shortSide : Math.round((float) shortSide * width / height);
            byte[] resized = new byte[ch * rh * rw];
            PilOps.resizedCropBicubic(planar, ch, height, width, 0, 0, height, width, resized, 0, rh, rw);
            int top = Math.round((rh - side) / 2f), left = Math.round((rw - side) / 2f);
            square = new byte[ch * side * side];
            for (int p = 0; p < ch; p++) {
                for (int y = 0; y < side; y++) {
                    System.arraycopy(resized, p * rh * rw + (top + y) * rw + left, square, p * side * side + y * side, side);
                }
            }
        }
        normalize(square, ch, side * side, c, dst, offset);
    }

    /** 8-bit planar {@code [channels][n]} as {@code (x/255 - mean) / std} in float32, into {@code dst} at {@code offset}. */
    public static void normalize(byte[] planar, int channels, int n, DinoConfig c, float[] dst, int offset) {
        double[] mean = c.meanOrDefault(), std = c.stdOrDefault();
        for (int p = 0; p < channels; p++) {
            float m = (float) mean[p], sd = (float) std[p];
            for (int i = 0; i < n; i++) dst[offset + p * n + i] = ((planar[p * n + i] & 0xFF) / 255f - m) / sd;
        }
    }
}
