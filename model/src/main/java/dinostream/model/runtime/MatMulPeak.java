package dinostream.model.runtime;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dinostream.model.graph.DType;
import dinostream.model.graph.Graph;
import dinostream.model.graph.Linear;
import dinostream.model.graph.Tensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The machine's fp32 matrix-product rate as ONNX Runtime reaches it: one n×n by n×n MatMul,
 * timed with the same runtime options as the model it is compared with.
 */
public final class MatMulPeak {
    /** GFLOP/s of the fastest and the median run. */
    public record Result(int n, int threads, int runs, double gflopsBest, double gflopsMedian) {}

    private MatMulPeak() {}

    public static Result measure(int n, RuntimeOptions options, int warmup, int runs) {
        Graph g = new Graph("matmul_peak");
        Tensor a = g.input("a", DType.FLOAT, n, n), b = g.input("b", DType.FLOAT, n, n);
        g.output(Linear.matmul(g, a, b), "y");
        double flops = g.matmulFlops();
        // The peak is a property of the machine: no profiler, whatever the model's options say.
        try (OrtSession s = Sessions.create(g.toBytes(), options.withProfiling(null));
             OnnxTensor ta = random(n, 1); OnnxTensor tb = random(n, 2)) {
            Map<String, OnnxTensor> in = Map.of("a", ta, "b", tb);
            double[] gflops = new double[runs];
            for (int r = 0; r < warmup + runs; r++) {
                long t = System.nanoTime();
                s.run(in).close();
                double sec = (System.nanoTime() - t) / 1e9;
                if (r >= warmup) gflops[r - warmup] = flops / sec / 1e9;
            }
            Arrays.sort(gflops);
            double median = runs % 2 == 1 ? gflops[runs / 2] : (gflops[runs / 2 - 1] + gflops[runs / 2]) / 2;
            return new Result(n, options.effectiveThreads(), runs, gflops[runs - 1], median);
        } catch (OrtException e) {
            throw new IllegalStateException("the MatMul peak run failed in ONNX Runtime: " + e.getMessage(), e);
        }
    }

    private static OnnxTensor random(int n, long seed) throws OrtException {
        SplittableRandom rng = new SplittableRandom(seed);
        FloatBuffer f = ByteBuffer.allocateDirect(n * n * 4).order(ByteOrder.nativeOrder()).asFloatBuffer();
        for (int i = 0; i < n * n; i++) f.put(i, (float) rng.nextGaussian());
        return OnnxTensor.createTensor(Sessions.env(), f, new long[]{n, n});
    }
}
