package dinostream.model.eval;

import dinostream.model.runtime.TeacherInference;

import java.io.IOException;
import java.util.function.IntConsumer;

/**
 * The features k-NN scores ({@code model/docs/algorithm.md §6}): the teacher's CLS embedding of
 * every image of a set, in batches, as {@code eval_knn.py extract_features} does; or, as a
 * baseline, the raw pixels. {@link Knn} is the classifier over them ({@code knn_classifier}).
 */
public final class Features {
    private Features() {}

    /** Writes image {@code i} of a set, prepared for the model ([C, H, W], normalized), into {@code dst} at {@code offset}. */
    @FunctionalInterface
    public interface ModelInput {
        void write(int i, float[] dst, int offset) throws IOException;
    }

    /** An embedding with a NaN or infinite value: the teacher's weights have diverged. */
    public static final class NotFiniteException extends IllegalStateException {
        private final int image;
        private final float value;

        NotFiniteException(int image, float value) {
            super("the teacher's embedding of image " + image + " is not finite (" + value + ")");
            this.image = image;
            this.value = value;
        }

        /** Index of the image in the set. */
        public int image() {
            return image;
        }

        public float value() {
            return value;
        }
    }

    /**
     * The teacher's embeddings of images {@code 0 .. n-1}, each {@code side x side}, in calls of at
     * most {@code batch} images.
     *
     * @param progress told the number of images after each call; null: none
     * @return [n][D]
     * @throws NotFiniteException at the first batch with a non-finite embedding (k-NN would refuse
     *                            it anyway; stopping there spares the rest of a large set)
     */
    public static float[][] extract(TeacherInference teacher, int n, int side, int batch, ModelInput images, IntConsumer progress)
            throws IOException {
        if (batch < 1) throw new IllegalArgumentException("batch must be at least 1, got " + batch);
        int per = teacher.channels() * side * side, b = Math.min(batch, n);
        float[] input = new float[b * per];
        float[][] out = new float[n][];
        for (int start = 0; start < n; start += b) {
            int m = Math.min(b, n - start);
            for (int j = 0; j < m; j++) images.write(start + j, input, j * per);
            float[][] e = teacher.embed(input, m, side, side);
            for (int j = 0; j < m; j++) {
                for (float v : e[j]) if (!Float.isFinite(v)) throw new NotFiniteException(start + j, v);
                out[start + j] = e[j];
            }
            if (progress != null) progress.accept(m);
        }
        return out;
    }

    /** The raw-pixel baseline's feature: every 8-bit sample as {@code x/255}, in the given order. */
    public static float[] pixels(byte[] samples) {
        float[] f = new float[samples.length];
        for (int i = 0; i < samples.length; i++) f[i] = (samples[i] & 0xFF) / 255f;
        return f;
    }
}
