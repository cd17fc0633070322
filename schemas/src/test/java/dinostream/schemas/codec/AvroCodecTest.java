package dinostream.schemas.codec;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dinostream.schemas.DeadLetter;
import dinostream.schemas.EmbeddingRecord;
import dinostream.schemas.ImageEncoding;
import dinostream.schemas.ImageRecord;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.message.BinaryMessageEncoder;
import org.junit.jupiter.api.Test;

class AvroCodecTest {

    private static final Instant T = Instant.ofEpochMilli(1_700_000_000_123L);

    private static ImageRecord image() {
        return ImageRecord.newBuilder()
                .setId("cam7-000123")
                .setSource("cam7")
                .setEventTime(T)
                .setEncoding(ImageEncoding.RAW_U8)
                .setWidth(2).setHeight(1).setChannels(3)
                .setBytes(ByteBuffer.wrap(new byte[] {1, 2, 3, 4, 5, (byte) 250}))
                .setLabel(4)
                .setAttributes(Map.of("site", "north", "lens", "wide"))
                .setModelId("m1")
                .build();
    }

    private static Schema v1() throws IOException {
        try (InputStream in = AvroCodecTest.class.getResourceAsStream("/dinostream/schemas/history/ImageRecord.v1.avsc")) {
            return new Schema.Parser().parse(in);
        }
    }

    /** A message an old producer would write: generic record, v1 schema, plain Avro encoder. */
    private static byte[] v1Message() throws IOException {
        Schema v1 = v1();
        GenericRecord r = new GenericData.Record(v1);
        r.put("id", "old-1");
        r.put("source", "legacy-cam");
        r.put("eventTime", T.toEpochMilli());
        r.put("encoding", new GenericData.EnumSymbol(v1.getField("encoding").schema(), "PNG"));
        r.put("width", null);
        r.put("height", null);
        r.put("channels", null);
        r.put("bytes", ByteBuffer.wrap(new byte[] {9, 8, 7}));
        r.put("label", 2);
        return new BinaryMessageEncoder<GenericRecord>(GenericData.get(), v1).encode(r).array();
    }

    private static byte[] withBody(AvroCodec<?> codec, byte[] body) {
        byte[] m = Arrays.copyOf(codec.header(), AvroCodec.HEADER_LENGTH + body.length);
        System.arraycopy(body, 0, m, AvroCodec.HEADER_LENGTH, body.length);
        return m;
    }

    @Test
    void imageRecordRoundTrip() throws Exception {
        AvroCodec<ImageRecord> codec = AvroCodec.imageRecords();
        ImageRecord in = image();
        byte[] bytes = codec.encode(in);
        assertArrayEquals(codec.header(), Arrays.copyOf(bytes, 10));
        assertEquals((byte) 0xC3, bytes[0]);
        assertEquals((byte) 0x01, bytes[1]);
        ImageRecord out = codec.decode(bytes);
        assertEquals(in, out);
        assertEquals(T, out.getEventTime());
        assertEquals("north", out.getAttributes().get("site"));
        // The generated toByteBuffer() is the same single-object encoding, so either can be used by producers.
        assertArrayEquals(bytes, in.toByteBuffer().array());
    }

    @Test
    void embeddingAndDeadLetterRoundTrip() throws Exception {
        EmbeddingRecord e = EmbeddingRecord.newBuilder()
                .setImageId("a").setSource("s").setEventTime(T).setModelId("m").setModelStep(42)
                .setSnapshotHash("ab12").setVector(List.of(0.5f, -1.25f, 3e-7f))
                .setTopic("images").setPartition(3).setOffset(99).build();
        AvroCodec<EmbeddingRecord> ec = AvroCodec.embeddingRecords();
        assertEquals(e, ec.decode(ec.encode(e)));

        DeadLetter d = DeadLetter.newBuilder()
                .setKey(null).setValue(ByteBuffer.wrap(new byte[] {1, 2}))
                .setTopic("images").setPartition(0).setOffset(7)
                .setStage("avro").setReason("BAD_ENCODING: x").setTime(T).build();
        AvroCodec<DeadLetter> dc = AvroCodec.deadLetters();
        assertEquals(d, dc.decode(dc.encode(d)));
    }

    @Test
    void fingerprintOfThePublishedAvscMatchesTheGeneratedClass() throws Exception {
        // Outside producers parse the .avsc, not our classes: the 10-byte header must be the same.
        for (AvroCodec<?> c : List.of(AvroCodec.imageRecords(), AvroCodec.embeddingRecords(), AvroCodec.deadLetters())) {
            Path avsc = Path.of("src/main/avro", c.schema().getName() + ".avsc");
            Schema parsed = new Schema.Parser().parse(avsc.toFile());
            assertEquals(c.fingerprint(), AvroCodec.fingerprint(parsed), avsc.toString());
        }
    }

    @Test
    void readmeListsTheCurrentHeaders() throws Exception {
        String readme = Files.readString(Path.of("README.md"));
        for (AvroCodec<?> c : List.of(AvroCodec.imageRecords(), AvroCodec.embeddingRecords(), AvroCodec.deadLetters())) {
            String header = HexFormat.ofDelimiter(" ").withUpperCase().formatHex(c.header());
            assertTrue(readme.contains("| " + c.schema().getName() + " | `" + header + "` |"),
                    "README.md header table is stale for " + c.schema().getName() + ": expected " + header);
        }
    }

    @Test
    void olderSchemaDecodesWithDefaultsOnceRegistered() throws Exception {
        byte[] old = v1Message();
        AvroCodec<ImageRecord> currentOnly = AvroCodec.forClass(ImageRecord.class);

        UnknownSchemaException unknown = assertThrows(UnknownSchemaException.class, () -> currentOnly.decode(old));
        assertEquals(AvroCodec.fingerprint(v1()), unknown.fingerprint());
        assertEquals(HexFormat.of().formatHex(old, 2, 10), unknown.fingerprintHex());

        ImageRecord r = currentOnly.withOlderSchema(v1()).decode(old);
        assertEquals("old-1", r.getId());
        assertEquals("legacy-cam", r.getSource());
        assertEquals(T, r.getEventTime());
        assertEquals(ImageEncoding.PNG, r.getEncoding());
        assertEquals(ByteBuffer.wrap(new byte[] {9, 8, 7}), r.getBytes());
        assertEquals(2, r.getLabel());
        assertEquals(Map.of(), r.getAttributes());   // default {}
        assertNull(r.getModelId());                  // default null
    }

    @Test
    void factoryRegistersTheVersionsKeptInTheHistory() throws Exception {
        assertEquals(1, AvroCodec.history("ImageRecord").size());
        // DeadLetter v1: before originalSize and originalSha256 (dead letters cut to a size limit).
        assertEquals(1, AvroCodec.history("DeadLetter").size());
        assertTrue(AvroCodec.deadLetters().knows(AvroCodec.fingerprint(AvroCodec.history("DeadLetter").get(0))));
        AvroCodec<ImageRecord> codec = AvroCodec.imageRecords();
        assertTrue(codec.knows(AvroCodec.fingerprint(v1())));
        assertEquals("old-1", codec.decode(v1Message()).getId());
    }

    @Test
    void incompatibleOlderSchemaIsRejectedAtRegistration() {
        // `id` as an int cannot be read as the current string `id`.
        Schema bad = new Schema.Parser().parse("""
                {"type":"record","name":"ImageRecord","namespace":"dinostream.schemas","fields":[
                 {"name":"id","type":"int"},
                 {"name":"eventTime","type":"long"},
                 {"name":"encoding","type":{"type":"enum","name":"ImageEncoding","symbols":["JPEG"]}},
                 {"name":"bytes","type":"bytes"}]}""");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> AvroCodec.forClass(ImageRecord.class).withOlderSchema(bad));
        assertTrue(e.getMessage().contains("/fields/0/type"), e.getMessage());
    }

    @Test
    void unknownFingerprintIsRefusedWithItsHex() {
        AvroCodec<ImageRecord> codec = AvroCodec.imageRecords();
        byte[] m = codec.encode(image());
        m[5] ^= 0x5A;
        UnknownSchemaException e = assertThrows(UnknownSchemaException.class, () -> codec.decode(m));
        String hex = HexFormat.of().formatHex(m, 2, 10);
        assertEquals(hex, e.fingerprintHex());
        assertTrue(e.getMessage().contains(hex), e.getMessage());
        assertEquals("UNKNOWN_SCHEMA", e.code());
    }

    @Test
    void garbageIsBadEncoding() {
        AvroCodec<ImageRecord> codec = AvroCodec.imageRecords();
        assertBad(codec, null, "no value");
        assertBad(codec, new byte[0], "shorter than the 10-byte");
        assertBad(codec, "hello world, not avro".getBytes(), "starts with 68 65");
        assertBad(codec, new byte[] {(byte) 0xC3, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0}, "starts with C3 02");
        assertBad(codec, Arrays.copyOf(codec.header(), 9), "shorter than");
    }

    @Test
    void truncatedOrPaddedBodyIsBadEncoding() {
        AvroCodec<ImageRecord> codec = AvroCodec.imageRecords();
        byte[] m = codec.encode(image());
        assertBad(codec, Arrays.copyOf(m, m.length - 1), "truncated");
        assertBad(codec, Arrays.copyOf(m, 10), "truncated");
        assertBad(codec, Arrays.copyOf(m, m.length + 1), "1 trailing bytes");
    }

    @Test
    void corruptLengthsAndIndexesAreBadEncodingWithoutAllocating() throws Exception {
        AvroCodec<ImageRecord> codec = AvroCodec.imageRecords();
        // id claims 2^30 bytes: Avro alone would allocate 1 GiB before noticing.
        assertBad(codec, withBody(codec, body(e -> e.writeLong(1L << 30))), "string length 1073741824 but only 0 bytes left");
        assertBad(codec, withBody(codec, body(e -> e.writeLong(-5))), "negative string length -5");
        // id "a", source "", eventTime, then enum index 7 of 3 symbols.
        assertBad(codec, withBody(codec, body(e -> {
            e.writeString("a");
            e.writeString("");
            e.writeLong(1);
            e.writeInt(7);
        })), "enum dinostream.schemas.ImageEncoding index 7 outside 0..2");
        // ... valid enum, then union branch 2 of ["null","int"].
        assertBad(codec, withBody(codec, body(e -> {
            e.writeString("a");
            e.writeString("");
            e.writeLong(1);
            e.writeInt(0);
            e.writeInt(2);
        })), "union index 2 outside 0..1");
        // A map block claiming a billion entries in a few bytes.
        assertBad(codec, withBody(codec, body(e -> {
            e.writeString("a");
            e.writeString("");
            e.writeLong(1);
            e.writeInt(0);
            e.writeInt(0);
            e.writeInt(0);
            e.writeInt(0);
            e.writeBytes(new byte[0]);
            e.writeInt(0);
            e.writeLong(1_000_000_000L);
        })), "a block of 1000000000 items");
    }

    private interface BodyWriter {
        void write(BinaryEncoder e) throws IOException;
    }

    private static byte[] body(BodyWriter w) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        BinaryEncoder e = EncoderFactory.get().directBinaryEncoder(out, null);
        w.write(e);
        e.flush();
        return out.toByteArray();
    }

    private static void assertBad(AvroCodec<?> codec, byte[] message, String expected) {
        BadEncodingException e = assertThrows(BadEncodingException.class, () -> codec.decode(message));
        assertTrue(e.getMessage().contains(expected), "message was: " + e.getMessage());
        assertEquals("BAD_ENCODING", e.code());
    }
}
