package dinostream.schemas.codec;

/**
 * The message is not a well-formed single-object encoding of a known schema: missing or wrong
 * marker, too short, a body that is truncated, has trailing bytes, or contains values its writer
 * schema does not allow.
 */
public final class BadEncodingException extends CodecException {

    private static final long serialVersionUID = 1L;

    BadEncodingException(String message) {
        super(message, null);
    }

    BadEncodingException(String message, Throwable cause) {
        super(message, cause);
    }

    @Override
    public String code() {
        return "BAD_ENCODING";
    }
}
