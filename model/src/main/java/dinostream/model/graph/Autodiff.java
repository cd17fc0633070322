package dinostream.model.graph;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reverse-mode differentiation over a {@link Graph}'s tape: walks the recorded operations from
 * the loss backwards, calls each operation's gradient rule, and sums the gradients of values
 * that feed several operations. Everything it emits is standard ONNX.
 */
public final class Autodiff {
    private Autodiff() {}

    /**
     * Emits the gradient of the scalar {@code loss} with respect to each of {@code wrt}. A value
     * that does not influence the loss maps to null. The tape is consumed.
     */
    public static Map<Tensor, Tensor> gradients(Graph g, Tensor loss, List<Tensor> wrt) {
        if (loss.numel() != 1) throw new IllegalArgumentException("loss must be a scalar: " + loss);
        return g.noGrad(() -> {
            Map<Tensor, List<Tensor>> pending = new IdentityHashMap<>();
            pending.computeIfAbsent(loss, k -> new ArrayList<>()).add(g.scalar(1, loss.dtype));
            for (int e = g.tape.size() - 1; e >= 0; e--) {
                Graph.TapeEntry entry = g.tape.get(e);
                Tensor[] outGrads = new Tensor[entry.outputs().length];
                boolean any = false;
                for (int i = 0; i < outGrads.length; i++) {
                    List<Tensor> gs = pending.remove(entry.outputs()[i]);
                    if (gs != null) {
                        outGrads[i] = Elementwise.sumAll(g, gs);
                        any = true;
                    }
                }
                if (!any) continue;
                Tensor[] inGrads = entry.rule().apply(outGrads);
                for (int i = 0; i < entry.inputs().length; i++) {
                    Tensor in = entry.inputs()[i];
                    if (in == null || !in.requiresGrad || inGrads[i] == null) continue;
                    if (!Arrays.equals(inGrads[i].shape(), in.shape())) {
                        throw new IllegalStateException("gradient rule produced " + inGrads[i] + " for " + in);
                    }
                    pending.computeIfAbsent(in, k -> new ArrayList<>()).add(inGrads[i]);
                }
            }
            Map<Tensor, Tensor> out = new LinkedHashMap<>();
            for (Tensor w : wrt) {
                List<Tensor> gs = pending.get(w);
                out.put(w, gs == null ? null : Elementwise.sumAll(g, gs));
            }
            g.tapeConsumed();
            return out;
        });
    }
}
