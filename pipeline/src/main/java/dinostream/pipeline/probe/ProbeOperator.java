package dinostream.pipeline.probe;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dinostream.model.dino.DinoConfig;
import dinostream.model.eval.Features;
import dinostream.model.eval.Knn;
import dinostream.model.runtime.InputBuffer;
import dinostream.model.runtime.OnnxRuntimeNatives;
import dinostream.model.runtime.RuntimeOptions;
import dinostream.model.runtime.TeacherInference;
import dinostream.pipeline.embed.EmbedInput;
import dinostream.pipeline.records.DecodedImage;
import dinostream.pipeline.records.TeacherUpdate;
import dinostream.pipeline.train.StepLog;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.TwoInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The online probe: holds a bounded, uniformly sampled set of labelled images per model (reservoir
 * sampling, in operator state) and scores each new teacher, at most every {@code everySteps} steps,
 * by DINO's weighted k-NN with half of the set as memory bank and half as queries. Scores go out
 * as {@link ProbeResult}s, to a Flink gauge and to the run folder's probe.jsonl.
 */
public class ProbeOperator extends AbstractStreamOperator<ProbeResult>
        implements TwoInputStreamOperator<DecodedImage, TeacherUpdate, ProbeResult> {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(ProbeOperator.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final ProbeOptions options;
    private transient ListState<DecodedImage> heldState;
    private transient ListState<String> seenState;
    private transient Map<String, List<DecodedImage>> held;
    private transient Map<String, Long> seen;
    private transient Map<String, Long> lastScored;
    private transient Map<String, Double> lastTop1;
    private transient SplittableRandom rng;
    private transient DinoConfig config;
    private transient java.util.Set<String> gauges;
    /** The probe set handed to ONNX Runtime: one direct buffer, reused. */
    private transient InputBuffer input;
    /** probe.jsonl of a local run. */
    private transient StepLog log;

    public ProbeOperator(ProbeOptions options) {
        this.options = options;
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        heldState = context.getOperatorStateStore().getListState(new ListStateDescriptor<>("probe-images", TypeInformation.of(DecodedImage.class)));
        seenState = context.getOperatorStateStore().getListState(new ListStateDescriptor<>("probe-seen", TypeInformation.of(String.class)));
        held = new HashMap<>();
        seen = new HashMap<>();
        lastScored = new HashMap<>();
        lastTop1 = new HashMap<>();
        gauges = new java.util.HashSet<>();
        for (DecodedImage i : heldState.get()) held.computeIfAbsent(i.modelId, k -> new ArrayList<>()).add(i);
        for (String s : seenState.get()) {
            int eq = s.lastIndexOf('=');
            seen.put(s.substring(0, eq), Long.parseLong(s.substring(eq + 1)));
        }
        rng = new SplittableRandom(0x5eed);
        config = options.config();
    }

    @Override
    public void open() throws Exception {
        super.open();
        // Models restored with their probe sets report at once, not only models first seen after the start.
        held.keySet().forEach(this::registerGauge);
        input = new InputBuffer();
        getRuntimeContext().registerUserCodeClassLoaderReleaseHookIfAbsent(OnnxRuntimeNatives.HOOK, OnnxRuntimeNatives::remove);
    }

    private void registerGauge(String modelId) {
        if (gauges.add(modelId)) {
            getMetricGroup().addGroup("model", modelId).gauge("knn_top1", (Gauge<Double>) () -> lastTop1.getOrDefault(modelId, Double.NaN));
        }
    }

    @Override
    public void processElement1(StreamRecord<DecodedImage> element) {
        DecodedImage img = element.getValue();
        if (img.label == null) return;
        registerGauge(img.modelId);
        List<DecodedImage> set = held.computeIfAbsent(img.modelId, k -> new ArrayList<>());
        long n = seen.merge(img.modelId, 1L, Long::sum);
        // Algorithm R: every labelled image so far is in the set with the same probability.
        if (set.size() < options.size()) set.add(img);
        else {
            long j = rng.nextLong(n);
            if (j < options.size()) set.set((int) j, img);
        }
    }

    @Override
    public void processElement2(StreamRecord<TeacherUpdate> element) throws Exception {
        TeacherUpdate t = element.getValue();
        if (t.isRejection()) return;
        registerGauge(t.modelId);
        List<DecodedImage> set = held.get(t.modelId);
        // A score on a handful of images would say little: wait for a fuller set.
        if (set == null || set.size() < Math.min(options.size(), 200)) return;
        Long last = lastScored.get(t.modelId);
        if (last != null && t.step - last < options.everySteps()) return;
        lastScored.put(t.modelId, t.step);
        long t0 = System.nanoTime();
        ProbeResult r = score(t, set);
        lastTop1.put(t.modelId, r.top1);
        LOG.info("model {} at step {}: k-NN probe top-1 {} % ({} bank / {} queries, {} ms)", t.modelId, t.step,
                String.format("%.2f", r.top1), r.bank, r.queries, String.format("%.0f", (System.nanoTime() - t0) / 1e6));
        append(r);
        output.collect(new StreamRecord<>(r));
    }

    private ProbeResult score(TeacherUpdate t, List<DecodedImage> set) throws IOException {
        int n = set.size();
        float[][] features;
        // The whole set in one call; the session lives for this score only, the input buffer for the operator.
        try (TeacherInference teacher = new TeacherInference(t.onnx, RuntimeOptions.cpu().withThreads(1), input)) {
            features = Features.extract(teacher, n, config.imgSize, n,
                    (i, dst, offset) -> EmbedInput.write(set.get(i), config, dst, offset), null);
        }
        int bank = n / 2, classes = 0;
        for (DecodedImage i : set) classes = Math.max(classes, i.label + 1);
        float[][] train = new float[bank][], test = new float[n - bank][];
        int[] trainLabels = new int[bank], testLabels = new int[n - bank];
        for (int i = 0; i < n; i++) {
            if (i < bank) {
                train[i] = features[i];
                trainLabels[i] = set.get(i).label;
            } else {
                test[i - bank] = features[i];
                testLabels[i - bank] = set.get(i).label;
            }
        }
        Knn.Result k = Knn.evaluate(train, trainLabels, test, testLabels, Math.min(options.k(), bank), options.temperature(), classes);
        ProbeResult r = new ProbeResult();
        r.modelId = t.modelId;
        r.step = t.step;
        r.top1 = k.top1();
        r.top5 = k.top5();
        r.bank = bank;
        r.queries = n - bank;
        return r;
    }

    private void append(ProbeResult r) throws IOException {
        if (options.runDir() == null) return;
        ObjectNode o = JSON.createObjectNode();
        o.put("time_ms", System.currentTimeMillis());
        o.put("model_id", r.modelId);
        o.put("step", r.step);
        o.put("images_seen", r.step * options.batch());
        o.put("top1", r.top1);
        o.put("top5", r.top5);
        o.put("bank", r.bank);
        o.put("queries", r.queries);
        if (log == null) log = new StepLog(Path.of(options.runDir()).resolve("probe.jsonl"));
        log.append(o);
    }

    @Override
    public void close() throws Exception {
        if (input != null) input.close();
        if (log != null) log.close();
        super.close();
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        List<DecodedImage> all = new ArrayList<>();
        held.values().forEach(all::addAll);
        heldState.update(all);
        List<String> s = new ArrayList<>();
        seen.forEach((k, v) -> s.add(k + "=" + v));
        seenState.update(s);
    }
}
