package dinostream.cli;

/** A failure whose message is already the one line the user should read. */
final class CliFailure extends RuntimeException {
    CliFailure(String message) {
        super(message);
    }

    CliFailure(String message, Throwable cause) {
        super(message, cause);
    }
}
