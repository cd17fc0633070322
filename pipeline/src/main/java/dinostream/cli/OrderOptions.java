package dinostream.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.pipeline.produce.CameraFeed;
import dinostream.pipeline.produce.ImageSource;
import dinostream.pipeline.produce.Order;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/** The order images go out in, and the camera feed's shape: shared by `produce` and `demo`. */
final class OrderOptions {
    @Option(names = "--order", paramLabel = "iid|class-sorted|camera", defaultValue = "iid",
            description = {"iid: shuffled by --seed; class-sorted: all of class 0, then 1, ... (a non-stationary stream);",
                    "camera: like a camera feed, each image as --frames jittered near-duplicate frames, a class for runs of "
                            + "--run-length images, then others, then back (raw-pixel sources only: fmnist, synthetic). Default: ${DEFAULT-VALUE}."})
    String order;

    @Option(names = "--frames", paramLabel = "N",
            description = "--order camera: frames per image (default: " + CameraFeed.DEFAULT_FRAMES_PER_IMAGE + ").")
    Integer frames;

    @Option(names = "--run-length", paramLabel = "N",
            description = "--order camera: images per run of one class (default: " + CameraFeed.DEFAULT_RUN_LENGTH + ").")
    Integer runLength;

    /**
     * The order, checked: --frames and --run-length shape the camera order only, and it jitters raw
     * pixels, so a folder of files is refused. Usage errors, before anything starts.
     */
    Order parse(CommandSpec spec, boolean folderSource) {
        Order ord;
        try {
            ord = Order.parse(order);
        } catch (IllegalArgumentException e) {
            throw usage(spec, e.getMessage());
        }
        if (ord != Order.CAMERA && (frames != null || runLength != null)) throw usage(spec, "--frames and --run-length apply only to --order camera");
        if (frames != null && frames < 1) throw usage(spec, "--frames must be at least 1, not " + frames);
        if (runLength != null && runLength < 1) throw usage(spec, "--run-length must be at least 1, not " + runLength);
        if (ord == Order.CAMERA && folderSource) {
            throw usage(spec, "--order camera needs raw-pixel images (--source fmnist or synthetic): it cannot jitter a folder's JPEG/PNG files into frames");
        }
        return ord;
    }

    /** What to send, in order; {@code limit} counts what is sent (frames for camera), negative: all. */
    Order.Feed feed(Order ord, ImageSource source, long seed, long limit) {
        try {
            return ord.feed(source, seed, limit, frames(), runLength());
        } catch (IllegalArgumentException e) {
            throw new CliFailure(e.getMessage(), e);
        }
    }

    /** The order's settings, for a JSON summary or run.json. */
    void describe(ObjectNode o, Order ord) {
        o.put("order", ord.cliName());
        if (ord == Order.CAMERA) {
            o.put("frames", frames());
            o.put("run_length", runLength());
        }
    }

    private int frames() {
        return frames != null ? frames : CameraFeed.DEFAULT_FRAMES_PER_IMAGE;
    }

    private int runLength() {
        return runLength != null ? runLength : CameraFeed.DEFAULT_RUN_LENGTH;
    }

    private static ParameterException usage(CommandSpec spec, String msg) {
        return new ParameterException(spec.commandLine(), msg);
    }
}
