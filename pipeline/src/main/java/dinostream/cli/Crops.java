package dinostream.cli;

import dinostream.model.dino.DinoConfig;
import dinostream.model.io.DType;
import dinostream.model.io.SafeTensors;
import dinostream.model.io.SafeTensorsFile;
import dinostream.model.io.TensorData;

import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/**
 * A crops file for one train step: {@code crops/0} ... {@code crops/{V-1}}, V = 2 + n_local, each
 * float32 [B, C, H, W], already normalized; the first two are global crops of {@code img_size},
 * the others local crops of one common size that is a multiple of the patch.
 *
 * @param batch     B
 * @param localSize H (= W) of the local crops, or 0 without local crops
 * @param views     the tensors in view order (file-mapped, not copied)
 */
record Crops(int batch, int localSize, TensorData[] views) {

    /** Reads and checks a crops file against a configuration; any problem is one line naming the file and the key. */
    static Crops read(Path file, DinoConfig cfg) throws IOException {
        SafeTensorsFile f = SafeTensors.read(file);
        try {
            return check(f.tensors(), cfg);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    static Crops check(Map<String, TensorData> tensors, DinoConfig cfg) {
        int v = cfg.nCrops();
        String need = "the configuration needs crops/0..crops/" + (v - 1) + ": 2 global + " + cfg.nLocal + " local";
        for (String k : tensors.keySet()) {
            if (!isViewKey(k, v)) throw new IllegalArgumentException("unexpected key '" + k + "' (" + need + ")");
        }
        TensorData[] views = new TensorData[v];
        for (int i = 0; i < v; i++) {
            views[i] = tensors.get("crops/" + i);
            if (views[i] == null) throw new IllegalArgumentException("missing crops/" + i + " (" + need + ")");
        }

        int batch = -1, local = 0;
        for (int i = 0; i < v; i++) {
            String name = "crops/" + i;
            TensorData t = views[i];
            long[] s = t.shape();
            if (t.dtype() != DType.F32) throw new IllegalArgumentException(name + " is " + t.dtype() + ", expected F32 (normalized float32 pixels)");
            if (s.length != 4) throw new IllegalArgumentException(name + " has shape " + Arrays.toString(s) + ", expected [B, C, H, W]");
            if (s[1] != cfg.inChans) throw new IllegalArgumentException(name + " has shape " + Arrays.toString(s) + ": " + s[1]
                    + " channels, the configuration has in_chans " + cfg.inChans);
            if (batch < 0) {
                if (s[0] <= 0 || s[0] > Integer.MAX_VALUE) throw new IllegalArgumentException(name + " has shape " + Arrays.toString(s) + ": the batch must be positive");
                batch = (int) s[0];
            } else if (s[0] != batch) {
                throw new IllegalArgumentException(name + " has batch " + s[0] + ", crops/0 has " + batch + " (all views need the same batch)");
            }
            if (i < 2) {
                if (s[2] != cfg.imgSize || s[3] != cfg.imgSize) {
                    throw new IllegalArgumentException(name + " has shape " + Arrays.toString(s) + ", expected " + Arrays.toString(
                            new long[]{batch, cfg.inChans, cfg.imgSize, cfg.imgSize}) + " (global crops are img_size " + cfg.imgSize + ")");
                }
            } else {
                if (s[2] != s[3] || s[2] <= 0 || s[2] % cfg.patch != 0) {
                    throw new IllegalArgumentException(name + " has shape " + Arrays.toString(s)
                            + ", expected square local crops whose side is a multiple of the patch " + cfg.patch);
                }
                if (local == 0) local = (int) s[2];
                else if (s[2] != local) {
                    throw new IllegalArgumentException(name + " is " + s[2] + "x" + s[3] + ", crops/2 is " + local + "x" + local
                            + " (all local crops need one size)");
                }
            }
        }
        for (int i = 0; i < v; i++) {
            long at = views[i].firstNonFinite();
            if (at >= 0) {
                float x = (float) views[i].doubleAt(at);
                throw new IllegalArgumentException("crops/" + i + " holds " + (Float.isNaN(x) ? "NaN" : x > 0 ? "+Infinity" : "-Infinity")
                        + " at flat index " + at);
            }
        }
        return new Crops(batch, local, views);
    }

    /** Fresh views for one run (ONNX Runtime reads the file-mapped bytes in place). */
    FloatBuffer[] buffers() {
        FloatBuffer[] b = new FloatBuffer[views.length];
        for (int i = 0; i < b.length; i++) b[i] = views[i].asFloatBuffer();
        return b;
    }

    private static boolean isViewKey(String k, int views) {
        if (!k.startsWith("crops/")) return false;
        String n = k.substring("crops/".length());
        if (n.isEmpty() || n.length() > 9 || !n.chars().allMatch(Character::isDigit) || (n.length() > 1 && n.charAt(0) == '0')) return false;
        return Integer.parseInt(n) < views;
    }
}
