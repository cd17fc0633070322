package dinostream.model.dino;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DinoConfigTest {
    /** Configurations whose every step would be NaN are refused when read, with the reason. */
    @Test
    void valuesThatMakeEveryStepNaNAreRefused() {
        for (String[] c : new String[][]{
                {"{\"std\": [0.0]}", "std values must be finite and > 0"},
                {"{\"student_temp\": 0}", "student_temp must be > 0"},
                {"{\"adam_eps\": -1e-8}", "adam_eps must be > 0"},
                {"{\"ln_eps\": 0}", "ln_eps must be > 0"},
                {"{\"center_momentum\": 1.5}", "center_momentum must be in [0, 1]"},
                {"{\"beta2\": 1.0}", "beta1 and beta2 must be in [0, 1)"},
                {"{\"clip_grad\": -1}", "clip_grad must be >= 0"},
                {"{\"local_size\": 10}", "local_size 10 must be a positive multiple of patch 4"},
                {"{\"precision\": \"bf17\"}", "precision must be fp32, bf16 or fp16, got bf17"}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DinoConfig.fromJson(c[0]), c[0]);
            assertTrue(e.getMessage().contains(c[1]), e.getMessage());
        }
        assertEquals(0.3530, DinoConfig.fromJson("{\"std\": [0.3530]}").std[0]);
    }

    /** A file without the field is fp32; fp32 is written as absent, so fp32 JSON (and graphs) keep their bytes. */
    @Test
    void precisionDefaultsToFp32AndFp32IsWrittenAsAbsent() {
        assertEquals(DinoConfig.Precision.FP32, DinoConfig.fromJson("{}").precision());
        DinoConfig explicit = DinoConfig.fromJson("{\"precision\": \"fp32\"}");
        assertEquals(DinoConfig.Precision.FP32, explicit.precision());
        assertEquals(new DinoConfig().toJson(), explicit.toJson());
        DinoConfig bf16 = DinoConfig.fromJson("{\"precision\": \"bf16\"}");
        assertEquals(DinoConfig.Precision.BF16, bf16.precision());
        assertTrue(bf16.toJson().contains("\"precision\":\"bf16\""), bf16.toJson());
        assertEquals(DinoConfig.Precision.FP16, bf16.copy().precision(DinoConfig.Precision.FP16).precision());
    }
}
