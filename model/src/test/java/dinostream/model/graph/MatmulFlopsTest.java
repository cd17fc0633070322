package dinostream.model.graph;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Presets;
import dinostream.model.dino.TrainStep;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MatmulFlopsTest {
    @Test
    void countsTwoMnkPerProductWithTransposeFlagsAndBatchAxes() {
        Graph g = new Graph("flops");
        Tensor a = g.input("a", DType.FLOAT, 3, 4), bt = g.input("bt", DType.FLOAT, 5, 4);
        Tensor at = g.input("at", DType.FLOAT, 4, 3), b = g.input("b", DType.FLOAT, 4, 5);
        Tensor x = g.input("x", DType.FLOAT, 2, 3, 4), w = g.input("w", DType.FLOAT, 4, 6);
        Linear.gemm(g, a, bt, null, false, true);    // [3,4]·[4,5]: 2·3·5·4 = 120
        Linear.gemm(g, at, b, null, true, false);    // [3,4]·[4,5] again, A transposed: 120
        Linear.matmul(g, x, w);                       // 2 batches of [3,4]·[4,6]: 2·(2·3)·6·4 = 288
        Elementwise.add(g, a, a);                     // not a product: 0
        assertEquals(120 + 120 + 288, g.matmulFlops());
    }

    @Test
    void backwardProductsAreCounted() {
        // y = sum(x·W), x [8,3], W [3,2]: forward 2·8·2·3 = 96; dW = xᵀ·dY is another 96 (dx is not asked for).
        Graph g = new Graph("grad");
        Tensor x = g.input("x", DType.FLOAT, 8, 3), w = g.parameter("w", DType.FLOAT, 3, 2);
        Tensor y = Reductions.reduceSum(g, Linear.gemm(g, x, w, null, false, false), false, 0, 1);
        Autodiff.gradients(g, y, List.of(w));
        assertEquals(96 + 96, g.matmulFlops());
    }

    @Test
    void aLoopModelCountsItsBodyOncePerStep() {
        DinoConfig c = Presets.get("test");
        long one = TrainStep.build(c, 2).matmulFlops();
        assertTrue(one > 0);
        assertEquals(3 * one, TrainStep.buildLoop(c, 2, 3).matmulFlops());
    }

    @Test
    void phasePrefixesNodeNames() {
        Graph g = new Graph("phases");
        Tensor a = g.input("a", DType.FLOAT, 2, 2);
        g.phase("teacher");
        g.output(Elementwise.add(g, a, a), "y");
        g.phase("");
        g.output(Elementwise.mul(g, a, a), "z");
        assertEquals(List.of("teacher/n0", "n1"), g.toGraphProto().getNodeList().stream().map(n -> n.getName()).toList());
    }
}
