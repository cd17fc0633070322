package dinostream.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.pipeline.augment.MultiCrop;
import dinostream.pipeline.job.JobOptions;
import dinostream.pipeline.train.TrainerOptions;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * OUT/run.json: every setting a local run's learning depends on, as effective values (the defaults
 * filled in), with the command line it came from, so that a result can always be traced to them.
 */
final class RunSettings {
    private RunSettings() {}

    static final String FILE = "run.json";

    /** @param images the run's budget of images (demo --images); null: none */
    static void write(Path dir, String command, CommandSpec spec, JobOptions o, Long images) throws IOException {
        write(dir, command, spec, o, images, null);
    }

    /** @param stream how the run's images went in (the demo's order and its settings), as "stream"; null: not recorded */
    static void write(Path dir, String command, CommandSpec spec, JobOptions o, Long images, ObjectNode stream) throws IOException {
        ObjectNode r = of(command, spec, o, images);
        if (stream != null) r.set("stream", stream);
        Files.createDirectories(dir);
        Files.writeString(dir.resolve(FILE), Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(r) + "\n");
    }

    static ObjectNode of(String command, CommandSpec spec, JobOptions o, Long images) throws IOException {
        ObjectNode r = Json.object();
        r.put("command", command);
        var args = r.putArray("args");
        spec.commandLine().getParseResult().originalArgs().forEach(args::add);
        TrainerOptions t = o.trainer();
        r.put("batch", t.batch());
        r.put("seed", t.seed());
        if (images != null) r.put("images", images);
        r.put("init_from", t.initState());
        r.set("schedule", schedule(t.schedule()));
        r.set("augment", augment(o.augment() != null ? o.augment() : MultiCrop.Params.forChannels(o.config().inChans)));
        r.set("config", Json.MAPPER.readTree(o.config().toJson()));
        r.put("probe_size", o.probe().size());
        r.put("dinostream", VersionProvider.version());
        return r;
    }

    private static ObjectNode schedule(TrainerOptions.Schedule s) {
        ObjectNode n = Json.object();
        n.put("kind", s.kind().toString());
        n.put("warmup_steps", s.warmupSteps());
        n.put("horizon", s.horizonSteps());
        n.put("lr", s.baseLr());
        n.put("min_lr", s.minLr());
        n.put("weight_decay", s.weightDecay());
        n.put("weight_decay_end", s.weightDecayEnd());
        n.put("teacher_temp", s.teacherTemp());
        n.put("warmup_teacher_temp", s.warmupTeacherTemp());
        n.put("warmup_teacher_temp_steps", s.warmupTeacherTempSteps());
        n.put("momentum", s.momentum());
        n.put("momentum_schedule", s.momentumCosine() ? "cosine" : "constant");
        n.put("freeze_last_layer_steps", s.freezeLastLayerSteps());
        return n;
    }

    private static ObjectNode augment(MultiCrop.Params p) {
        ObjectNode n = Json.object();
        n.set("global_scale", Json.array(new double[]{p.globalScaleMin, p.globalScaleMax}));
        n.set("local_scale", Json.array(new double[]{p.localScaleMin, p.localScaleMax}));
        return n;
    }
}
