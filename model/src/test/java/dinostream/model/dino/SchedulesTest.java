package dinostream.model.dino;

import dinostream.model.dino.Schedules.Schedule;
import dinostream.model.dino.Schedules.TrainingSchedule;
import dinostream.model.runtime.TrainSession;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SchedulesTest {
    static final double EPS = 1e-15;

    /**
     * DINO's utils.cosine_scheduler written out as model/docs/algorithm.md §5 describes it, with epochs = total
     * iterations and one iteration per epoch: linspace(start, base, warmup) then
     * final + ½(base − final)(1 + cos(π·i/n)), i = 0..n−1.
     */
    static double[] cosineScheduler(double base, double fin, int total, int warmup, double start) {
        double[] s = new double[total];
        for (int i = 0; i < warmup; i++) s[i] = warmup == 1 ? start : start + (base - start) * i / (warmup - 1);
        int n = total - warmup;
        for (int i = 0; i < n; i++) s[warmup + i] = fin + 0.5 * (base - fin) * (1 + Math.cos(Math.PI * i / n));
        return s;
    }

    @Test
    void lrMatchesDinoCosineSchedulerEverywhere() {
        double base = 5e-4 * 64 / 256;
        Schedule lr = Schedules.lr(5e-4, 64, 1e-6, 10, 100);
        double[] want = cosineScheduler(base, 1e-6, 100, 10, 0);
        for (int i = 0; i < 100; i++) assertEquals(want[i], lr.at(i), 1e-12 * base, "step " + i);

        assertEquals(0.0, lr.at(0), 0.0, "first warm-up step uses lr = 0");
        assertEquals(base, lr.at(9), 0.0, "last warm-up step is the peak");
        assertEquals(base, lr.at(10), EPS, "the cosine starts at the peak");
        assertEquals(1e-6 + 0.5 * (base - 1e-6), lr.at(55), EPS, "halfway through the cosine");
        assertEquals(1e-6 + 0.5 * (base - 1e-6) * (1 + Math.cos(Math.PI * 89 / 90)), lr.at(99), EPS);
        assertTrue(lr.at(99) > 1e-6, "cosine_scheduler never reaches final inside the horizon");
        assertEquals(1e-6, lr.at(100), 0.0);
        assertEquals(1e-6, lr.at(150), 0.0, "past the horizon: final");
    }

    @Test
    void warmupIsNumpyLinspaceInclusiveOfBothEnds() {
        Schedule s = Schedule.cosine(2, 7, 6, 0, 20);
        for (int i = 0; i < 6; i++) assertEquals(2 + i, s.at(i), 1e-15);
        // numpy.linspace(start, stop, 1) == [start]
        assertEquals(3.0, Schedule.cosine(3, 9, 1, 0, 5).at(0), 0.0);
        assertEquals(9.0, Schedule.cosine(3, 9, 1, 0, 5).at(1), 0.0);
    }

    @Test
    void weightDecayGoesFrom004To04WithoutWarmup() {
        Schedule wd = Schedules.weightDecay(0.04, 0.4, 100);
        double[] want = cosineScheduler(0.04, 0.4, 100, 0, 0);
        for (int i = 0; i < 100; i++) assertEquals(want[i], wd.at(i), 1e-15, "step " + i);
        assertEquals(0.04, wd.at(0), 1e-15, "DINO's formula at i = 0 is base up to rounding");
        assertEquals(0.4, wd.at(100), 0.0);
        assertEquals(0.4, wd.at(1_000_000), 0.0);
    }

    @Test
    void constantTailHoldsTheBaseForever() {
        Schedule s = Schedule.constantTail(0, 1e-3, 10);
        assertEquals(0.0, s.at(0), 0.0);
        assertEquals(1e-3, s.at(9), 0.0);
        assertEquals(1e-3, s.at(10), 0.0);
        assertEquals(1e-3, s.at(Long.MAX_VALUE), 0.0);
        assertEquals(Schedules.scaledLr(5e-4, 128), Schedules.lrConstant(5e-4, 128, 5).at(1L << 40), 0.0);
    }

    @Test
    void teacherTemperatureWarmsUpLinearlyThenStays() {
        Schedule t = Schedules.teacherTemp(0.04, 0.07, 30);
        for (int i = 0; i < 30; i++) assertEquals(0.04 + 0.03 * i / 29, t.at(i), 1e-15, "step " + i);
        assertEquals(0.07, t.at(29), 0.0);
        assertEquals(0.07, t.at(30), 0.0);
        assertEquals(0.07, t.at(1_000_000), 0.0);
    }

    @Test
    void momentumReachesOneOnlyPastTheHorizon() {
        Schedule m = Schedules.momentum(0.996, 1000);
        double[] want = cosineScheduler(0.996, 1, 1000, 0, 0);
        for (int i = 0; i < 1000; i++) {
            assertEquals(want[i], m.at(i), 1e-15, "step " + i);
            assertTrue(m.at(i) < 1.0, "momentum 1 at step " + i + " would freeze the teacher early");
        }
        assertEquals(0.996, m.at(0), 1e-15);
        for (int i = 1; i < 1000; i++) assertTrue(m.at(i) >= m.at(i - 1), "non-decreasing at " + i);
        assertEquals(1.0, m.at(1000), 0.0);
        assertEquals(1.0, m.at(5000), 0.0);
    }

    @Test
    void trainingScheduleBundlesTheFourAndFreezesTheLastLayerEarly() {
        TrainingSchedule ts = TrainingSchedule.dino(64, 1000);
        assertEquals(10, ts.freezeLastLayerSteps());
        TrainSession.Hyper h0 = ts.at(0);
        assertEquals(0f, h0.lr());
        assertEquals(0.04f, h0.weightDecay());
        assertEquals(0.04f, h0.teacherTemp());
        assertEquals(0.996f, h0.momentum());
        assertTrue(h0.freezeLastLayer());
        assertTrue(ts.at(9).freezeLastLayer());
        assertFalse(ts.at(10).freezeLastLayer());
        assertEquals((float) Schedules.scaledLr(5e-4, 64), ts.at(99).lr(), "warm-up is a tenth of the horizon");
        assertEquals((float) ts.momentum().at(500), ts.at(500).momentum());
        assertFalse(ts.at(0, false).freezeLastLayer(), "an explicit flag wins");
        assertTrue(ts.at(5000, true).freezeLastLayer());

        TrainingSchedule c = TrainingSchedule.continuous(256, 100);
        assertEquals(5e-4f, c.at(1_000_000).lr());
        assertEquals(0.996f, c.at(1_000_000).momentum());
        assertEquals(10, c.freezeLastLayerSteps());
        assertEquals(0.07f, c.withTeacherTemp(Schedules.teacherTemp(0.04, 0.07, 30)).at(40).teacherTemp());
    }

    @Test
    void rejectsNonsense() {
        assertThrows(IllegalArgumentException.class, () -> Schedule.cosine(0, 1, 10, 0, 5));
        assertThrows(IllegalArgumentException.class, () -> Schedule.constantTail(0, 1, -1));
        assertThrows(IllegalArgumentException.class, () -> Schedule.constant(1).at(-1));
        assertThrows(IllegalArgumentException.class, () -> Schedules.lr(5e-4, 0, 1e-6, 1, 2));
        assertThrows(IllegalArgumentException.class, () -> Schedule.constant(Double.NaN));
    }
}
