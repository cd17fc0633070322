package dinostream.cli;

import dinostream.pipeline.dedup.DedupOptions;
import dinostream.pipeline.job.JobOptions;
import dinostream.pipeline.replay.ReplayOptions;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/** For correlated streams (cameras, sorted backfills): the replay buffer and the near-duplicate filter; shared by `train` and `demo`. */
final class CorrelatedStreamOptions {
    @Option(names = "--replay-size", paramLabel = "N", defaultValue = "0",
            description = "Images each model keeps for replay, a uniform sample of its stream (reservoir); 0: no buffer (default: ${DEFAULT-VALUE}).")
    int size;

    @Option(names = "--replay-ratio", paramLabel = "R",
            description = "Share of each batch taken from the replay buffer, 0 to below 1 (default: " + DEFAULT_RATIO
                    + " with --replay-size, the value README's experiment ran; 0 keeps a buffer without replaying it).")
    Double ratio;

    static final double DEFAULT_RATIO = 0.5;

    @Option(names = "--replay-bytes", paramLabel = "SIZE", defaultValue = "64m",
            description = "Heap one model's buffer may hold (e.g. 64m, 2g); images larger than SIZE / N are trained on but not kept (default: ${DEFAULT-VALUE}).")
    String bytes;

    @Option(names = "--dedup", description = "Drop from training a frame within --dedup-distance bits (perceptual hash) of the last frame kept from the same source; counted, still embedded.")
    boolean dedup;

    @Option(names = "--dedup-distance", paramLabel = "BITS", defaultValue = "" + DedupOptions.DEFAULT_MAX_DISTANCE,
            description = "Near-duplicate threshold of --dedup, 0 to 64 bits of a 64-bit difference hash (default: ${DEFAULT-VALUE}).")
    int dedupDistance;

    void applyTo(JobOptions.Builder b, CommandSpec spec) {
        long maxBytes;
        try {
            maxBytes = org.apache.flink.configuration.MemorySize.parse(bytes).getBytes();
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--replay-bytes: not a size: '" + bytes + "' (e.g. 256m, 2g)");
        }
        ReplayOptions replay;
        DedupOptions dd;
        try {
            replay = new ReplayOptions(size, ratio != null ? ratio : size > 0 ? DEFAULT_RATIO : 0, maxBytes, null);
            dd = dedup ? DedupOptions.on(dedupDistance) : DedupOptions.OFF;
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--replay-size/--replay-ratio/--replay-bytes/--dedup-distance: " + e.getMessage());
        }
        if (!dedup && spec.commandLine().getParseResult().hasMatchedOption("--dedup-distance")) {
            throw new ParameterException(spec.commandLine(), "--dedup-distance needs --dedup");
        }
        b.trainer(t -> t.replay(replay)).dedup(dd);
    }
}
