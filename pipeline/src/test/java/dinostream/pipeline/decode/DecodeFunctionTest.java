package dinostream.pipeline.decode;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dinostream.pipeline.records.DecodedImage;
import dinostream.pipeline.records.KafkaImage;
import dinostream.schemas.DeadLetter;
import dinostream.schemas.ImageEncoding;
import dinostream.schemas.ImageRecord;
import dinostream.schemas.codec.AvroCodec;
import java.awt.image.BufferedImage;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.apache.flink.streaming.util.ProcessFunctionTestHarnesses;
import org.apache.flink.util.InstantiationUtil;
import org.junit.jupiter.api.Test;

class DecodeFunctionTest {

    private static final AvroCodec<ImageRecord> CODEC = AvroCodec.imageRecords();
    private static final long NOW = 1_700_000_000_000L;

    private static KafkaImage kafka(byte[] value, long offset) {
        return new KafkaImage(("k" + offset).getBytes(StandardCharsets.UTF_8), value, "images", 2, offset, 5);
    }

    private static byte[] grayPng(int w, int h) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_BYTE_GRAY);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) img.getRaster().setSample(x, y, 0, x + 10 * y);
        return TestImages.encode(img, "png");
    }

    private static byte[] value(ImageRecord r) {
        return CODEC.encode(r);
    }

    @Test
    void goodRecordsOutBadOnesToDeadLettersWithCounters() throws Exception {
        // Flink ships the function serialized: it must survive that.
        DecodeFunction fn = InstantiationUtil.clone(new DecodeFunction("default-model", 3, new Limits(1 << 20, 1_000_000, 1000), java.util.List.of()));
        OneInputStreamOperatorTestHarness<KafkaImage, DecodedImage> h = ProcessFunctionTestHarnesses.forProcessFunction(fn);
        h.setProcessingTime(NOW);

        ImageRecord png = TestImages.record(ImageEncoding.PNG, grayPng(4, 3));
        png.setId("good-1");
        png.setEventTime(Instant.ofEpochMilli(123_456));
        png.setLabel(7);
        ImageRecord raw = TestImages.raw(2, 1, 3, new byte[] {1, 2, 3, 4, 5, 6});
        raw.setId("good-2");
        raw.setModelId("other-model");

        byte[] unknownSchema = value(png);
        unknownSchema[3] ^= 1;
        byte[] truncated = value(png);
        truncated = Arrays.copyOf(truncated, truncated.length - 1);
        ImageRecord bomb = TestImages.record(ImageEncoding.PNG, TestImages.pngDeclaring(100_000, 100_000));
        ImageRecord corruptJpeg = TestImages.record(ImageEncoding.JPEG,
                new byte[] {(byte) 0xFF, (byte) 0xD8, (byte) 0xFF, 1, 2, 3, 4, 5, 6, 7, 8, 9});
        ImageRecord noDims = TestImages.raw(2, null, 1, new byte[2]);

        List<KafkaImage> in = List.of(
                kafka(value(png), 10),
                kafka("not avro at all".getBytes(StandardCharsets.UTF_8), 11),
                kafka(unknownSchema, 12),
                kafka(truncated, 13),
                kafka(null, 14),
                kafka(value(bomb), 15),
                kafka(value(corruptJpeg), 16),
                kafka(value(noDims), 17),
                kafka(value(raw), 18));
        for (KafkaImage k : in) h.processElement(k, k.timestamp);

        List<DecodedImage> out = h.extractOutputValues();
        assertEquals(2, out.size());
        DecodedImage a = out.get(0);
        assertEquals("good-1", a.id);
        assertEquals("test", a.source);
        assertEquals(123_456, a.eventTime);
        assertEquals("default-model", a.modelId);
        assertEquals(7, a.label);
        assertEquals(4, a.width);
        assertEquals(3, a.height);
        assertEquals(3, a.channels);
        assertEquals(36, a.pixels.length);
        assertEquals(21, a.pixels[3 * (2 * 4 + 1)] & 0xFF);   // x=1, y=2: 1 + 10 * 2, replicated to RGB
        assertEquals("images", a.topic);
        assertEquals(2, a.partition);
        assertEquals(10, a.offset);
        DecodedImage b = out.get(1);
        assertEquals("other-model", b.modelId);
        assertNull(b.label);
        assertArrayEquals(new byte[] {1, 2, 3, 4, 5, 6}, b.pixels);
        assertEquals(18, b.offset);

        List<DeadLetter> dead = new ArrayList<>();
        for (StreamRecord<DeadLetter> r : h.getSideOutput(DecodeFunction.DEAD_LETTERS)) dead.add(r.getValue());
        assertEquals(7, dead.size());
        assertDead(dead.get(0), in.get(1), "avro", "BAD_ENCODING: not Avro single-object encoding: starts with 6E 6F");
        assertDead(dead.get(1), in.get(2), "avro", "UNKNOWN_SCHEMA: unknown writer schema: fingerprint ");
        assertDead(dead.get(2), in.get(3), "avro", "BAD_ENCODING: truncated");
        assertDead(dead.get(3), in.get(4), "avro", "BAD_ENCODING: no value");
        assertDead(dead.get(4), in.get(5), "validate", "SIDE_TOO_LONG: PNG of 100000x100000 has a side over the limit of 1000");
        assertDead(dead.get(5), in.get(6), "decode", "CORRUPT_IMAGE: corrupt JPEG header");
        assertDead(dead.get(6), in.get(7), "validate", "MISSING_RAW_DIMENSIONS: RAW_U8 needs width, height and channels; missing height");

        assertEquals(2, fn.decodedCount());
        assertEquals(3, fn.deadLetterCount("BAD_ENCODING"));
        assertEquals(1, fn.deadLetterCount("UNKNOWN_SCHEMA"));
        assertEquals(1, fn.deadLetterCount("SIDE_TOO_LONG"));
        assertEquals(1, fn.deadLetterCount("CORRUPT_IMAGE"));
        assertEquals(1, fn.deadLetterCount("MISSING_RAW_DIMENSIONS"));
        assertEquals(0, fn.deadLetterCount("TOO_MANY_PIXELS"));
        h.close();
    }

    @Test
    void recordsOfModelsTheJobDoesNotTrainAreDeadLettersBetweenGoodOnes() throws Exception {
        DecodeFunction fn = new DecodeFunction("a", 3, Limits.DEFAULT, List.of("a", "b"));
        OneInputStreamOperatorTestHarness<KafkaImage, DecodedImage> h = ProcessFunctionTestHarnesses.forProcessFunction(fn);
        ImageRecord unnamed = TestImages.raw(2, 1, 3, new byte[6]);
        ImageRecord b = TestImages.raw(2, 1, 3, new byte[6]);
        b.setModelId("b");
        ImageRecord other = TestImages.raw(2, 1, 3, new byte[6]);
        other.setModelId("c");
        h.processElement(kafka(value(unnamed), 1), 1);
        h.processElement(kafka(value(other), 2), 2);
        h.processElement(kafka(value(b), 3), 3);
        assertEquals(List.of("a", "b"), h.extractOutputValues().stream().map(d -> d.modelId).toList());
        assertEquals(List.of(1L, 3L), h.extractOutputValues().stream().map(d -> d.offset).toList());
        List<DeadLetter> dead = new ArrayList<>();
        for (StreamRecord<DeadLetter> r : h.getSideOutput(DecodeFunction.DEAD_LETTERS)) dead.add(r.getValue());
        assertEquals(1, dead.size());
        assertEquals("route", dead.get(0).getStage());
        assertEquals("UNKNOWN_MODEL: model 'c' is not one this job trains (--models a,b)", dead.get(0).getReason());
        assertEquals(2, dead.get(0).getOffset());
        assertEquals(1, fn.deadLetterCount("UNKNOWN_MODEL"));
        h.close();
    }

    @Test
    void modelIdsThatCannotNameASnapshotFolderAreDeadLettersBetweenGoodOnes() throws Exception {
        DecodeFunction fn = new DecodeFunction("m", 3, Limits.DEFAULT, List.of());
        OneInputStreamOperatorTestHarness<KafkaImage, DecodedImage> h = ProcessFunctionTestHarnesses.forProcessFunction(fn);
        List<String> ids = List.of("good-1", "../../etc", "x".repeat(500), "a\nb", "", "good-2");
        for (int i = 0; i < ids.size(); i++) {
            ImageRecord r = TestImages.raw(2, 1, 3, new byte[6]);
            r.setModelId(ids.get(i));
            h.processElement(kafka(value(r), i), i);
        }
        // The empty id is "none named": the default model.
        assertEquals(List.of("good-1", "m", "good-2"), h.extractOutputValues().stream().map(d -> d.modelId).toList());
        List<DeadLetter> dead = new ArrayList<>();
        for (StreamRecord<DeadLetter> r : h.getSideOutput(DecodeFunction.DEAD_LETTERS)) dead.add(r.getValue());
        assertEquals(List.of(1L, 2L, 3L), dead.stream().map(DeadLetter::getOffset).toList());
        for (DeadLetter d : dead) assertTrue(d.getReason().startsWith("INVALID_MODEL_ID: model id '"), d.getReason());
        assertTrue(dead.get(1).getReason().contains("... (500 characters)"), dead.get(1).getReason());
        assertTrue(dead.get(2).getReason().contains("'a\\u000ab'"), dead.get(2).getReason());
        assertEquals(3, fn.deadLetterCount("INVALID_MODEL_ID"));
        h.close();
    }

    @Test
    void aDeadLetterKeepsTheValueUpToItsLimitWithSizeAndHash() throws Exception {
        DecodeFunction fn = new DecodeFunction("m", 3, Limits.DEFAULT, List.of(), 100);
        OneInputStreamOperatorTestHarness<KafkaImage, DecodedImage> h = ProcessFunctionTestHarnesses.forProcessFunction(fn);
        byte[] big = new byte[3_000_000];
        new java.util.Random(5).nextBytes(big);
        h.processElement(kafka(big, 7), 7);
        h.processElement(kafka("small".getBytes(StandardCharsets.UTF_8), 8), 8);
        List<DeadLetter> dead = new ArrayList<>();
        for (StreamRecord<DeadLetter> r : h.getSideOutput(DecodeFunction.DEAD_LETTERS)) dead.add(r.getValue());
        assertEquals(2, dead.size());
        assertEquals(100, dead.get(0).getValue().remaining());
        assertEquals(java.nio.ByteBuffer.wrap(big, 0, 100), dead.get(0).getValue());
        assertEquals(3_000_000L, dead.get(0).getOriginalSize());
        assertEquals(java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(big)), dead.get(0).getOriginalSha256());
        assertEquals(7, dead.get(0).getOffset());
        assertEquals(5, dead.get(1).getValue().remaining(), "a small value is kept whole");
        assertEquals(5L, dead.get(1).getOriginalSize());
        // Encoded, the capped dead letter is far under a default producer's 1 MiB max.request.size.
        assertTrue(dinostream.schemas.codec.AvroCodec.deadLetters().encode(dead.get(0)).length < 1000);
        h.close();
    }

    @Test
    void grayModelGetsOneChannel() throws Exception {
        OneInputStreamOperatorTestHarness<KafkaImage, DecodedImage> h =
                ProcessFunctionTestHarnesses.forProcessFunction(new DecodeFunction("m", 1, Limits.DEFAULT, java.util.List.of()));
        ImageRecord rgb = TestImages.raw(2, 1, 3, new byte[] {(byte) 255, 0, 0, 0, 0, (byte) 255});
        h.processElement(kafka(value(rgb), 0), 0);
        DecodedImage d = h.extractOutputValues().get(0);
        assertEquals(1, d.channels);
        assertArrayEquals(new byte[] {76, 29}, d.pixels);
        h.close();
    }

    @Test
    void constructorRejectsBadArguments() {
        assertThrows(IllegalArgumentException.class, () -> new DecodeFunction("", 3, Limits.DEFAULT, java.util.List.of()));
        assertThrows(IllegalArgumentException.class, () -> new DecodeFunction("m", 4, Limits.DEFAULT, java.util.List.of()));
    }

    private static void assertDead(DeadLetter d, KafkaImage from, String stage, String reasonPrefix) {
        assertEquals(stage, d.getStage());
        assertTrue(d.getReason().startsWith(reasonPrefix), "reason was: " + d.getReason());
        assertEquals(ByteBuffer.wrap(from.key), d.getKey());
        if (from.value == null) assertNull(d.getValue());
        else assertEquals(ByteBuffer.wrap(from.value), d.getValue());
        assertEquals(from.topic, d.getTopic());
        assertEquals(from.partition, d.getPartition());
        assertEquals(from.offset, d.getOffset());
        assertEquals(Instant.ofEpochMilli(NOW), d.getTime());
        assertTrue(!d.getReason().contains("\n"), "one line");
    }
}
