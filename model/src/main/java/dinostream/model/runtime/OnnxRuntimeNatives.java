package dinostream.model.runtime;


import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * ONNX Runtime's natives come through JavaCPP, which unpacks them into its cache
 * ({@code ~/.javacpp/cache}, or {@code org.bytedeco.javacpp.cachedir}) in a folder named after the jar
 * they came in, and never removes it. When ONNX Runtime comes inside the job jar, a TaskManager that
 * never exits gets one such folder per job (Flink names each job's jar copy anew): about 60 MB each.
 * {@link #remove} deletes the job jar's folder; the Flink operators call it when Flink releases the
 * job's class loader (registered with
 * {@code RuntimeContext.registerUserCodeClassLoaderReleaseHookIfAbsent(HOOK, ...)}; the libraries stay
 * mapped until then, and deleting a mapped file is safe on Linux; a restart that loads the job again
 * unpacks them again). When ONNX Runtime is in the cluster's lib/ (parent-first, loaded once per
 * TaskManager, see ops/flink/dinostream.yaml) nothing is removed.
 */
public final class OnnxRuntimeNatives {
    private static final System.Logger LOG = System.getLogger(OnnxRuntimeNatives.class.getName());
    private static final String ORT_CLASS = "ai.onnxruntime.OnnxRuntime";

    private OnnxRuntimeNatives() {}

    /** The name of the class-loader release hook that calls {@link #remove}. */
    public static final String HOOK = "dinostream-onnxruntime-natives";

    /**
     * Whether ONNX Runtime's classes came with the job, in a class loader of its own (else from the
     * cluster's lib/, or from the application class path of a local run, whose JVM keeps them).
     */
    public static boolean loadedWithJob() {
        try {
            ClassLoader ours = OnnxRuntimeNatives.class.getClassLoader();
            Class<?> c = Class.forName(ORT_CLASS, false, ours);
            return c.getClassLoader() == ours && ours != ClassLoader.getSystemClassLoader();
        } catch (ClassNotFoundException e) {
            return false;
        }
    }

    public static void remove() {
        if (!loadedWithJob()) return;
        Path dir = unpackedFolder();
        if (dir == null || !Files.isDirectory(dir)) return;
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
            LOG.log(System.Logger.Level.INFO, "removed ONNX Runtime's unpacked native libraries " + dir);
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "could not remove ONNX Runtime's unpacked native libraries " + dir + ": " + e);
        }
    }

    /** The cache folder JavaCPP unpacked the job jar's libraries into, or null. */
    static Path unpackedFolder() {
        try {
            Class<?> c = Class.forName(ORT_CLASS, false, OnnxRuntimeNatives.class.getClassLoader());
            java.net.URL jar = c.getProtectionDomain().getCodeSource().getLocation();
            Path jarPath = Path.of(jar.toURI());
            if (!Files.isRegularFile(jarPath)) return null;
            return org.bytedeco.javacpp.Loader.getCacheDir().toPath().resolve(jarPath.getFileName().toString());
        } catch (ReflectiveOperationException | java.net.URISyntaxException | IOException | RuntimeException e) {
            return null;
        }
    }
}
