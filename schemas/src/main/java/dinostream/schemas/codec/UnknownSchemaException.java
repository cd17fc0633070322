package dinostream.schemas.codec;

import java.util.HexFormat;

/**
 * The message names a writer schema (by fingerprint) that is neither the current schema nor a
 * registered older version. Decoding it with a guessed schema could silently misread it, so it is
 * refused.
 */
public final class UnknownSchemaException extends CodecException {

    private static final long serialVersionUID = 1L;

    private final long fingerprint;

    UnknownSchemaException(long fingerprint, String recordName) {
        super("unknown writer schema: fingerprint " + hex(fingerprint) + " is neither the current "
                + recordName + " schema nor a registered older version", null);
        this.fingerprint = fingerprint;
    }

    @Override
    public String code() {
        return "UNKNOWN_SCHEMA";
    }

    /** The CRC-64-AVRO fingerprint as a long, as {@code SchemaNormalization.parsingFingerprint64} returns it. */
    public long fingerprint() {
        return fingerprint;
    }

    /** The fingerprint as hex, in wire order (little-endian), i.e. bytes 2..9 of the message. */
    public String fingerprintHex() {
        return hex(fingerprint);
    }

    static String hex(long fingerprint) {
        byte[] le = new byte[8];
        for (int i = 0; i < 8; i++) le[i] = (byte) (fingerprint >>> (8 * i));
        return HexFormat.of().formatHex(le);
    }
}
