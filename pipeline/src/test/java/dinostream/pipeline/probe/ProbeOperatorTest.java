package dinostream.pipeline.probe;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Presets;
import dinostream.model.export.InferenceExport;
import dinostream.model.io.DinoState;
import dinostream.pipeline.records.DecodedImage;
import dinostream.pipeline.records.TeacherUpdate;
import org.apache.flink.streaming.util.TwoInputStreamOperatorTestHarness;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ProbeOperatorTest {
    static final DinoConfig CFG = Presets.get("test");

    static DecodedImage image(int i, int label) {
        DecodedImage d = new DecodedImage();
        d.id = "img-" + i;
        d.modelId = "m";
        d.label = label;
        d.width = d.height = CFG.imgSize;
        d.channels = 1;
        d.pixels = new byte[CFG.imgSize * CFG.imgSize];
        Random r = new Random(i);
        // Class 0 dark, class 1 bright: separable by any reasonable feature.
        for (int p = 0; p < d.pixels.length; p++) d.pixels[p] = (byte) (label == 0 ? r.nextInt(40) : 215 + r.nextInt(40));
        return d;
    }

    static TeacherUpdate teacher(long step) {
        return new TeacherUpdate("m", step, "v" + step, InferenceExport.backboneModel(DinoState.init(CFG, 1)));
    }

    static ProbeOptions options(Path dir, int size) {
        return ProbeOptions.builder().model(CFG).size(size).everySteps(10).runDir(dir.toString()).batch(8).build();
    }

    @Test
    void scoresEachTeacherAtMostEveryNStepsOnTheHeldImages(@TempDir Path dir) throws Exception {
        try (var h = new TwoInputStreamOperatorTestHarness<>(new ProbeOperator(options(dir, 60)))) {
            h.open();
            for (int i = 0; i < 100; i++) h.processElement1(image(i, i % 2), i);
            h.processElement2(teacher(10), 0);
            h.processElement2(teacher(15), 0);   // within 10 steps of the last score: skipped
            h.processElement2(teacher(20), 0);
            List<ProbeResult> out = h.extractOutputValues();
            assertEquals(Arrays.asList(10L, 20L), out.stream().map(r -> r.step).toList());
            assertEquals(30, out.get(0).bank);     // the reservoir holds 60 of the 100
            assertEquals(30, out.get(0).queries);
            assertTrue(out.get(0).top1 > 90, "dark vs bright: " + out.get(0).top1);
        }
        List<String> lines = Files.readAllLines(dir.resolve("probe.jsonl"));
        assertEquals(2, lines.size());
        assertTrue(lines.get(1).contains("\"images_seen\":160"), lines.get(1));
    }

    @Test
    void unlabelledImagesAreIgnoredAndTheSetSurvivesARestore(@TempDir Path dir) throws Exception {
        // 10 labelled, 50 unlabelled, 10 labelled into 20 slots: were an unlabelled image kept, the
        // set would be full before the last labelled ones arrive and the first teacher would be scored.
        var snapshot = (org.apache.flink.runtime.checkpoint.OperatorSubtaskState) null;
        try (var h = new TwoInputStreamOperatorTestHarness<>(new ProbeOperator(options(dir, 20)))) {
            h.open();
            for (int i = 0; i < 10; i++) h.processElement1(image(i, i % 2), i);
            for (int i = 0; i < 50; i++) {
                DecodedImage unlabelled = image(100 + i, 0);
                unlabelled.label = null;
                h.processElement1(unlabelled, 0);
            }
            h.processElement2(teacher(10), 0);
            assertEquals(List.of(), h.extractOutputValues(), "10 labelled images of 20 slots: no score yet");
            for (int i = 10; i < 20; i++) h.processElement1(image(i, i % 2), i);
            snapshot = h.snapshot(1, 1);
        }
        try (var h = new TwoInputStreamOperatorTestHarness<>(new ProbeOperator(options(dir, 20)))) {
            h.initializeState(snapshot);
            h.open();
            h.processElement2(teacher(20), 0);
            List<ProbeResult> out = h.extractOutputValues();
            assertEquals(1, out.size(), "the 20 labelled images survived the restore and fill the set");
            assertEquals(10, out.get(0).bank);
            assertEquals(10, out.get(0).queries);
        }
    }
}
