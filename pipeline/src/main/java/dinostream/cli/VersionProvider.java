package dinostream.cli;

import picocli.CommandLine;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/** "dinostream X" plus the runtime versions that decide numerics and speed. */
final class VersionProvider implements CommandLine.IVersionProvider {
    /** The project version, filled in by Maven resource filtering. */
    static String version() {
        try (InputStream in = VersionProvider.class.getResourceAsStream("version.properties")) {
            if (in == null) return "unknown";
            Properties p = new Properties();
            p.load(in);
            return p.getProperty("version", "unknown");
        } catch (IOException e) {
            return "unknown";
        }
    }

    static String onnxRuntimeVersion() {
        // Asked of the C API: bytedeco's loader path leaves the Java API's version unset.
        dinostream.model.runtime.Sessions.env();
        return org.bytedeco.onnxruntime.global.onnxruntime.GetVersionString().getString();
    }

    @Override
    public String[] getVersion() {
        return new String[]{
                "dinostream " + version(),
                "ONNX Runtime " + onnxRuntimeVersion(),
                "Java " + System.getProperty("java.version") + " (" + System.getProperty("java.vm.name") + ")"};
    }
}
