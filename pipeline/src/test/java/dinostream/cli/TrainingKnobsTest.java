package dinostream.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dinostream.model.dino.Schedules;
import dinostream.model.runtime.TrainSession;
import dinostream.pipeline.job.Deployment;
import dinostream.pipeline.job.JobOptions;
import dinostream.pipeline.train.TrainerOptions.Schedule;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static dinostream.cli.CliTest.assertOneLineError;
import static dinostream.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The sweep's knobs on `train` and `demo`: parsed, checked, and the values the train step gets. */
class TrainingKnobsTest {
    @TempDir
    Path dir;

    private JobOptions train(String... args) throws Exception {
        TrainCommand t = new TrainCommand();
        List<String> a = new ArrayList<>(List.of("--bootstrap", "b:1", "--preset", "test", "--out", dir.resolve("run").toString()));
        a.addAll(List.of(args));
        new picocli.CommandLine(t).parseArgs(a.toArray(String[]::new));
        return t.options(Deployment.LOCAL);
    }

    /** Without the new options every schedule is the one it was: DINO's recipes of Schedules. */
    @Test
    void defaultsAreTheRecipesOfBefore() throws Exception {
        JobOptions o = train("--batch", "32");
        assertEquals(Schedule.DEFAULT, o.trainer().schedule());
        assertEquals(Schedules.TrainingSchedule.continuous(32, 100), o.trainer().trainingSchedule());
        JobOptions c = train("--batch", "32", "--schedule", "cosine", "--horizon", "700");
        assertEquals(Schedules.TrainingSchedule.dino(32, 700), c.trainer().trainingSchedule());
        assertNull(o.augment(), "the job's default multi-crop");
        assertEquals("test", o.config().preset);
    }

    private JobOptions trainPreset(String preset, String... args) throws Exception {
        TrainCommand t = new TrainCommand();
        List<String> a = new ArrayList<>(List.of("--bootstrap", "b:1", "--preset", preset, "--out", dir.resolve("run").toString()));
        a.addAll(List.of(args));
        new picocli.CommandLine(t).parseArgs(a.toArray(String[]::new));
        return t.options(Deployment.LOCAL);
    }

    /** fmnist-small trains at the sweep's lr unless told otherwise, also with other shapes; the rest at DINO's. */
    @Test
    void fmnistSmallTrainsAtTheSweepsLr() throws Exception {
        JobOptions o = trainPreset("fmnist-small", "--batch", "64");
        assertEquals(8e-3, o.trainer().schedule().baseLr());
        assertEquals((float) (8e-3 * 64 / 256), o.trainer().trainingSchedule().at(100).lr(), "2e-3 after the warm-up");
        assertEquals(8e-3, trainPreset("fmnist-small", "--schedule", "cosine").trainer().schedule().baseLr(), "cosine");
        assertEquals(Schedules.TrainingSchedule.BASE_LR, trainPreset("fmnist-tiny").trainer().schedule().baseLr(), "not measured past 160 steps");
        JobOptions reshaped = trainPreset("fmnist-small", "--out-dim", "256", "--local-crops", "6");
        assertNull(reshaped.config().preset);
        assertEquals(8e-3, reshaped.trainer().schedule().baseLr(), "an fmnist preset with other shapes is still one");
        assertEquals(1e-3, trainPreset("fmnist-small", "--lr", "1e-3").trainer().schedule().baseLr(), "--lr wins");
        assertEquals(Schedules.TrainingSchedule.BASE_LR, trainPreset("vit-s16").trainer().schedule().baseLr(), "DINO's for the ViTs");
        // The rest of the fmnist schedule is DINO's.
        Schedule s = trainPreset("fmnist-small").trainer().schedule();
        assertEquals(Schedule.DEFAULT.teacherTemp(), s.teacherTemp());
        assertEquals(Schedule.DEFAULT.momentum(), s.momentum());
        assertEquals(Schedule.DEFAULT.weightDecay(), s.weightDecay());
        assertEquals(Schedule.DEFAULT.warmupSteps(), s.warmupSteps());
    }

    @Test
    void continuousKnobsReachTheTrainStep() throws Exception {
        Schedules.TrainingSchedule s = train("--batch", "64", "--warmup-steps", "10", "--lr", "2e-3", "--weight-decay", "0.1",
                "--teacher-temp", "0.07", "--warmup-teacher-temp", "0.04", "--warmup-teacher-temp-steps", "31",
                "--momentum", "0.99", "--momentum-schedule", "cosine", "--horizon", "1000", "--freeze-last-layer-steps", "7")
                .trainer().trainingSchedule();
        TrainSession.Hyper h0 = s.at(0), h30 = s.at(30), h500 = s.at(500), h1000 = s.at(1000);
        assertEquals(0f, h0.lr());
        assertEquals((float) (2e-3 * 64 / 256), h30.lr(), "peak after the warm-up, scaled by batch/256");
        assertEquals((float) (2e-3 * 64 / 256), h1000.lr(), "continuous: no decay");
        assertEquals(0.1f, h500.weightDecay());
        assertEquals(0.04f, h0.teacherTemp());
        assertEquals(0.055f, s.at(15).teacherTemp(), 1e-6f, "linear: half-way at step 15 of 31");
        assertEquals(0.07f, h30.teacherTemp());
        assertEquals(0.07f, h500.teacherTemp());
        assertEquals(0.99f, h0.momentum());
        assertEquals((float) (1 - 0.01 * 0.5), h500.momentum(), 1e-6f, "cosine half-way to 1");
        assertEquals(1f, h1000.momentum());
        assertTrue(s.at(6).freezeLastLayer());
        assertTrue(!s.at(7).freezeLastLayer());
    }

    @Test
    void cosineKnobsReachTheTrainStep() throws Exception {
        Schedules.TrainingSchedule s = train("--batch", "256", "--schedule", "cosine", "--horizon", "100", "--lr", "1e-3", "--min-lr", "1e-5",
                "--weight-decay", "0.02", "--weight-decay-end", "0.2", "--momentum-schedule", "constant").trainer().trainingSchedule();
        assertEquals(1e-3f, s.at(9).lr(), "warm-up over a tenth of the horizon");
        assertEquals(1e-5f, s.at(100).lr());
        assertEquals(0.02f, s.at(0).weightDecay());
        assertEquals(0.2f, s.at(100).weightDecay());
        assertEquals(0.996f, s.at(100).momentum(), "constant");
        assertEquals(1, s.freezeLastLayerSteps(), "a hundredth of the horizon");
    }

    @Test
    void shapeAndCropKnobsReachTheJob() throws Exception {
        JobOptions o = train("--out-dim", "128", "--local-crops", "6", "--local-size", "12", "--global-scale", "0.3,1", "--local-scale", "0.1,0.3");
        assertEquals(128, o.config().outDim);
        assertEquals(6, o.config().nLocal);
        assertEquals(12, o.config().localSize);
        assertNull(o.config().preset, "no longer the preset");
        assertEquals(0.3, o.augment().globalScaleMin);
        assertEquals(1.0, o.augment().globalScaleMax);
        assertEquals(0.1, o.augment().localScaleMin);
        assertEquals(0.3, o.augment().localScaleMax);
        assertEquals(0.0, o.augment().hue, "the rest: the one-channel defaults");
    }

    @Test
    void settingsAreRecordedAsEffectiveValues() throws Exception {
        TrainCommand t = new TrainCommand();
        new picocli.CommandLine(t).parseArgs("--bootstrap", "b:1", "--preset", "test", "--lr", "1e-3", "--local-scale", "0.1,0.3");
        JsonNode r = RunSettings.of("train", t.spec, t.options(Deployment.LOCAL), 640L);
        assertEquals(1e-3, r.path("schedule").path("lr").asDouble());
        assertEquals(0.04, r.path("schedule").path("teacher_temp").asDouble());
        assertEquals("constant", r.path("schedule").path("momentum_schedule").asText());
        assertEquals(10, r.path("schedule").path("freeze_last_layer_steps").asLong());
        assertEquals(0.1, r.path("augment").path("local_scale").get(0).asDouble());
        assertEquals(0.4, r.path("augment").path("global_scale").get(0).asDouble());
        assertEquals(64, r.path("config").path("out_dim").asInt());
        assertEquals(640, r.path("images").asLong());
        assertEquals("--lr", r.path("args").get(4).asText());
    }

    @Test
    void badKnobsAreOneLineUsageErrors() {
        String[] base = {"train", "--bootstrap", "127.0.0.1:9", "--out", dir.resolve("run").toString()};
        for (List<String> bad : List.of(
                List.of("--lr", "0", "--lr must be positive"),
                List.of("--lr", "fast", "--lr"),
                List.of("--min-lr", "1e-6", "--min-lr and --weight-decay-end are for --schedule cosine"),
                List.of("--weight-decay", "-1", "--weight-decay and --weight-decay-end must be >= 0"),
                List.of("--warmup-teacher-temp", "0.04", "--warmup-teacher-temp X and --warmup-teacher-temp-steps N (> 0) go together"),
                List.of("--warmup-teacher-temp-steps", "30", "--warmup-teacher-temp X and --warmup-teacher-temp-steps N (> 0) go together"),
                List.of("--momentum", "1.5", "--momentum must be in [0, 1]"),
                List.of("--momentum-schedule", "linear", "--momentum-schedule must be constant or cosine, got linear"),
                List.of("--freeze-last-layer-steps", "-1", "--freeze-last-layer-steps must be >= 0"),
                List.of("--out-dim", "0", "head sizes must be positive"),
                List.of("--local-size", "10", "local_size 10 must be a positive multiple of patch"),
                List.of("--local-crops", "-1", "n_local must be >= 0"),
                List.of("--global-scale", "0.4", "--global-scale must be MIN,MAX with 0 < MIN <= MAX <= 1, got '0.4'"),
                List.of("--local-scale", "0.5,0.1", "--local-scale must be MIN,MAX"))) {
            List<String> args = new ArrayList<>(List.of(base));
            args.addAll(bad.subList(0, 2));
            assertOneLineError(run(args.toArray(String[]::new)), 2, bad.get(2));
        }
        Path demo = dir.resolve("demo");
        assertOneLineError(run("demo", "--out", demo.toString(), "--momentum", "2"), 2, "--momentum must be in [0, 1]");
        assertTrue(!demo.toFile().exists(), "refused before the run folder is made");
    }

    /** A file's head is its own: an --out-dim it does not have is refused, not dropped. */
    @Test
    void outDimThatAnInitFileDoesNotHaveIsRefused() throws Exception {
        Path state = dir.resolve("in.safetensors");
        assertEquals(0, run("init", "--preset", "test", "--out", state.toString()).rc());
        assertOneLineError(run("train", "--bootstrap", "127.0.0.1:9", "--out", dir.resolve("run").toString(), "--preset", "test",
                "--init-from", state.toString(), "--out-dim", "32"), 2, "--out-dim 32 conflicts with --init-from", "out_dim 64");
        assertEquals(64, train("--init-from", state.toString(), "--out-dim", "64").config().outDim);
    }
}
