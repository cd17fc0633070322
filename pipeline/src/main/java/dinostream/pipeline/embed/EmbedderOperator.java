package dinostream.pipeline.embed;

import dinostream.model.dino.DinoConfig;
import dinostream.model.runtime.InputBuffer;
import dinostream.model.runtime.OnnxRuntimeNatives;
import dinostream.model.runtime.RuntimeOptions;
import dinostream.model.runtime.TeacherInference;
import dinostream.pipeline.records.DecodedImage;
import dinostream.pipeline.records.TeacherUpdate;
import dinostream.schemas.EmbeddingRecord;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.metrics.Counter;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedMultiInput;
import org.apache.flink.streaming.api.operators.TwoInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Embeds images with the latest teacher of their model: input 1 is the images, input 2 the
 * teachers (broadcast to every subtask). Images are batched per model for ONNX Runtime; a partial
 * batch goes out after {@code maxDelayMs}, and every buffered image is embedded before a
 * checkpoint barrier passes, so the Kafka transaction of that checkpoint holds exactly the vectors
 * of the images before it. Images whose model has no teacher yet wait in operator state.
 */
public class EmbedderOperator extends AbstractStreamOperator<EmbeddingRecord>
        implements TwoInputStreamOperator<DecodedImage, TeacherUpdate, EmbeddingRecord>, BoundedMultiInput {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(EmbedderOperator.class);

    private final EmbedderOptions options;

    /** The batch handed to ONNX Runtime: one direct buffer, reused, shared by the teachers of all models. */
    private transient InputBuffer input;
    private transient ListState<TeacherUpdate> teacherState;
    private transient ListState<DecodedImage> waitingState;
    private transient Map<String, Teacher> teachers;
    private transient Map<String, List<DecodedImage>> buffers;
    private transient List<DecodedImage> waiting;
    private transient DinoConfig config;
    private transient boolean flushScheduled;
    private transient int inputsEnded;
    private transient Counter embedded;
    private transient Counter noTeacher;
    private transient long waitingBytes;
    private transient Map<String, Boolean> rejected;

    /** Images that waited for a teacher longer than the room allows (stage "embed", NO_TEACHER). */
    public static final org.apache.flink.util.OutputTag<dinostream.schemas.DeadLetter> DEAD_LETTERS =
            new org.apache.flink.util.OutputTag<>("embedder-dead-letters") {};

    public EmbedderOperator(EmbedderOptions options) {
        this.options = options;
    }

    /** A loaded teacher: its ONNX Runtime session and the version stamped on its vectors. */
    private record Teacher(TeacherUpdate update, TeacherInference inference) {}

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        // Union state: every subtask gets every teacher back after a restore or a rescale.
        teacherState = context.getOperatorStateStore().getUnionListState(
                new ListStateDescriptor<>("teachers", TypeInformation.of(TeacherUpdate.class)));
        waitingState = context.getOperatorStateStore().getListState(
                new ListStateDescriptor<>("images-without-teacher", TypeInformation.of(DecodedImage.class)));
        teachers = new HashMap<>();
        buffers = new HashMap<>();
        waiting = new ArrayList<>();
        config = options.config();
        // Before the restored teachers, which fill it; it allocates on the first batch.
        input = new InputBuffer();
        for (TeacherUpdate u : teacherState.get()) install(u);
        for (DecodedImage i : waitingState.get()) {
            waiting.add(i);
            waitingBytes += i.pixels.length;
        }
        // Recently refused models, bounded: a hostile producer may name any number of them.
        rejected = new java.util.LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, Boolean> e) {
                return size() > 1024;
            }
        };
    }

    @Override
    public void open() throws Exception {
        super.open();
        embedded = getMetricGroup().counter("embeddings");
        noTeacher = getMetricGroup().addGroup("reason", "NO_TEACHER").counter("dead_letters");
        getMetricGroup().gauge("waiting_bytes", (org.apache.flink.metrics.Gauge<Long>) () -> waitingBytes);
        getRuntimeContext().registerUserCodeClassLoaderReleaseHookIfAbsent(OnnxRuntimeNatives.HOOK, OnnxRuntimeNatives::remove);
    }

    @Override
    public void processElement1(StreamRecord<DecodedImage> element) throws Exception {
        DecodedImage img = element.getValue();
        if (!teachers.containsKey(img.modelId)) {
            if (rejected.containsKey(img.modelId)) return;   // the trainer dead-lettered it
            waiting.add(img);
            waitingBytes += img.pixels.length;
            while (waitingBytes > options.maxWaitingBytes() && !waiting.isEmpty()) noTeacher(waiting.remove(0));
            return;
        }
        List<DecodedImage> buf = buffers.computeIfAbsent(img.modelId, k -> new ArrayList<>());
        buf.add(img);
        if (buf.size() >= options.batch()) embed(img.modelId);
        else scheduleFlush();
    }

    @Override
    public void processElement2(StreamRecord<TeacherUpdate> element) throws Exception {
        TeacherUpdate u = element.getValue();
        if (u.isRejection()) {
            // Refused by the trainer (too many models): its images get dead letters there, not embeddings.
            rejected.put(u.modelId, Boolean.TRUE);
            for (DecodedImage i : waiting) if (i.modelId.equals(u.modelId)) waitingBytes -= i.pixels.length;
            waiting.removeIf(i -> i.modelId.equals(u.modelId));
            return;
        }
        Teacher old = teachers.get(u.modelId);
        if (old != null && old.update().step > u.step) return;   // a late, older teacher
        // Images already buffered were meant for the teacher of their time: embed them first.
        if (old != null && buffers.containsKey(u.modelId)) embed(u.modelId);
        install(u);
        List<DecodedImage> ready = new ArrayList<>();
        waiting.removeIf(i -> i.modelId.equals(u.modelId) && ready.add(i));
        for (DecodedImage i : ready) waitingBytes -= i.pixels.length;
        for (DecodedImage i : ready) processElement1(new StreamRecord<>(i));
    }

    private void install(TeacherUpdate u) {
        Teacher old = teachers.get(u.modelId);
        if (old != null && old.update().step > u.step) return;
        TeacherInference t = new TeacherInference(u.onnx, RuntimeOptions.cpu().withThreads(options.threads()), input);
        teachers.put(u.modelId, new Teacher(u, t));
        if (old != null) close(old);
        LOG.info("model {}: embedding with the teacher of step {} (version {})", u.modelId, u.step, u.version.substring(0, 12));
    }

    private void scheduleFlush() {
        if (flushScheduled) return;
        flushScheduled = true;
        long at = getProcessingTimeService().getCurrentProcessingTime() + options.maxDelayMs();
        getProcessingTimeService().registerTimer(at, t -> {
            flushScheduled = false;
            flushAll();
        });
    }

    private void flushAll() throws Exception {
        for (String modelId : new ArrayList<>(buffers.keySet())) embed(modelId);
    }

    private void embed(String modelId) {
        List<DecodedImage> batch = buffers.remove(modelId);
        if (batch == null || batch.isEmpty()) return;
        Teacher t = teachers.get(modelId);
        int n = batch.size(), side = config.imgSize, per = config.inChans * side * side;
        float[] input = new float[n * per];
        for (int i = 0; i < n; i++) EmbedInput.write(batch.get(i), config, input, i * per);
        float[][] vectors = t.inference().embed(input, n, side, side);
        for (int i = 0; i < n; i++) {
            DecodedImage img = batch.get(i);
            List<Float> v = new ArrayList<>(vectors[i].length);
            for (float f : vectors[i]) v.add(f);
            output.collect(new StreamRecord<>(EmbeddingRecord.newBuilder()
                    .setImageId(img.id).setSource(img.source == null ? "" : img.source)
                    .setEventTime(Instant.ofEpochMilli(img.eventTime)).setModelId(modelId)
                    .setModelStep(t.update().step).setSnapshotHash(t.update().version).setVector(v)
                    .setTopic(img.topic).setPartition(img.partition).setOffset(img.offset).build()));
        }
        embedded.inc(n);
    }

    /** An image whose model has no teacher and for which there is no room to wait: a dead letter. */
    private void noTeacher(DecodedImage i) {
        waitingBytes -= i.pixels.length;
        noTeacher.inc();
        output.collect(DEAD_LETTERS, new StreamRecord<>(dinostream.schemas.DeadLetter.newBuilder()
                .setKey(i.id == null ? null : java.nio.ByteBuffer.wrap(i.id.getBytes(java.nio.charset.StandardCharsets.UTF_8)))
                .setValue(null)
                .setTopic(i.topic == null ? "" : i.topic)
                .setPartition(i.partition)
                .setOffset(i.offset)
                .setStage("embed")
                .setReason("NO_TEACHER: model '" + i.modelId + "' has no teacher yet and " + (options.maxWaitingBytes() >> 20)
                        + " MiB of images already wait for teachers in this embedder")
                .setTime(java.time.Instant.ofEpochMilli(getProcessingTimeService().getCurrentProcessingTime()))
                .build()));
    }

    /** Everything embeddable leaves before the barrier; only images with no teacher yet stay in state. */
    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        super.prepareSnapshotPreBarrier(checkpointId);
        flushAll();
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        List<TeacherUpdate> ts = new ArrayList<>();
        for (Teacher t : teachers.values()) ts.add(t.update());
        teacherState.update(ts);
        waitingState.update(new ArrayList<>(waiting));
    }

    @Override
    public void endInput(int inputId) throws Exception {
        flushAll();
        if (++inputsEnded == 2 && !waiting.isEmpty()) {
            LOG.warn("{} images ended the input without a teacher for their model and were not embedded", waiting.size());
        }
    }

    @Override
    public void close() throws Exception {
        if (teachers != null) teachers.values().forEach(EmbedderOperator::close);
        if (input != null) input.close();
        super.close();
    }

    private static void close(Teacher t) {
        try {
            t.inference().close();
        } catch (Exception e) {
            LOG.debug("closing a teacher session", e);
        }
    }
}
