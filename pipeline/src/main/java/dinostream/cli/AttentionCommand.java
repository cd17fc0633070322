package dinostream.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.model.dino.DinoConfig;
import dinostream.model.runtime.RuntimeOptions;
import dinostream.pipeline.decode.DecodeException;
import dinostream.pipeline.decode.DecodedPixels;
import dinostream.pipeline.decode.ImageDecoder;
import dinostream.pipeline.decode.Limits;
import dinostream.pipeline.produce.FolderSource;
import dinostream.pipeline.produce.SourceImage;
import dinostream.pipeline.records.DecodedImage;
import dinostream.pipeline.snapshot.Manifest;
import dinostream.pipeline.snapshot.Snapshot;
import dinostream.pipeline.snapshot.SnapshotStore;
import dinostream.pipeline.viz.Attention;
import dinostream.pipeline.viz.AttentionFigure;
import dinostream.pipeline.viz.Png;
import dinostream.schemas.ImageEncoding;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "attention", mixinStandardHelpOptions = true,
        description = {"Draw the teacher's attention maps for one image, as in the DINO paper's figures: the last block's CLS "
                + "attention per head over the patches (teacher-attention.onnx, CLS column dropped), upsampled and overlaid on "
                + "the image, one panel per head beside the image, written as one PNG.",
                "The image (JPEG or PNG) goes through DINO's eval transform (resize and centre-crop to the model's size), or, "
                        + "with --size N, is resized so its shorter side is N (a multiple of the patch), keeping the aspect ratio, "
                        + "for more resolution (the position embeddings are interpolated, as in DINO's own attention visualization)."})
final class AttentionCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--snapshot", paramLabel = "DIR", required = true, description = "A snapshot folder (step-*, a path or URI) whose teacher to show.")
    String snapshot;

    @Option(names = "--image", paramLabel = "FILE", required = true, description = "The image, JPEG or PNG.")
    Path image;

    @Option(names = "--out", paramLabel = "FILE.png", defaultValue = "attention.png", description = "The PNG to write (default: ${DEFAULT-VALUE}).")
    Path out;

    @Option(names = "--size", paramLabel = "N", description = "Shorter side the image is resized to, a multiple of the patch (default: the model's size, DINO's eval transform).")
    Integer size;

    @Option(names = "--upsample", paramLabel = "bilinear|nearest", defaultValue = "bilinear",
            description = "How the patch grid is enlarged to the image: bilinear (smooth) or nearest (one block per patch) (default: ${DEFAULT-VALUE}).")
    String upsample;

    @Option(names = "--threads", paramLabel = "T", defaultValue = "0", description = "ONNX Runtime intra-op threads (default: all cores).")
    int threads;

    @Option(names = "--json", description = "Print one JSON object on stdout: the PNG, its size, the grid and per head the CLS weight and the largest patch weight.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        Png.headless();
        AttentionFigure.Upsample up = switch (upsample) {
            case "bilinear" -> AttentionFigure.Upsample.BILINEAR;
            case "nearest" -> AttentionFigure.Upsample.NEAREST;
            default -> throw usage("--upsample must be bilinear or nearest, got '" + upsample + "'");
        };
        if (threads < 0) throw usage("--threads must be >= 0 (0: all cores), got " + threads);
        if (size != null && size < 1) throw usage("--size must be positive, got " + size);

        // Both inputs are checked before the (slower) snapshot load, so a typo fails at once with one line.
        byte[] bytes = readImage();
        ImageEncoding enc = FolderSource.sniff(bytes);
        if (enc == null) throw new CliFailure(image + " is neither a JPEG nor a PNG file");
        if (!snapshot.contains(":") && !Files.isDirectory(Path.of(snapshot))) {
            throw new CliFailure(Files.exists(Path.of(snapshot)) ? snapshot + " is not a snapshot folder (expected a step-* folder)"
                    : "no such snapshot folder: " + snapshot);
        }
        Snapshot snap = SnapshotStore.load(snapshot);
        DinoConfig cfg = snap.manifest().dinoConfig();
        try {
            Attention.checkSize(size, cfg);
        } catch (IllegalArgumentException e) {
            throw usage("--" + e.getMessage());
        }
        DecodedImage img = decode(bytes, enc, cfg.inChans);

        Attention.Maps maps;
        try (Attention a = new Attention(snap.state(), RuntimeOptions.cpu().withThreads(threads))) {
            maps = a.run(img, size);
        }
        BufferedImage fig = AttentionFigure.render(maps, up);
        Png.write(fig, out);

        Manifest m = snap.manifest();
        spec.commandLine().getErr().printf(Locale.ROOT, "wrote %s (%dx%d: the image and %d heads; %dx%d input, %dx%d patches; teacher of %s step %d)%n",
                out, fig.getWidth(), fig.getHeight(), maps.heads(), maps.width(), maps.height(), maps.gridW(), maps.gridH(), m.modelId(), m.step());
        if (json) {
            ObjectNode o = Json.object();
            o.put("out", out.toString());
            o.put("width", fig.getWidth());
            o.put("height", fig.getHeight());
            o.put("heads", maps.heads());
            o.put("input_width", maps.width());
            o.put("input_height", maps.height());
            o.put("grid_width", maps.gridW());
            o.put("grid_height", maps.gridH());
            o.put("snapshot", snapshot);
            o.put("model_id", m.modelId());
            o.put("step", m.step());
            o.put("images_seen", m.imagesSeen());
            o.put("model_version", m.modelVersion());
            ArrayNode cls = o.putArray("cls_weight"), max = o.putArray("max_patch_weight");
            for (int h = 0; h < maps.heads(); h++) {
                cls.add(maps.clsWeight(h));
                float best = 0;
                for (float v : maps.patchMap(h)) best = Math.max(best, v);
                max.add(best);
            }
            Json.print(spec.commandLine().getOut(), o);
        }
        return 0;
    }

    private byte[] readImage() throws java.io.IOException {
        if (Files.isDirectory(image)) throw new CliFailure(image + " is a folder, not an image file");
        if (!Files.isRegularFile(image)) throw new CliFailure("no such image file: " + image);
        long n = Files.size(image);
        if (n > Limits.DEFAULT.maxBytes()) {
            throw new CliFailure(image + " has " + n + " bytes, over the decoder's limit of " + Limits.DEFAULT.maxBytes());
        }
        return Files.readAllBytes(image);
    }

    /** The file as 8-bit pixels with the model's channel count, through the pipeline's own decoder (same conversions, same limits). */
    private DecodedImage decode(byte[] bytes, ImageEncoding enc, int channels) {
        SourceImage si = new SourceImage(image.getFileName().toString(), enc, null, null, null, bytes, null, null, Map.of());
        DecodedPixels px;
        try {
            px = new ImageDecoder().decode(si.toRecord("file", Instant.EPOCH, null), channels, Limits.DEFAULT);
        } catch (DecodeException e) {
            throw new CliFailure(image + ": " + e.getMessage(), e);
        }
        DecodedImage img = new DecodedImage();
        img.id = si.id();
        img.width = px.width();
        img.height = px.height();
        img.channels = px.channels();
        img.pixels = px.pixels();
        return img;
    }

    private ParameterException usage(String msg) {
        return new ParameterException(spec.commandLine(), msg);
    }
}
