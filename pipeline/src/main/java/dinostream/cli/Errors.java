package dinostream.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;

/** Turns an exception into the one line printed after "dinostream: error: ". */
final class Errors {
    private Errors() {}

    static String describe(Throwable t) {
        if (t instanceof UncheckedIOException u && u.getCause() != null) t = u.getCause();
        String m = t.getMessage();
        String text;
        if (t instanceof NoSuchFileException e) text = "no such file or directory: " + e.getFile();
        else if (t instanceof AccessDeniedException e) text = "permission denied: " + e.getFile();
        else if (t instanceof NotDirectoryException e) text = "not a directory: " + e.getFile();
        else if (t instanceof FileAlreadyExistsException e) text = "already exists: " + e.getFile();
        else if (t instanceof DirectoryNotEmptyException e) text = "directory not empty: " + e.getFile();
        else if (t instanceof FileSystemException e) text = e.getMessage();   // names the file and the reason
        else if (t instanceof IOException) text = "I/O error: " + (m != null ? m : t.getClass().getSimpleName());
        else if (t instanceof CliFailure || t instanceof IllegalArgumentException || t instanceof IllegalStateException) {
            text = m != null ? m : t.getClass().getSimpleName();
        } else {
            // Unexpected: keep the type, it is the best clue without -v.
            text = t.getClass().getName() + (m != null ? ": " + m : "");
        }
        return oneLine(text);
    }

    /** Native and multi-cause messages can span lines; the contract is one line. */
    static String oneLine(String s) {
        return s.strip().replaceAll("\\s*\\R\\s*", "; ");
    }
}
