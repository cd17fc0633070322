package dinostream.pipeline.embed;

import dinostream.model.dino.DinoConfig;
import dinostream.pipeline.augment.PilOps;
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
        int side = c.imgSize, ch = c.inChans;
        byte[] planar = PilOps.toPlanar(img.pixels, img.height, img.width, img.channels, ch);
        byte[] square;
        if (img.width == side && img.height == side) {
            square = planar;
        } else {
            int shortSide = Math.round(side * 256f / 224f);
            int rh = img.height <= img.width ? shortSide : Math.round((float) shortSide * img.height / img.width);
            int rw = img.width <= img.height ? shortSide : Math.round((float) shortSide * img.width / img.height);
            byte[] resized = new byte[ch * rh * rw];
            PilOps.resizedCropBicubic(planar, ch, img.height, img.width, 0, 0, img.height, img.width, resized, 0, rh, rw);
            int top = Math.round((rh - side) / 2f), left = Math.round((rw - side) / 2f);
            square = new byte[ch * side * side];
            for (int p = 0; p < ch; p++) {
                for (int y = 0; y < side; y++) {
                    System.arraycopy(resized, p * rh * rw + (top + y) * rw + left, square, p * side * side + y * side, side);
                }
            }
        }
        double[] mean = c.meanOrDefault(), std = c.stdOrDefault();
        int n = side * side;
        for (int p = 0; p < ch; p++) {
            float m = (float) mean[p], sd = (float) std[p];
            for (int i = 0; i < n; i++) dst[offset + p * n + i] = ((square[p * n + i] & 0xFF) / 255f - m) / sd;
        }
    }
}
