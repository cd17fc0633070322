package dinostream.pipeline.embed;

import dinostream.model.dino.Presets;
import dinostream.model.export.InferenceExport;
import dinostream.model.io.DinoState;
import dinostream.pipeline.records.DecodedImage;
import dinostream.pipeline.records.TeacherUpdate;
import dinostream.schemas.DeadLetter;
import dinostream.schemas.EmbeddingRecord;
import org.apache.flink.streaming.util.TwoInputStreamOperatorTestHarness;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Images waiting for a teacher are bounded, and a refused model's images are dropped, not held. */
class EmbedderOperatorTest {
    static DecodedImage image(String model, int i) {
        DecodedImage d = new DecodedImage();
        d.id = model + "-" + i;
        d.modelId = model;
        d.width = 16;
        d.height = 16;
        d.channels = 1;
        d.pixels = new byte[256];
        d.topic = "images";
        d.offset = i;
        return d;
    }

    static TwoInputStreamOperatorTestHarness<DecodedImage, TeacherUpdate, EmbeddingRecord> harness(EmbedderOptions o) throws Exception {
        return new TwoInputStreamOperatorTestHarness<>(new EmbedderOperator(o));
    }

    static EmbedderOptions options() {
        return EmbedderOptions.builder().model(Presets.get("test")).batch(4)
                .maxWaitingBytes(3 * 256)   // three images
                .build();
    }

    @Test
    void theWaitIsBoundedAndARefusedModelIsDropped() throws Exception {
        try (var h = harness(options())) {
            h.open();
            for (int i = 0; i < 5; i++) h.processElement1(image("slow", i), i);
            List<DeadLetter> dead = new ArrayList<>();
            h.getSideOutput(EmbedderOperator.DEAD_LETTERS).forEach(r -> dead.add(r.getValue()));
            // Room for three: the two oldest are dead letters, the newest three wait.
            assertEquals(List.of(0L, 1L), dead.stream().map(DeadLetter::getOffset).toList());
            assertTrue(dead.get(0).getReason().startsWith("NO_TEACHER: model 'slow'"), dead.get(0).getReason());

            // The slow model's teacher comes: its three waiting images are embedded.
            DinoState s = DinoState.init(Presets.get("test"), 0);
            h.processElement2(new TeacherUpdate("slow", 0, "v".repeat(64), InferenceExport.backboneModel(s)), 30);
            // A refused model: what waits is dropped at the notice, and what comes later is not held.
            for (int i = 0; i < 3; i++) h.processElement1(image("refused", i), 40 + i);
            h.processElement2(TeacherUpdate.rejected("refused"), 50);
            for (int i = 3; i < 9; i++) h.processElement1(image("refused", i), 50 + i);
            h.processElement1(image("late", 0), 60);   // there is room again: it waits, no dead letter
            h.prepareSnapshotPreBarrier(1);
            List<String> ids = h.extractOutputValues().stream().map(e -> e.getImageId().toString()).toList();
            assertEquals(List.of("slow-2", "slow-3", "slow-4"), ids);
            List<DeadLetter> after = new ArrayList<>();
            h.getSideOutput(EmbedderOperator.DEAD_LETTERS).forEach(r -> after.add(r.getValue()));
            assertEquals(2, after.size(), "the refused model's images get their dead letters from the trainer, not here");
        }
    }
}
