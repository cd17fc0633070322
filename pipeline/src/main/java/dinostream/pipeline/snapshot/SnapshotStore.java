package dinostream.pipeline.snapshot;

import dinostream.model.dino.DinoConfig;
import dinostream.model.export.InferenceExport;
import dinostream.model.io.DinoState;
import dinostream.pipeline.snapshot.Manifest.FileEntry;
import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.core.fs.FSDataOutputStream;
import org.apache.flink.core.fs.FileStatus;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.fs.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.File;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Snapshots of training state on any Flink file system ({@code file://}, and {@code s3://},
 * {@code hdfs://}, ... where Flink has the plugin or Hadoop). Layout:
 * <pre>
 *   &lt;base&gt;/&lt;modelId&gt;/step-&lt;step, 12 digits&gt;/manifest.json
 *                                              /state.safetensors
 *                                              /teacher-backbone.onnx
 * </pre>
 *
 * <p><b>Atomicity.</b> {@link #write} puts all files in {@code <base>/<modelId>/.tmp-step-...}
 * and {@code manifest.json} last, then renames the folder to its final name. On a local file
 * system and on HDFS that rename is atomic: a {@code step-*} folder is always complete. On object
 * stores (S3, GCS, Azure Blob) Flink's rename copies object by object and then deletes, in no
 * guaranteed order, so a reader may see a {@code step-*} folder mid-copy. Readers therefore count
 * a snapshot as complete only when {@code manifest.json} is present and every file it lists is
 * there at the listed size; {@link #list} and {@link #latest} apply exactly that rule, and
 * {@link #load} additionally verifies every checksum. Anything else (a leftover {@code .tmp-*}
 * folder from a crash, a half-copied folder) is ignored.
 *
 * <p><b>Retention.</b> After each write the store keeps the newest {@link #keep()} complete
 * snapshots of the model (the one just written plus the others with the highest steps), deletes
 * {@code .tmp-*} folders created more than an hour ago (the time is in the folder's name, since
 * object stores report no folder times), and deletes {@code step-*} folders without a valid
 * manifest below the step just written (leftovers of an interrupted rename). A pruning failure is
 * logged and does not fail the write. Readers who need a snapshot to stay (a replay with a pinned
 * snapshot) should copy it out of the store or raise {@code --snapshot-keep}.
 *
 * <p>One writer per model is assumed (the trainer is keyed by model id). Writing a step that
 * already exists (after a restore from an earlier checkpoint) replaces it. The store is
 * serializable (it holds only the base URI and K), so Flink operators can carry it.
 */
public final class SnapshotStore implements Serializable {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(SnapshotStore.class);

    public static final int DEFAULT_KEEP = 5;
    /** A {@code .tmp-*} folder older than this is a crashed write (a healthy one takes seconds). */
    public static final Duration STALE_TMP_AGE = Duration.ofHours(1);

    static final String TMP_PREFIX = ".tmp-";
    private static final Pattern STEP_DIR = Pattern.compile("step-(\\d{12,18})");
    /** {@code .tmp-step-<12 digits>-<epoch millis>-<uuid>}. */
    private static final Pattern TMP_DIR = Pattern.compile("\\.tmp-step-\\d+-(\\d{1,18})-[0-9a-f-]{36}");
    /** A manifest is a few KB; anything this large is not one, and is not read into memory. */
    private static final long MAX_MANIFEST_BYTES = 16L << 20;
    private static final int IO_CHUNK = 1 << 20;

    private final String baseUri;
    private final int keep;

    public SnapshotStore(String baseUri) {
        this(baseUri, DEFAULT_KEEP);
    }

    /**
     * @param baseUri a Flink file system URI or path; a relative path without a scheme is a local
     *     path, made absolute here against the current directory
     * @param keep    how many complete snapshots per model to keep, at least 1
     */
    public SnapshotStore(String baseUri, int keep) {
        if (keep < 1) throw new IllegalArgumentException("snapshot keep must be >= 1, got " + keep);
        this.baseUri = absolute(baseUri);
        this.keep = keep;
    }

    public String baseUri() {
        return baseUri;
    }

    public int keep() {
        return keep;
    }

    /** {@code step-} and the step zero-padded to 12 digits, so names sort like steps. */
    public static String stepDirName(long step) {
        if (step < 0 || step >= 1_000_000_000_000_000_000L) throw new IllegalArgumentException("step must be in [0, 10^18), got " + step);
        return String.format(Locale.ROOT, "step-%012d", step);
    }

    // ------------------------------------------------------------------ writing

    /** As {@link #write(String, DinoState, SnapshotInfo, byte[])}, exporting the teacher's ONNX model here. */
    public SnapshotRef write(String modelId, DinoState state, SnapshotInfo info) throws IOException {
        return write(modelId, state, info, null);
    }

    /**
     * Writes the snapshot of {@code state} at its step, atomically (see the class comment), then
     * prunes old snapshots.
     *
     * @param teacherOnnx {@link InferenceExport#backboneModel} of this very state when the caller
     *     already built it (e.g. for the teacher broadcast), or null to build it here
     * @return the written snapshot's URI and manifest
     */
    public SnapshotRef write(String modelId, DinoState state, SnapshotInfo info, byte[] teacherOnnx) throws IOException {
        Objects.requireNonNull(state, "state");
        Objects.requireNonNull(info, "info");
        Path modelDir = modelDir(modelId);
        long t0 = System.nanoTime();
        long step = state.step();
        byte[] onnx = teacherOnnx != null ? teacherOnnx : InferenceExport.backboneModel(state);
        String version = ModelVersion.of(state);
        DinoConfig cfg = state.config();

        FileSystem fs = modelDir.getFileSystem();
        String name = stepDirName(step);
        Path tmp = new Path(modelDir, TMP_PREFIX + name + "-" + System.currentTimeMillis() + "-" + UUID.randomUUID());
        Path target = new Path(modelDir, name);
        Manifest manifest;
        long manifestBytes;
        try {
            if (!fs.mkdirs(tmp)) throw new IOException("could not create folder " + tmp);
            Map<String, FileEntry> files = new LinkedHashMap<>();
            // toBytes holds the whole state in one array (2 GiB limit: ViT-B/16's full state is ~1.4 GB).
            files.put(Manifest.STATE_FILE, writeFile(fs, new Path(tmp, Manifest.STATE_FILE), state.toBytes()));
            files.put(Manifest.ONNX_FILE, writeFile(fs, new Path(tmp, Manifest.ONNX_FILE), onnx));
            manifest = new Manifest(modelId, step, info.imagesSeen(), cfg.preset, Manifest.configJson(cfg), info.hyperparameters(), info.metrics(), info.kafkaOffsets(), version, Instant.now(), files);
            byte[] json = manifest.toJson();
            manifestBytes = json.length;
            writeFile(fs, new Path(tmp, Manifest.FILE), json);   // last: its presence marks the folder complete

            if (fs.exists(target)) {
                // A restore from an earlier checkpoint replays steps: the state that survived wins.
                // (HDFS would move tmp *into* an existing folder, so it must go first.)
                LOG.warn("snapshot of model {} at step {} already exists at {}: replacing it", modelId, step, target);
                fs.delete(target, true);
            }
            if (!fs.rename(tmp, target)) throw new IOException("could not rename " + tmp + " to " + target);
        } catch (IOException | RuntimeException e) {
            try {
                fs.delete(tmp, true);
            } catch (IOException | RuntimeException x) {
                e.addSuppressed(x);
            }
            throw e;
        }
        long ms = (System.nanoTime() - t0) / 1_000_000;
        FileEntry st = manifest.files().get(Manifest.STATE_FILE), ox = manifest.files().get(Manifest.ONNX_FILE);
        LOG.info("snapshot of model {} at step {} written to {}: {} (state {}, onnx {}) in {} ms", modelId, step, target,
                mb(manifest.filesBytes() + manifestBytes), mb(st.bytes()), mb(ox.bytes()), ms);
        prune(fs, modelDir, modelId, step);
        return new SnapshotRef(target.toString(), manifest);
    }

    private static FileEntry writeFile(FileSystem fs, Path path, byte[] bytes) throws IOException {
        MessageDigest md = ModelVersion.sha256();
        try (FSDataOutputStream out = fs.create(path, FileSystem.WriteMode.NO_OVERWRITE)) {
            for (int off = 0; off < bytes.length; off += IO_CHUNK) {
                int n = Math.min(IO_CHUNK, bytes.length - off);
                md.update(bytes, off, n);
                out.write(bytes, off, n);
            }
            out.flush();
            try {
                out.sync();   // on disk before the rename publishes the folder
            } catch (UnsupportedOperationException e) {
                // Some object-store streams cannot sync; there close() completes the upload.
            }
        }
        return new FileEntry(bytes.length, hex(md));
    }

    // ------------------------------------------------------------------ listing and pruning

    /** The model's complete snapshots, oldest (lowest step) first. */
    public List<SnapshotRef> list(String modelId) throws IOException {
        Path modelDir = modelDir(modelId);
        return scan(modelDir.getFileSystem(), modelDir, modelId).complete;
    }

    /** The model's complete snapshot with the highest step, if any. */
    public Optional<SnapshotRef> latest(String modelId) throws IOException {
        List<SnapshotRef> all = list(modelId);
        return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
    }

    private record Listing(List<SnapshotRef> complete, Map<Path, Long> incomplete, Map<Path, Long> tmp) {}

    private static Listing scan(FileSystem fs, Path modelDir, String modelId) throws IOException {
        List<SnapshotRef> complete = new ArrayList<>();
        Map<Path, Long> incomplete = new LinkedHashMap<>(), tmp = new LinkedHashMap<>();
        for (FileStatus s : listOrEmpty(fs, modelDir)) {
            if (!s.isDir()) continue;
            String name = s.getPath().getName();
            Matcher step = STEP_DIR.matcher(name);
            Matcher t = TMP_DIR.matcher(name);
            if (step.matches()) {
                long n = Long.parseLong(step.group(1));
                SnapshotRef ref = completeOrNull(fs, s.getPath(), modelId, n);
                if (ref != null) complete.add(ref);
                else incomplete.put(s.getPath(), n);
            } else if (t.matches()) {
                tmp.put(s.getPath(), Long.parseLong(t.group(1)));
            } else if (name.startsWith(TMP_PREFIX)) {
                // Not one of ours by name; its age can only come from the file system (0 = unknown, kept).
                tmp.put(s.getPath(), s.getModificationTime() > 0 ? s.getModificationTime() : Long.MAX_VALUE);
            }
        }
        complete.sort(Comparator.comparingLong(SnapshotRef::step));
        return new Listing(complete, incomplete, tmp);
    }

    /** The snapshot in {@code dir} if its manifest is valid and names this model and step, and every listed file has its size. */
    private static SnapshotRef completeOrNull(FileSystem fs, Path dir, String modelId, long step) throws IOException {
        Map<String, Long> sizes = new HashMap<>();
        for (FileStatus f : listOrEmpty(fs, dir)) if (!f.isDir()) sizes.put(f.getPath().getName(), f.getLen());
        if (!sizes.containsKey(Manifest.FILE)) {
            LOG.debug("{}: no {} yet, not a complete snapshot", dir, Manifest.FILE);
            return null;
        }
        Manifest m;
        try {
            m = readManifest(fs, dir);
        } catch (IllegalArgumentException | FileNotFoundException e) {
            LOG.warn("ignoring snapshot folder {}: {}", dir, e.getMessage());
            return null;
        }
        if (!m.modelId().equals(modelId) || m.step() != step) {
            LOG.warn("ignoring snapshot folder {}: its manifest is for model {} step {}", dir, m.modelId(), m.step());
            return null;
        }
        for (Map.Entry<String, FileEntry> e : m.files().entrySet()) {
            Long len = sizes.get(e.getKey());
            if (len == null || len != e.getValue().bytes()) {
                LOG.debug("{}: {} is {} (manifest lists {} bytes), not complete yet", dir, e.getKey(),
                        len == null ? "missing" : len + " bytes", e.getValue().bytes());
                return null;
            }
        }
        return new SnapshotRef(dir.toString(), m);
    }

    private void prune(FileSystem fs, Path modelDir, String modelId, long written) {
        try {
            Listing l = scan(fs, modelDir, modelId);
            List<SnapshotRef> others = new ArrayList<>(l.complete);
            others.removeIf(r -> r.step() == written);
            // others is sorted by step: all but the newest keep-1 go.
            for (int i = 0; i < others.size() - (keep - 1); i++) {
                delete(fs, new Path(others.get(i).uri()), "old snapshot");
            }
            for (Map.Entry<Path, Long> e : l.incomplete.entrySet()) {
                if (e.getValue() < written) delete(fs, e.getKey(), "incomplete snapshot folder");
            }
            long cutoff = System.currentTimeMillis() - STALE_TMP_AGE.toMillis();
            for (Map.Entry<Path, Long> e : l.tmp.entrySet()) {
                if (e.getValue() < cutoff) delete(fs, e.getKey(), "stale temporary folder of a crashed write");
            }
        } catch (IOException | RuntimeException e) {
            LOG.warn("pruning old snapshots of model {} in {} failed (the new snapshot is written): {}", modelId, modelDir, e.toString());
        }
    }

    private static void delete(FileSystem fs, Path p, String what) throws IOException {
        LOG.info("deleting {} {}", what, p);
        fs.delete(p, true);
    }

    private static FileStatus[] listOrEmpty(FileSystem fs, Path dir) throws IOException {
        try {
            FileStatus[] s = fs.listStatus(dir);
            return s == null ? new FileStatus[0] : s;   // Flink's local file system returns null for a missing folder
        } catch (FileNotFoundException e) {
            return new FileStatus[0];
        }
    }

    // ------------------------------------------------------------------ reading

    /**
     * Loads a snapshot folder and verifies it: every file's size and SHA-256 against the
     * manifest, and the state against the manifest (step, configuration, model version).
     *
     * @param snapshotUri the {@code step-*} folder (a Flink file system URI or a local path)
     * @throws IllegalArgumentException one line naming the snapshot and the file at fault: no
     *     manifest, an invalid manifest, a missing, truncated or corrupt file
     */
    public static Snapshot load(String snapshotUri) throws IOException {
        Path dir = qualify(snapshotUri);
        FileSystem fs = dir.getFileSystem();
        Manifest m = readManifest(fs, dir);
        byte[] onnx = readVerified(fs, dir, m, Manifest.ONNX_FILE);
        byte[] stateBytes = readVerified(fs, dir, m, Manifest.STATE_FILE);
        String where = new Path(dir, Manifest.STATE_FILE).toString();
        DinoState state = DinoState.fromBytes(stateBytes, where);
        if (state.step() != m.step()) {
            throw new IllegalArgumentException(where + ": state is at step " + state.step() + ", manifest.json says " + m.step());
        }
        if (!state.config().toJson().equals(m.dinoConfig().toJson())) {
            throw new IllegalArgumentException(where + ": configuration differs from manifest.json's");
        }
        String version = ModelVersion.of(state);
        if (!version.equals(m.modelVersion())) {
            throw new IllegalArgumentException(where + ": teacher weights hash to " + version + ", manifest.json says " + m.modelVersion());
        }
        return new Snapshot(m, state, onnx);
    }

    /** The manifest and the verified {@code teacher-backbone.onnx}, without reading the training state. */
    public static TeacherSnapshot loadTeacher(String snapshotUri) throws IOException {
        Path dir = qualify(snapshotUri);
        FileSystem fs = dir.getFileSystem();
        Manifest m = readManifest(fs, dir);
        return new TeacherSnapshot(m, readVerified(fs, dir, m, Manifest.ONNX_FILE));
    }

    /** Reads and checks a snapshot's manifest only (no checksums verified). */
    public static Manifest readManifest(String snapshotUri) throws IOException {
        Path dir = qualify(snapshotUri);
        return readManifest(dir.getFileSystem(), dir);
    }

    private static Manifest readManifest(FileSystem fs, Path dir) throws IOException {
        Path p = new Path(dir, Manifest.FILE);
        FileStatus s;
        try {
            s = fs.getFileStatus(p);
        } catch (FileNotFoundException e) {
            throw new IllegalArgumentException(dir + " is not a complete snapshot: it has no " + Manifest.FILE
                    + " (the folder is missing, or a write was interrupted)");
        }
        if (s.getLen() > MAX_MANIFEST_BYTES) {
            throw new IllegalArgumentException(p + ": " + s.getLen() + " bytes is too large for a manifest");
        }
        return Manifest.parse(readAll(fs, p, (int) s.getLen(), null), p.toString());
    }

    /** The file's bytes, after checking its size and SHA-256 against the manifest. */
    private static byte[] readVerified(FileSystem fs, Path dir, Manifest m, String name) throws IOException {
        FileEntry e = m.files().get(name);
        Path p = new Path(dir, name);
        String at = "snapshot " + dir + ": " + name;
        FileStatus s;
        try {
            s = fs.getFileStatus(p);
        } catch (FileNotFoundException x) {
            throw new IllegalArgumentException(at + " is missing (listed in " + Manifest.FILE + ")");
        }
        if (s.getLen() != e.bytes()) {
            throw new IllegalArgumentException(at + " has " + s.getLen() + " bytes, " + Manifest.FILE + " lists "
                    + e.bytes() + " (truncated or replaced)");
        }
        if (e.bytes() > Integer.MAX_VALUE - 16) throw new IllegalArgumentException(at + " is too large to load (" + e.bytes() + " bytes)");
        MessageDigest md = ModelVersion.sha256();
        byte[] bytes = readAll(fs, p, (int) e.bytes(), md);
        String sha = hex(md);
        if (!sha.equals(e.sha256())) {
            throw new IllegalArgumentException(at + ": SHA-256 mismatch: the file hashes to " + sha + ", "
                    + Manifest.FILE + " lists " + e.sha256() + " (the file is corrupt or was modified)");
        }
        return bytes;
    }

    /** Exactly {@code len} bytes of the file (more or fewer is an error: it changed since it was listed). */
    private static byte[] readAll(FileSystem fs, Path p, int len, MessageDigest md) throws IOException {
        byte[] out = new byte[len];
        try (FSDataInputStream in = fs.open(p)) {
            int off = 0;
            while (off < len) {
                int n = in.read(out, off, Math.min(IO_CHUNK, len - off));
                if (n < 0) throw new IllegalArgumentException(p + ": ended after " + off + " of " + len + " bytes");
                if (md != null) md.update(out, off, n);
                off += n;
            }
            if (readsMore(in)) throw new IllegalArgumentException(p + ": longer than the " + len + " bytes expected");
        }
        return out;
    }

    private static boolean readsMore(InputStream in) throws IOException {
        return in.read() >= 0;
    }

    // ------------------------------------------------------------------ paths

    private Path modelDir(String modelId) {
        if (modelId == null || !Manifest.MODEL_ID.matcher(modelId).matches()) {
            throw new IllegalArgumentException("model id " + (modelId == null ? "null" : "'" + modelId + "'")
                    + " cannot name a snapshot folder: use letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128");
        }
        try {
            return new Path(qualify(baseUri), modelId);
        } catch (IOException e) {
            throw new IllegalArgumentException("snapshot base " + baseUri + ": " + e.getMessage(), e);
        }
    }

    /** The path with its file system's scheme and authority, e.g. {@code file:/tmp/x} for {@code /tmp/x}. */
    static Path qualify(String uri) throws IOException {
        Path p = new Path(absolute(uri));
        return p.makeQualified(p.getFileSystem());
    }

    private static final Pattern SCHEME = Pattern.compile("[A-Za-z][A-Za-z0-9+.-]*:.*");

    /**
     * A relative path without a scheme is local, made absolute against the current directory;
     * an absolute one stays on Flink's default file system (local unless configured otherwise).
     */
    private static String absolute(String uri) {
        if (uri == null || uri.isBlank()) throw new IllegalArgumentException("empty snapshot location");
        if (SCHEME.matcher(uri).matches() || uri.startsWith("/")) return uri;
        return "file:" + new File(uri).getAbsolutePath();
    }

    private static String hex(MessageDigest md) {
        return HexFormat.of().formatHex(md.digest());
    }

    private static String mb(long bytes) {
        return String.format(Locale.ROOT, "%.1f MB", bytes / 1e6);
    }
}
