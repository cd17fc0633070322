package dinostream.schemas.codec;

import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;
import org.apache.avro.Schema;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;

/**
 * Walks an Avro binary body against its writer schema without building any value, before Avro
 * decodes it for real. Avro's decoder allocates a buffer of whatever length a string, bytes or
 * collection header claims before reading it, so one corrupt varint in a message could allocate
 * up to 2 GiB; and it ignores bytes left over after the record, a sign the writer schema was not
 * the one the fingerprint names. Here every length is bounded by the bytes actually left, union
 * and enum indexes by the schema, and the body must end exactly at the end of the message.
 */
final class BodyValidator {

    /** Arrays of items that take no bytes (null, empty records) cannot be bounded by size. */
    static final long MAX_ZERO_SIZE_ITEMS = 1_000_000;
    /** Nesting only recursive schemas can reach; bounded so crafted data cannot overflow the stack. */
    static final int MAX_DEPTH = 256;

    private final ByteArrayInputStream in;
    private final BinaryDecoder decoder;

    private BodyValidator(byte[] message, int offset) {
        this.in = new ByteArrayInputStream(message, offset, message.length - offset);
        // The direct (unbuffered) decoder consumes exactly what it reads, so in.available() is
        // always the number of bytes still to come.
        this.decoder = DecoderFactory.get().directBinaryDecoder(in, null);
    }

    /** Throws {@link BadEncodingException} unless {@code message[offset..]} is exactly one datum of {@code writer}. */
    static void validate(Schema writer, byte[] message, int offset) throws BadEncodingException {
        BodyValidator v = new BodyValidator(message, offset);
        try {
            v.walk(writer, 0);
        } catch (EOFException e) {
            throw new BadEncodingException("truncated body: it ends before the record does");
        } catch (IOException | RuntimeException e) {
            // Avro's own varint checks ("Invalid int encoding") land here.
            throw new BadEncodingException("corrupt body: " + e.getMessage(), e);
        }
        int left = v.in.available();
        if (left != 0) {
            throw new BadEncodingException("corrupt body: " + left + " trailing bytes after the record");
        }
    }

    private void walk(Schema s, int depth) throws IOException, BadEncodingException {
        if (depth > MAX_DEPTH) throw new BadEncodingException("corrupt body: nesting deeper than " + MAX_DEPTH);
        switch (s.getType()) {
            case NULL -> { }
            case BOOLEAN -> {
                int b = in.read();
                if (b < 0) throw new EOFException();
                if (b > 1) throw new BadEncodingException("corrupt body: boolean byte " + b);
            }
            case INT -> decoder.readInt();
            case LONG -> decoder.readLong();
            case FLOAT -> skip(4);
            case DOUBLE -> skip(8);
            case FIXED -> skip(s.getFixedSize());
            case STRING, BYTES -> skip(length(decoder.readLong(), s.getType().getName()));
            case ENUM -> index(decoder.readInt(), s.getEnumSymbols().size(), "enum " + s.getFullName());
            case UNION -> walk(s.getTypes().get(index(decoder.readInt(), s.getTypes().size(), "union")), depth + 1);
            case RECORD -> {
                for (Schema.Field f : s.getFields()) walk(f.schema(), depth + 1);
            }
            case ARRAY -> {
                boolean zero = zeroSize(s.getElementType(), Collections.newSetFromMap(new IdentityHashMap<>()));
                for (long n = blockCount(zero); n > 0; n = blockCount(zero)) {
                    for (long i = 0; i < n; i++) walk(s.getElementType(), depth + 1);
                }
            }
            case MAP -> {
                for (long n = blockCount(false); n > 0; n = blockCount(false)) {
                    for (long i = 0; i < n; i++) {
                        skip(length(decoder.readLong(), "map key"));
                        walk(s.getValueType(), depth + 1);
                    }
                }
            }
        }
    }

    /** Reads one block header of an array or map: its item count (0 ends the collection). */
    private long blockCount(boolean zeroSizeItems) throws IOException, BadEncodingException {
        long n = decoder.readLong();
        if (n < 0) {
            // A negative count is followed by the block's size in bytes.
            if (n == Long.MIN_VALUE) throw new BadEncodingException("corrupt body: block count " + n);
            n = -n;
            length(decoder.readLong(), "block");
        }
        long bound = zeroSizeItems ? MAX_ZERO_SIZE_ITEMS : in.available();
        if (n > bound) {
            throw new BadEncodingException("corrupt body: a block of " + n + " items cannot fit in the "
                    + in.available() + " bytes left");
        }
        return n;
    }

    private long length(long n, String what) throws BadEncodingException {
        if (n < 0) throw new BadEncodingException("corrupt body: negative " + what + " length " + n);
        if (n > in.available()) {
            throw new BadEncodingException("truncated or corrupt body: " + what + " length " + n
                    + " but only " + in.available() + " bytes left");
        }
        return n;
    }

    private int index(int i, int size, String what) throws BadEncodingException {
        if (i < 0 || i >= size) {
            throw new BadEncodingException("corrupt body: " + what + " index " + i + " outside 0.." + (size - 1));
        }
        return i;
    }

    private void skip(long n) throws IOException {
        if (n > in.available()) throw new EOFException();
        decoder.skipFixed((int) n);
    }

    /** True if a value of {@code s} can take no bytes at all, so that byte counts cannot bound a collection of them. */
    private static boolean zeroSize(Schema s, Set<Schema> seen) {
        return switch (s.getType()) {
            case NULL -> true;
            case FIXED -> s.getFixedSize() == 0;
            case RECORD -> {
                if (!seen.add(s)) yield false;
                boolean all = true;
                for (Schema.Field f : s.getFields()) all &= zeroSize(f.schema(), seen);
                yield all;
            }
            default -> false;
        };
    }
}
