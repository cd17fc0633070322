package dinostream.pipeline.decode;

/** An image the decoder refuses, with a {@link Reason} code and a precise one-line message. */
public final class DecodeException extends Exception {

    private static final long serialVersionUID = 1L;

    /** Why an image was refused; {@link #stage()} says whether it failed a check or the decoding itself. */
    public enum Reason {
        /** The encoded image is larger than {@link Limits#maxBytes()}. */
        TOO_MANY_BYTES("validate"),
        /** No bytes, or a width or height of 0 (or less). */
        ZERO_SIZE("validate"),
        /** Width or height above {@link Limits#maxSide()}. */
        SIDE_TOO_LONG("validate"),
        /** Width x height above {@link Limits#maxPixels()}. */
        TOO_MANY_PIXELS("validate"),
        /** RAW_U8 without width, height or channels. */
        MISSING_RAW_DIMENSIONS("validate"),
        /** RAW_U8 with a channel count other than 1 or 3. */
        UNSUPPORTED_CHANNELS("validate"),
        /** RAW_U8 whose byte count is not width x height x channels. */
        RAW_SIZE_MISMATCH("validate"),
        /** The bytes do not start with the signature of the declared encoding. */
        ENCODING_MISMATCH("validate"),
        /** A valid image of a kind not handled, e.g. a CMYK JPEG. */
        UNSUPPORTED_FORMAT("decode"),
        /** The image data ends early. */
        TRUNCATED_IMAGE("decode"),
        /** The image data cannot be decoded. */
        CORRUPT_IMAGE("decode");

        private final String stage;

        Reason(String stage) {
            this.stage = stage;
        }

        /** {@code validate} for the checks made before decoding, {@code decode} for the decoding. */
        public String stage() {
            return stage;
        }
    }

    private final Reason reason;

    public DecodeException(Reason reason, String message) {
        this(reason, message, null);
    }

    public DecodeException(Reason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
