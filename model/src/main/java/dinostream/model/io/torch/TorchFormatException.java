package dinostream.model.io.torch;

import java.io.IOException;

/**
 * A torch.save file that cannot be read, or holds something a DINO checkpoint never does. The
 * message is one line: the file's name, then what is wrong.
 */
public class TorchFormatException extends IOException {
    private static final long serialVersionUID = 1L;

    public TorchFormatException(String file, String problem) {
        super(file + ": " + problem);
    }

    public TorchFormatException(String file, String problem, Throwable cause) {
        super(file + ": " + problem, cause);
    }

    /** {@code s} on one line and at most 200 characters, for quoting file content in a message. */
    static String printable(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length() && b.length() < 200; i++) {
            char c = s.charAt(i);
            if (c < 0x20 || c == 0x7f) b.append(String.format("\\x%02x", (int) c));
            else b.append(c);
        }
        return s.length() > 200 ? b + "..." : b.toString();
    }
}
