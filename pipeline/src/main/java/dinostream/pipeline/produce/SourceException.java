package dinostream.pipeline.produce;

import java.io.IOException;

/** A source cannot be read (missing dataset, corrupt file); the message is the line for the user. */
public final class SourceException extends IOException {
    public SourceException(String message) {
        super(message);
    }

    public SourceException(String message, Throwable cause) {
        super(message, cause);
    }
}
