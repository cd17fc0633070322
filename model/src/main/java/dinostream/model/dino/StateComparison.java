package dinostream.model.dino;

import dinostream.model.io.DType;
import dinostream.model.io.TensorData;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The metric of the PyTorch reference's compare_state.py (outside this repository;
 * model/docs/step-compiler.md, "Correctness"): per float tensor ||a - b|| / (||b|| + 1e-6 sqrt(n)),
 * the key third of every attn.qkv.bias masked (its true gradient is exactly zero, so Adam moves it by
 * float noise), integer tensors compared exactly.
 */
public final class StateComparison {
    public record Report(double worst, String worstKey, List<String> missing, List<String> intMismatch) {
        public boolean ok(double tol) {
            return worst <= tol && missing.isEmpty() && intMismatch.isEmpty();
        }

        @Override
        public String toString() {
            return "worst " + worst + " at " + worstKey + ", missing " + missing + ", int mismatch " + intMismatch;
        }
    }

    public static Report compare(Map<String, TensorData> got, Map<String, TensorData> want) {
        double worst = 0;
        String where = null;
        List<String> missing = new ArrayList<>(), ints = new ArrayList<>();
        for (Map.Entry<String, TensorData> e : want.entrySet()) {
            String k = e.getKey();
            TensorData w = e.getValue(), g = got.get(k);
            if (g == null || g.numel() != w.numel()) {
                missing.add(k);
                continue;
            }
            if (w.dtype() == DType.I64) {
                if (!java.util.Arrays.equals(g.toLongArray(), w.toLongArray())) ints.add(k);
                continue;
            }
            double[] a = g.toDoubleArray(), b = w.toDoubleArray();
            if (k.endsWith("attn.qkv.bias")) {
                int d = b.length / 3;
                for (int i = d; i < 2 * d; i++) a[i] = b[i] = 0;
            }
            double diff = 0, norm = 0;
            for (int i = 0; i < a.length; i++) {
                if (!Double.isFinite(a[i])) return new Report(Double.POSITIVE_INFINITY, k, missing, ints);
                diff += (a[i] - b[i]) * (a[i] - b[i]);
                norm += b[i] * b[i];
            }
            double err = Math.sqrt(diff) / (Math.sqrt(norm) + 1e-6 * Math.sqrt(a.length));
            if (err > worst) {
                worst = err;
                where = k;
            }
        }
        return new Report(worst, where, missing, ints);
    }
}
