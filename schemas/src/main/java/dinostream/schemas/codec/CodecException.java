package dinostream.schemas.codec;

/**
 * A Kafka value that {@link AvroCodec} refused to decode. Checked, so that a caller cannot forget that
 * a message from outside may be unreadable: the job turns each one into a dead letter.
 */
public abstract sealed class CodecException extends Exception
        permits UnknownSchemaException, BadEncodingException {

    private static final long serialVersionUID = 1L;

    CodecException(String message, Throwable cause) {
        super(message, cause);
    }

    /** A short stable code for metrics and dead letters, e.g. {@code UNKNOWN_SCHEMA}. */
    public abstract String code();
}
