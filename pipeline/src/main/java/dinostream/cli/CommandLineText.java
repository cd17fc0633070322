package dinostream.cli;

import java.util.List;
import java.util.regex.Pattern;

/** A command line as text a shell takes back: arguments with other characters single-quoted. */
final class CommandLineText {
    private CommandLineText() {}

    private static final Pattern PLAIN = Pattern.compile("[A-Za-z0-9_./=:,+@%-]+");

    static String of(List<String> args) {
        StringBuilder b = new StringBuilder();
        for (String a : args) {
            if (b.length() > 0) b.append(' ');
            b.append(PLAIN.matcher(a).matches() ? a : "'" + a.replace("'", "'\\''") + "'");
        }
        return b.toString();
    }
}
