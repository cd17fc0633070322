package dinostream.pipeline.train;

import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Presets;
import dinostream.model.io.DinoState;
import dinostream.model.io.OfficialCheckpoint;
import dinostream.model.io.TensorData;
import dinostream.model.io.torch.TorchFile;

import java.io.IOException;
import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;

/**
 * The file new models start from ({@code --init-from}): our safetensors state, or an official DINO
 * {@code .pth} (a full training checkpoint or a backbone-only release file).
 *
 * <p>The file decides the shapes it holds; the job's configuration (a preset or {@code --config})
 * supplies the rest: crop sizes, normalization, loss and optimizer settings, and the head of a
 * backbone-only file. The backbone must be the configuration's (a preset names an architecture,
 * and its crop sizes and normalization are made for it); the head is taken from the file, since the
 * run being continued already chose it. The client decides that merged configuration once
 * ({@link #merge}), so that every operator (augmenter, embedder, probe, trainer) gets the same; the
 * trainer, which reads the file again to create a model, only checks that it fits ({@link #fit}).
 */
public final class InitFile {
    private InitFile() {}

    private record Field(String name, Function<DinoConfig, Object> value) {}

    private static final List<Field> BACKBONE = List.of(
            new Field("dim", c -> c.dim), new Field("depth", c -> c.depth), new Field("heads", c -> c.heads),
            new Field("patch", c -> c.patch), new Field("img_size", c -> c.imgSize), new Field("in_chans", c -> c.inChans),
            new Field("mlp_ratio", c -> c.mlpRatio), new Field("qkv_bias", c -> c.qkvBias));
    private static final List<Field> HEAD = List.of(
            new Field("out_dim", c -> c.outDim), new Field("head_hidden", c -> c.headHidden),
            new Field("bottleneck", c -> c.bottleneck), new Field("norm_last_layer", c -> c.normLastLayer));

    /**
     * The state the file holds, read where this runs: a file:// URI or a plain path from the local
     * file system (no copy of the whole file in memory), anything else through Flink's file systems.
     * A .pth must have {@code base}'s backbone (heads aside when {@code how} gives them).
     *
     * @param base what a .pth does not hold (crop sizes; out_dim and head sizes of a backbone-only file)
     * @param seed seeds the head of a backbone-only file
     * @throws IOException the file cannot be read from here
     * @throws InvalidInitFile the file was read but is no state this job can start from
     */
    public static DinoState read(String uri, TrainerOptions.InitImport how, DinoConfig base, long seed) throws IOException {
        Source src = Source.open(uri);
        try {
            if (isSafetensors(src.head)) {
                if (!how.equals(TrainerOptions.InitImport.NONE)) {
                    throw new InvalidInitFile(uri + " is a safetensors state: heads, arch and checkpoint key are for a .pth file");
                }
                return src.safetensors();
            }
            return pth(src, how, base, seed);
        } catch (InvalidInitFile e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            String m = e.getMessage() == null ? e.toString() : e.getMessage();
            throw new InvalidInitFile(m.contains(uri) ? m : uri + ": " + m, e);
        }
    }

    /** Not ours: torch's zip (PK\3\4) or its legacy format, or something else, which the importer refuses clearly. */
    private static DinoState pth(Source src, TrainerOptions.InitImport how, DinoConfig base, long seed) throws IOException {
        // No .pth stores its heads: without --heads or --arch they are the configuration's, whose backbone the file
        // must have anyway (a release file names no architecture). Read with 1, which divides any dim, so that a file
        // of another backbone is reported as such, not as heads that do not fit it.
        boolean headsGiven = how.heads() != null || how.arch() != null;
        List<Field> backbone = headsGiven ? BACKBONE : BACKBONE.stream().filter(f -> !f.name.equals("heads")).toList();
        Integer heads = headsGiven ? how.heads() : Integer.valueOf(1);
        DinoState s;
        try {
            s = src.pth(new OfficialCheckpoint.Options(heads, how.arch(), how.checkpointKey(), seed, base));
        } catch (IOException | RuntimeException e) {
            // What base says of crops (local_size a multiple of the patch, mean/std per channel) fails on a file of
            // another patch or channel count: read it again with crops that fit it, to name the backbones that differ.
            DinoConfig fitting = cropsFitting(base, src);
            DinoState other = null;
            try {
                if (fitting != null) other = src.pth(new OfficialCheckpoint.Options(heads, how.arch(), how.checkpointKey(), seed, fitting));
            } catch (IOException | RuntimeException ignored) {
                // the first failure says what is wrong
            }
            if (other != null) requireBackbone(backbone, base, other.config(), src.name);
            throw e;
        }
        requireBackbone(backbone, base, s.config(), src.name);
        if (headsGiven) return s;
        DinoConfig c = s.config();
        c.heads = base.heads;
        return DinoState.of(c, s.tensors());
    }

    /** base with crops the file's patch and channels allow, from its patch_embed.proj.weight [dim, in_chans, patch, patch]; null: none found. */
    private static DinoConfig cropsFitting(DinoConfig base, Source src) {
        TensorData w;
        try {
            w = find(src.torch(), "patch_embed.proj.weight", 3);
        } catch (IOException | RuntimeException e) {
            return null;
        }
        if (w == null || w.shape().length != 4) return null;
        int patch = (int) w.shape()[3];
        DinoConfig c = base.copy();
        c.localSize = patch * Math.max(1, Math.round((float) base.localSize / patch));
        c.mean = null;
        c.std = null;
        return c;
    }

    private static TensorData find(Object o, String suffix, int depth) {
        if (!(o instanceof Map<?, ?> m) || depth < 0) return null;
        for (Map.Entry<?, ?> e : m.entrySet()) {
            if (e.getValue() instanceof TensorData t && String.valueOf(e.getKey()).endsWith(suffix)) return t;
        }
        for (Object v : m.values()) {
            TensorData t = find(v, suffix, depth - 1);
            if (t != null) return t;
        }
        return null;
    }

    /** The file's first bytes and a way to read it whole, from the local file system or through Flink's. */
    private static final class Source {
        final String name;
        final byte[] head;
        final java.nio.file.Path local;
        final byte[] bytes;

        private Source(String name, byte[] head, java.nio.file.Path local, byte[] bytes) {
            this.name = name;
            this.head = head;
            this.local = local;
            this.bytes = bytes;
        }

        static Source open(String uri) throws IOException {
            java.nio.file.Path local = localPath(uri);
            if (local != null) {
                try (var in = java.nio.file.Files.newInputStream(local)) {
                    return new Source(uri, in.readNBytes(16), local, null);
                }
            }
            org.apache.flink.core.fs.Path p = new org.apache.flink.core.fs.Path(uri);
            try (var in = p.getFileSystem().open(p)) {
                byte[] b = in.readAllBytes();
                return new Source(uri, b, null, b);
            }
        }

        DinoState safetensors() throws IOException {
            return local != null ? DinoState.load(local) : DinoState.fromBytes(bytes, name);
        }

        DinoState pth(OfficialCheckpoint.Options o) throws IOException {
            return local != null ? OfficialCheckpoint.read(local, o) : OfficialCheckpoint.read(bytes, name, o);
        }

        Object torch() throws IOException {
            return local != null ? TorchFile.read(local) : TorchFile.read(bytes, name);
        }
    }

    /** 8 bytes of little-endian header length, then the JSON header. */
    static boolean isSafetensors(byte[] head) {
        return head.length >= 9 && head[8] == '{';
    }

    private static java.nio.file.Path localPath(String uri) {
        try {
            URI u = new URI(uri);
            if (u.getScheme() == null) return java.nio.file.Path.of(uri);
            return u.getScheme().equals("file") ? java.nio.file.Path.of(u) : null;
        } catch (java.net.URISyntaxException | IllegalArgumentException e) {
            return java.nio.file.Path.of(uri);
        }
    }

    /**
     * The configuration of a job whose models start from a file with configuration {@code file}:
     * the file's backbone and head, {@code base}'s everything else.
     *
     * @throws InvalidInitFile the backbones differ (one line naming both and a preset that matches, if one does)
     */
    public static DinoConfig merge(DinoConfig base, DinoConfig file, String name) {
        requireBackbone(BACKBONE, base, file, name);
        DinoConfig merged = base.copy();
        merged.outDim = file.outDim;
        merged.headHidden = file.headHidden;
        merged.bottleneck = file.bottleneck;
        merged.normLastLayer = file.normLastLayer;
        // A preset's name no longer describes a configuration with another head.
        if (!headDifferences(base, merged).isEmpty()) merged.preset = null;
        return merged.validate();
    }

    private static void requireBackbone(List<Field> fields, DinoConfig base, DinoConfig file, String name) {
        List<String> backbone = differences(fields, file, base);
        if (backbone.isEmpty()) return;
        String match = null;
        for (String p : Presets.names()) {
            if (differences(fields, file, Presets.get(p)).isEmpty()) {
                match = p;
                break;
            }
        }
        throw new InvalidInitFile(name + " holds a ViT with " + describe(backbone, file) + ", but " + describe(base)
                + " has " + describe(backbone, base) + ": " + (match != null ? "use --preset " + match + " (its backbone is the file's)"
                : "use a --config with the file's backbone"));
    }

    /** What of the head {@code b} has differently from {@code a}, as "out_dim 4096 (not 65536)", ...; empty: the same head. */
    public static List<String> headDifferences(DinoConfig a, DinoConfig b) {
        List<String> d = new ArrayList<>();
        for (String f : differences(HEAD, b, a)) d.add(f + " " + value(f, b) + " (not " + value(f, a) + ")");
        return d;
    }

    /**
     * The trainer's check: the file's state fits the job's configuration exactly (as it does when
     * the client merged it from the same file), and becomes a state of that configuration.
     *
     * @throws InvalidInitFile the backbone or the head differ
     */
    public static DinoState fit(DinoState file, DinoConfig config, String name) {
        DinoConfig merged = merge(config, file.config(), name);
        List<String> head = headDifferences(config, merged);
        if (!head.isEmpty()) {
            throw new InvalidInitFile(name + " holds a head with " + String.join(", ", head) + " of " + describe(config)
                    + "; the job's configuration was decided where the file could not be read: give a --config with the file's head sizes");
        }
        return DinoState.withPrecision(config, file.tensors());
    }

    private static List<String> differences(List<Field> fields, DinoConfig a, DinoConfig b) {
        List<String> d = new ArrayList<>();
        for (Field f : fields) if (!Objects.equals(f.value.apply(a), f.value.apply(b))) d.add(f.name);
        return d;
    }

    private static Object value(String field, DinoConfig c) {
        for (List<Field> l : List.of(BACKBONE, HEAD)) for (Field f : l) if (f.name.equals(field)) return f.value.apply(c);
        throw new IllegalArgumentException(field);
    }

    private static String describe(List<String> fields, DinoConfig c) {
        List<String> s = new ArrayList<>();
        for (String f : fields) s.add(f + " " + value(f, c));
        return String.join(", ", s);
    }

    private static String describe(DinoConfig c) {
        return c.preset != null ? "preset " + c.preset : "the configuration";
    }

    /** A file that was read but is no state this job can start from; the message is the one line to show. */
    public static final class InvalidInitFile extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;

        InvalidInitFile(String message) {
            super(message);
        }

        InvalidInitFile(String message, Throwable cause) {
            super(message, cause);
        }
    }
}
