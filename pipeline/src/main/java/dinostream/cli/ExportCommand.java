package dinostream.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.model.dino.DinoConfig;
import dinostream.model.export.InferenceExport;
import dinostream.model.io.DinoState;
import dinostream.model.io.OfficialCheckpoint;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "export", mixinStandardHelpOptions = true,
        description = {"Write the teacher's inference models into a folder:",
                "teacher-backbone.onnx (images [N, C, H, W] -> embeddings [N, D]) and",
                "teacher-attention.onnx (images -> attention [N, heads, 1 + patches]); images normalized as the crops.",
                "With --format pth: one file, a full checkpoint in the official DINO layout (main_dino.py's), which",
                "eval_knn.py / eval_linear.py load with --pretrained_weights FILE.pth --checkpoint_key teacher."})
final class ExportCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--state", paramLabel = "STATE.safetensors", required = true, description = "The state whose teacher to export.")
    Path state;

    @Option(names = "--out", paramLabel = "DIR|FILE.pth", required = true,
            description = "Folder for the ONNX models (created if missing), or the .pth file with --format pth.")
    Path out;

    enum Format { onnx, pth }

    @Option(names = "--format", paramLabel = "F", defaultValue = "onnx",
            description = "onnx: the inference models (default); pth: an official DINO checkpoint.")
    Format format;

    @Option(names = "--precision", paramLabel = "fp32|bf16|fp16", defaultValue = "fp32",
            description = "Type of the ONNX models' matrix products and of the weights feeding them: fp32 (default), or bf16 "
                    + "or fp16 for GPU providers (CUDA), about half the size, with LayerNorm, softmax, GELU, input and outputs "
                    + "in float32. ONNX Runtime's CPU provider runs fp16 but not bf16; the bf16 patch embedding stays float32 "
                    + "(opset 18's Conv has no bf16). --format onnx only.")
    String precision;

    @Option(names = "--json", description = "Print {step, files} as JSON on stdout.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        DinoConfig.Precision p = precision();
        DinoState s = DinoState.load(state);
        List<Path> files;
        if (format == Format.pth) {
            if (Files.isDirectory(out)) throw new CliFailure(out + " is a directory; --format pth writes one file");
            Path parent = out.toAbsolutePath().getParent();
            if (parent != null) Files.createDirectories(parent);
            OfficialCheckpoint.write(s, out);
            files = List.of(out);
        } else {
            if (Files.exists(out) && !Files.isDirectory(out)) throw new CliFailure(out + " exists and is not a directory");
            files = InferenceExport.write(s, out, p);
        }
        for (Path f : files) spec.commandLine().getErr().printf("wrote %s (%,d bytes)%n", f, Files.size(f));
        if (json) {
            ObjectNode o = Json.object();
            o.put("step", s.step());
            ArrayNode a = o.putArray("files");
            for (Path f : files) a.add(f.toString());
            Json.print(spec.commandLine().getOut(), o);
        }
        return 0;
    }

    /** The --precision value; an unknown one, or a low precision for the float32 .pth checkpoint, is a usage error. */
    private DinoConfig.Precision precision() {
        DinoConfig.Precision p;
        try {
            p = DinoConfig.Precision.of(precision);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--precision: " + e.getMessage());
        }
        if (format == Format.pth && p != DinoConfig.Precision.FP32) {
            throw new ParameterException(spec.commandLine(), "--precision " + p.id() + " is for --format onnx; the .pth checkpoint is float32");
        }
        return p;
    }
}
