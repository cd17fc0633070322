package dinostream.model.runtime;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Presets;
import dinostream.model.dino.TrainStep;
import dinostream.model.io.DinoState;
import org.junit.jupiter.api.Test;

import java.nio.FloatBuffer;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class TrainSessionTest {
    @Test
    void stateBytesEqualTheSerializedStateAfterSteps() {
        DinoConfig c = Presets.get("test");
        try (TrainSession s = new TrainSession(TrainStep.build(c, 2), DinoState.init(c, 4), RuntimeOptions.cpu().withThreads(1), 0)) {
            Random r = new Random(1);
            for (int step = 0; step < 2; step++) {
                FloatBuffer[] crops = new FloatBuffer[c.nCrops()];
                for (int v = 0; v < crops.length; v++) {
                    long[] sh = TrainStep.cropShape(c, 2, v);
                    float[] x = new float[(int) (sh[0] * sh[1] * sh[2] * sh[3])];
                    for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                    crops[v] = FloatBuffer.wrap(x);
                }
                s.run(crops, new TrainSession.Hyper(1e-3f, 0.04f, 0.04f, 0.996f, false));
            }
            byte[] bytes = s.stateBytes();
            assertArrayEquals(s.state().toBytes(), bytes);
            assertEquals(2, DinoState.fromBytes(bytes, "test").step());
        }
    }

    @Test
    void aStateOfAnotherShapeIsRejected() {
        DinoConfig c = Presets.get("test");
        DinoConfig other = Presets.get("test");
        other.dim = 48;
        other.heads = 3;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new TrainSession(TrainStep.build(c, 2), DinoState.init(other, 0), RuntimeOptions.cpu(), 0));
        org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("student/backbone.cls_token"), e.getMessage());
    }
}
