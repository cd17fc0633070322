package dinostream.model.graph;

import org.junit.jupiter.api.Test;

import static dinostream.model.graph.Elementwise.*;
import static dinostream.model.graph.Linear.gemm;
import static dinostream.model.graph.Linear.matmul;
import static dinostream.model.graph.Reductions.reduceMean;
import static dinostream.model.graph.Reductions.reduceSum;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every operator's gradient rule against central finite differences (float64 unless noted). */
class GradientRulesTest {
    private static final double TOL = 1e-6;
    private final GradCheck check = new GradCheck();

    private static long[] s(long... d) {
        return d;
    }

    @Test
    void addSubMulDivWithBroadcasting() throws Exception {
        check.assertElementwise((g, p) -> add(g, p[0], p[1]), TOL, false, s(3, 4), s(4));
        check.assertElementwise((g, p) -> add(g, p[0], p[1]), TOL, false, s(2, 1, 4), s(3, 1));
        check.assertElementwise((g, p) -> sub(g, p[0], p[1]), TOL, false, s(3, 1), s(2, 3, 4));
        check.assertElementwise((g, p) -> mul(g, p[0], p[1]), TOL, false, s(2, 3, 4), s(1, 3, 1));
        check.assertElementwise((g, p) -> mul(g, p[0], p[1]), TOL, false, s(), s(2, 3));
        check.assertElementwise((g, p) -> div(g, p[0], p[1]), TOL, true, s(2, 3), s(3));
        check.assertElementwise((g, p) -> div(g, p[0], p[1]), TOL, true, s(1, 3), s(2, 1));
        check.assertElementwise((g, p) -> scale(g, p[0], -2.5), TOL, false, s(5));
    }

    @Test
    void unaryRules() throws Exception {
        check.assertElementwise((g, p) -> neg(g, p[0]), TOL, false, s(2, 3));
        check.assertElementwise((g, p) -> exp(g, p[0]), TOL, false, s(2, 3));
        check.assertElementwise((g, p) -> log(g, p[0]), TOL, true, s(2, 3));
        check.assertElementwise((g, p) -> sqrt(g, p[0]), TOL, true, s(2, 3));
        check.assertElementwise((g, p) -> pow(g, p[0], g.scalar(3, DType.DOUBLE)), TOL, true, s(4));
        check.assertDirectional((g, p) -> mul(g, p[0], cast(g, cast(g, p[0], DType.DOUBLE), DType.FLOAT)), 1e-3, false, s(3));
    }

    @Test
    void erfHasNoFloat64KernelSoItIsCheckedInFloat32() throws Exception {
        check.assertDirectional((g, p) -> erf(g, p[0]), 1e-3, false, s(3, 5));
    }

    @Test
    void maxMinWhere() throws Exception {
        check.assertElementwise((g, p) -> max(g, p[0], p[1]), TOL, false, s(4, 3), s(3));
        check.assertElementwise((g, p) -> min(g, p[0], p[1]), TOL, false, s(4, 3), s(4, 1));
        check.assertElementwise((g, p) -> where(g, compare(g, "Greater", p[0], g.scalar(0, DType.DOUBLE)), p[0], p[1]),
                TOL, false, s(3, 4), s(4));
    }

    @Test
    void reductions() throws Exception {
        check.assertElementwise((g, p) -> reduceSum(g, p[0], true, 1), TOL, false, s(2, 3, 4));
        check.assertElementwise((g, p) -> reduceSum(g, p[0], false, 0, 2), TOL, false, s(2, 3, 4));
        check.assertElementwise((g, p) -> reduceMean(g, p[0], true, -1), TOL, false, s(2, 3, 4));
        check.assertElementwise((g, p) -> reduceMean(g, p[0], false, 0, 1, 2), TOL, false, s(2, 3, 4));
    }

    @Test
    void shapeOperators() throws Exception {
        check.assertElementwise((g, p) -> Shapes.reshape(g, p[0], 4, -1), TOL, false, s(2, 3, 4));
        check.assertElementwise((g, p) -> Shapes.reshape(g, p[0], 0, -1), TOL, false, s(2, 3, 4));   // 0 copies
        check.assertElementwise((g, p) -> Shapes.transpose(g, p[0], 2, 0, 1), TOL, false, s(2, 3, 4));
        check.assertElementwise((g, p) -> Shapes.concat(g, 1, p[0], p[1], p[0]), TOL, false, s(2, 3), s(2, 1));
        check.assertElementwise((g, p) -> Shapes.split(g, p[0], 1, 1, 3)[1], TOL, false, s(2, 4));
        check.assertElementwise((g, p) -> {
            Tensor[] parts = Shapes.split(g, p[0], 0, 2, 1);
            return mul(g, parts[0], parts[0]);   // the unused part gets a zero gradient
        }, TOL, false, s(3, 2));
        check.assertElementwise((g, p) -> Shapes.slice(g, p[0], 1, 1, 3), TOL, false, s(2, 5));
        check.assertElementwise((g, p) -> Shapes.expand(g, p[0], 3, 2, 4), TOL, false, s(2, 1));
    }

    @Test
    void gemmAllTransposeFlagsAndBias() throws Exception {
        for (boolean ta : new boolean[]{false, true}) {
            for (boolean tb : new boolean[]{false, true}) {
                long[] a = ta ? s(4, 3) : s(3, 4);
                long[] b = tb ? s(5, 4) : s(4, 5);
                check.assertElementwise((g, p) -> gemm(g, p[0], p[1], p[2], ta, tb), TOL, false, a, b, s(5));
                check.assertElementwise((g, p) -> gemm(g, p[0], p[1], null, ta, tb), TOL, false, a, b);
            }
        }
        check.assertElementwise((g, p) -> gemm(g, p[0], p[1], p[2], false, true), TOL, false, s(3, 4), s(5, 4), s(3, 1));
    }

    @Test
    void batchedMatmulWithBroadcastBatch() throws Exception {
        check.assertElementwise((g, p) -> matmul(g, p[0], p[1]), TOL, false, s(2, 3, 4, 5), s(2, 3, 5, 2));
        check.assertElementwise((g, p) -> matmul(g, p[0], p[1]), TOL, false, s(2, 3, 4, 5), s(1, 3, 5, 2));
        check.assertElementwise((g, p) -> matmul(g, p[0], p[1]), TOL, false, s(3, 4), s(2, 4, 2));
        check.assertElementwise((g, p) -> matmul(g, p[0], p[1]), TOL, false, s(3, 4), s(4, 2));
    }

    @Test
    void softmaxAndLogSoftmax() throws Exception {
        check.assertElementwise((g, p) -> NN.softmax(g, p[0]), TOL, false, s(3, 5));
        check.assertElementwise((g, p) -> NN.logSoftmax(g, p[0]), TOL, false, s(2, 2, 5));
    }

    @Test
    void layerNormalization() throws Exception {
        // ONNX Runtime keeps the statistics in float32 (stash_type 1), hence the looser bound.
        check.assertElementwise((g, p) -> NN.layerNorm(g, p[0], p[1], p[2], 1e-6), 1e-4, false, s(4, 6), s(6), s(6));
        check.assertElementwise((g, p) -> NN.layerNorm(g, p[0], p[1], p[2], 1e-6), 1e-4, false, s(2, 3, 6), s(6), s(6));
    }

    @Test
    void geluInFloat32() throws Exception {
        check.assertDirectional((g, p) -> NN.gelu(g, p[0]), 1e-3, false, s(4, 6));
        check.assertDirectional((g, p) -> NN.gelu(g, mul(g, p[0], p[1])), 1e-3, false, s(4, 6), s(6));
    }

    @Test
    void valuesUsedTwiceAccumulate() throws Exception {
        check.assertElementwise((g, p) -> add(g, mul(g, p[0], p[0]), exp(g, p[0])), TOL, false, s(3));
        check.assertElementwise((g, p) -> gemm(g, p[0], p[0], null, false, true), TOL, false, s(3, 4));
    }

    @Test
    void brokenRuleIsDetected() throws Exception {
        // A deliberately wrong rule (d/dx x^2 = x) must fail the same check.
        GradCheck.Fn wrong = (g, p) -> {
            Tensor y = g.noGrad(() -> mul(g, p[0], p[0]));
            Tensor out = new Tensor(y.name, y.dtype, y.shape(), true);
            g.record(new Tensor[]{p[0]}, out, gy -> new Tensor[]{mul(g, gy[0], p[0])});
            return out;
        };
        assertTrue(check.elementwise(wrong, false, s(4)) > 0.1);
    }

    @Test
    void unknownDimensionsPassThroughButAreNeverDifferentiated() {
        Graph g = new Graph("symbolic");
        long u = Tensor.UNKNOWN;
        Tensor x = g.inputDynamic("x", DType.FLOAT, new String[]{"N", "T", null}, new long[]{0, 0, 6});
        assertArrayEquals(s(u, 6), Shapes.reshape(g, x, -1, 6).shape());
        assertArrayEquals(s(u, u, 2, 3), Shapes.reshape(g, x, 0, 0, 2, 3).shape());
        assertArrayEquals(s(u, u), Shapes.reshape(g, x, 0, -1).shape());
        assertArrayEquals(s(u, u, 6), Shapes.concat(g, 1, x, x).shape());
        assertArrayEquals(s(u, 4, 6), add(g, x, g.input("y", DType.FLOAT, 4, 1)).shape());
        assertArrayEquals(s(u, u, u), matmul(g, x, Shapes.transpose(g, x, 0, 2, 1)).shape());
        assertThrows(IllegalStateException.class, x::numel);

        Tensor w = g.parameter("w", DType.FLOAT, 6);
        assertThrows(IllegalArgumentException.class, () -> mul(g, x, w));   // a gradient rule would need T and N
    }

    @Test
    void badShapesAreRejected() {
        Graph g = new Graph("bad");
        Tensor a = g.parameter("a", DType.FLOAT, 3, 4), b = g.parameter("b", DType.FLOAT, 3, 5);
        assertThrows(IllegalArgumentException.class, () -> add(g, a, b));
        assertThrows(IllegalArgumentException.class, () -> gemm(g, a, b, null, false, false));
    }
}
