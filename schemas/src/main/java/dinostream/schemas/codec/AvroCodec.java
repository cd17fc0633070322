package dinostream.schemas.codec;

import dinostream.schemas.DeadLetter;
import dinostream.schemas.EmbeddingRecord;
import dinostream.schemas.ImageRecord;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;
import org.apache.avro.SchemaCompatibility.SchemaCompatibilityType;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.message.BadHeaderException;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.avro.message.MissingSchemaException;
import org.apache.avro.message.SchemaStore;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificRecord;

/**
 * Kafka values as Avro single-object encoding: the marker {@code C3 01}, the 8-byte little-endian
 * CRC-64-AVRO fingerprint of the writer's schema, then the Avro binary record.
 *
 * <p>Encoding always uses the current (generated) schema. Decoding looks the writer schema up by
 * fingerprint in a store that holds the current schema and every older version registered with
 * {@link #withOlderSchema(Schema)} (the factories also register the versions kept under
 * {@code dinostream/schemas/history/}), then resolves it to the current schema with Avro's rules,
 * so fields added since get their defaults. Anything else fails with a {@link CodecException}, never
 * a silent misread. The framing and resolution are Avro's own {@link BinaryMessageEncoder} and
 * {@link BinaryMessageDecoder}; this class adds the exceptions and a bounds check of the body
 * ({@link BodyValidator}) before Avro allocates anything.
 *
 * <p>Thread-safe: Avro's message encoder and decoder are, and the store is a concurrent map.
 */
public final class AvroCodec<T extends SpecificRecord> {

    /** Length of the single-object header: 2 marker bytes and the 8-byte fingerprint. */
    public static final int HEADER_LENGTH = 10;

    /** Where older versions of the schemas are kept, as {@code <RecordName>.v<N>.avsc}, N = 1, 2, ... */
    public static final String HISTORY_RESOURCES = "/dinostream/schemas/history/";

    private static final byte MARKER_0 = (byte) 0xC3;
    private static final byte MARKER_1 = (byte) 0x01;

    private final Schema schema;
    private final long fingerprint;
    private final SchemaStore.Cache store = new SchemaStore.Cache();
    private final BinaryMessageEncoder<T> encoder;
    private final BinaryMessageDecoder<T> decoder;

    private AvroCodec(Class<T> type) {
        // The class's own SpecificData (its MODEL$) carries the logical-type conversions, such as
        // timestamp-millis to Instant, that a plain SpecificData would not.
        SpecificData model = SpecificData.getForClass(type);
        this.schema = model.getSchema(type);
        this.fingerprint = SchemaNormalization.parsingFingerprint64(schema);
        this.store.addSchema(schema);
        this.encoder = new BinaryMessageEncoder<>(model, schema);
        this.decoder = new BinaryMessageDecoder<>(model, schema, store);
    }

    /** A codec for any generated record class, knowing only its current schema. */
    public static <T extends SpecificRecord> AvroCodec<T> forClass(Class<T> type) {
        return new AvroCodec<>(type);
    }

    /** {@link ImageRecord}s, with the older versions kept in the history registered. */
    public static AvroCodec<ImageRecord> imageRecords() {
        return forClass(ImageRecord.class).withHistory();
    }

    /** {@link EmbeddingRecord}s, with the older versions kept in the history registered. */
    public static AvroCodec<EmbeddingRecord> embeddingRecords() {
        return forClass(EmbeddingRecord.class).withHistory();
    }

    /** {@link DeadLetter}s, with the older versions kept in the history registered. */
    public static AvroCodec<DeadLetter> deadLetters() {
        return forClass(DeadLetter.class).withHistory();
    }

    /**
     * Registers an older version of the schema so that messages its producers write still decode.
     * Checked now, with Avro's resolution rules, so that an incompatible version fails at startup
     * instead of on every message.
     *
     * @throws IllegalArgumentException if the current schema cannot read data written with {@code older}
     */
    public AvroCodec<T> withOlderSchema(Schema older) {
        SchemaCompatibility.SchemaPairCompatibility compat =
                SchemaCompatibility.checkReaderWriterCompatibility(schema, older);
        if (compat.getType() != SchemaCompatibilityType.COMPATIBLE) {
            String why = compat.getResult().getIncompatibilities().stream()
                    .map(i -> i.getType() + " at " + i.getLocation() + ": " + i.getMessage())
                    .collect(Collectors.joining("; "));
            throw new IllegalArgumentException("schema " + UnknownSchemaException.hex(fingerprint(older))
                    + " cannot be read as the current " + schema.getFullName() + ": " + why);
        }
        store.addSchema(older);
        return this;
    }

    /** Registers every {@code <RecordName>.v<N>.avsc} found in {@link #HISTORY_RESOURCES}, from v1 up to the first gap. */
    public AvroCodec<T> withHistory() {
        for (Schema older : history(schema.getName())) withOlderSchema(older);
        return this;
    }

    /** The older versions of a record's schema kept on the class path, oldest first. */
    public static List<Schema> history(String recordName) {
        List<Schema> versions = new ArrayList<>();
        for (int v = 1; ; v++) {
            String path = HISTORY_RESOURCES + recordName + ".v" + v + ".avsc";
            try (InputStream in = AvroCodec.class.getResourceAsStream(path)) {
                if (in == null) return versions;
                // One parser per file: versions share the record's name, which a parser defines once.
                versions.add(new Schema.Parser().parse(in));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read " + path, e);
            }
        }
    }

    /** Encodes with the current schema. */
    public byte[] encode(T record) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(256);
        try {
            encoder.encode(record, out);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot happen: writing to memory", e);
        }
        return out.toByteArray();
    }

    /**
     * Decodes one message written with the current schema or a registered older one.
     *
     * @throws UnknownSchemaException the fingerprint is not in the store
     * @throws BadEncodingException null, too short, wrong marker, or a body that is not exactly one
     *     record of the writer schema
     */
    public T decode(byte[] message) throws CodecException {
        if (message == null) throw new BadEncodingException("no value (null, e.g. a tombstone)");
        if (message.length < HEADER_LENGTH) {
            throw new BadEncodingException("message of " + message.length
                    + " bytes is shorter than the 10-byte single-object header");
        }
        if (message[0] != MARKER_0 || message[1] != MARKER_1) {
            throw new BadEncodingException(String.format(
                    "not Avro single-object encoding: starts with %02X %02X, expected C3 01",
                    message[0] & 0xFF, message[1] & 0xFF));
        }
        long fp = 0;
        for (int i = 0; i < 8; i++) fp |= (message[2 + i] & 0xFFL) << (8 * i);
        Schema writer = store.findByFingerprint(fp);
        if (writer == null) throw new UnknownSchemaException(fp, schema.getFullName());
        BodyValidator.validate(writer, message, HEADER_LENGTH);
        try {
            return decoder.decode(message);
        } catch (MissingSchemaException e) {
            throw new UnknownSchemaException(fp, schema.getFullName());
        } catch (BadHeaderException e) {
            throw new BadEncodingException("bad header: " + e.getMessage(), e);
        } catch (IOException | RuntimeException e) {
            // Resolution failures, e.g. an enum symbol the current schema lacks and has no default for.
            Throwable root = e.getCause() != null ? e.getCause() : e;
            throw new BadEncodingException("cannot resolve the record to the current "
                    + schema.getName() + " schema: " + root, e);
        }
    }

    /** The current schema, used for encoding and as the reader schema. */
    public Schema schema() {
        return schema;
    }

    /** CRC-64-AVRO fingerprint of the current schema's parsing canonical form. */
    public long fingerprint() {
        return fingerprint;
    }

    /** The 10 bytes every message written with the current schema starts with. */
    public byte[] header() {
        byte[] h = new byte[HEADER_LENGTH];
        h[0] = MARKER_0;
        h[1] = MARKER_1;
        for (int i = 0; i < 8; i++) h[2 + i] = (byte) (fingerprint >>> (8 * i));
        return h;
    }

    /** CRC-64-AVRO fingerprint of any schema; docs, defaults and Java-specific properties do not count. */
    public static long fingerprint(Schema s) {
        return SchemaNormalization.parsingFingerprint64(s);
    }

    /** Whether a message with this fingerprint would be decoded (current or registered older schema). */
    public boolean knows(long fingerprint) {
        return store.findByFingerprint(fingerprint) != null;
    }
}
