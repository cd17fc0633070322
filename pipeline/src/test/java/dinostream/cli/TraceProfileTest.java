package dinostream.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

class TraceProfileTest {
    @TempDir
    Path dir;

    private static String node(String name, String op, long ts, long dur, String in, String out) {
        return "{\"cat\":\"Node\",\"name\":\"" + name + "_kernel_time\",\"ts\":" + ts + ",\"dur\":" + dur
                + ",\"args\":{\"op_name\":\"" + op + "\",\"input_type_shape\":[" + in + "],\"output_type_shape\":[" + out + "]}}";
    }

    private static String run(long ts, long dur) {
        return "{\"cat\":\"Session\",\"name\":\"model_run\",\"ts\":" + ts + ",\"dur\":" + dur + "}";
    }

    @Test
    void sumsTimedRunsPerOpAndPhaseWithProductFlops() throws Exception {
        // Run 1 (warm-up, skipped) then run 2: a transposed-A Gemm, A [100, 30] ᵀ · B [100, 20] = [30, 20]:
        // 2·30·20·100 = 120,000 FLOPs in 2 ms; a Transpose in the same phase; a node ONNX Runtime renamed.
        String gemm = "{\"float\":[100,30]},{\"float\":[100,20]}";
        String trace = "[" + String.join(",",
                run(0, 100_000), node("backward/n3", "Gemm", 10, 50_000, gemm, "{\"float\":[30,20]}"),
                run(200_000, 5_000),
                node("backward/n3", "Gemm", 200_010, 2_000, gemm, "{\"float\":[30,20]}"),
                node("backward/n4", "Transpose", 202_010, 1_000, "{\"float\":[30,20]}", "{\"float\":[20,30]}"),
                node("MatMulScaleFusion_7", "FusedMatMul", 203_010, 1_000,
                        "{\"float\":[2,4,5]},{\"float\":[2,5,6]}", "{\"float\":[2,4,6]}")) + "]";
        Path file = dir.resolve("trace.json");
        Files.writeString(file, trace);

        TraceProfile p = TraceProfile.read(file, 1);
        assertEquals(1, p.runs);
        assertEquals(5.0, p.runMs, 1e-9);
        assertEquals(4.0, p.kernelMs, 1e-9);
        TraceProfile.Row g = p.byOp.get(0);
        assertEquals("Gemm", g.key());
        assertEquals(2.0, g.ms(), 1e-9);
        assertEquals(120_000 / 1e9, g.gflop(), 1e-15);
        assertEquals("backward", p.byPhase.get(0).key());
        assertEquals(3.0, p.byPhase.get(0).ms(), 1e-9);
        assertEquals("(fused)", p.byPhase.get(1).key());
        // 2 batches of [4,5]·[5,6]: 2·(2·4·6)·5 = 480.
        assertEquals(480 / 1e9, p.byOp.stream().filter(r -> r.key().equals("FusedMatMul")).findFirst().orElseThrow().gflop(), 1e-15);
    }
}
