package dinostream.pipeline.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Schedules;
import dinostream.model.dino.TrainStep;
import dinostream.model.eval.CollapseMonitor;
import dinostream.model.export.InferenceExport;
import dinostream.model.io.DinoState;
import dinostream.model.runtime.OnnxRuntimeNatives;
import dinostream.model.runtime.RuntimeOptions;
import dinostream.model.runtime.TrainMemory;
import dinostream.model.runtime.TrainSession;
import dinostream.pipeline.augment.MultiCrop;
import dinostream.pipeline.records.CropSet;
import dinostream.pipeline.records.TeacherUpdate;
import dinostream.pipeline.replay.ReplayImage;
import dinostream.pipeline.replay.ReplayOptions;
import dinostream.pipeline.replay.ReplaySummary;
import dinostream.pipeline.replay.Reservoir;
import dinostream.pipeline.snapshot.Manifest;
import dinostream.pipeline.snapshot.ModelVersion;
import dinostream.pipeline.snapshot.SnapshotInfo;
import dinostream.pipeline.snapshot.SnapshotStore;
import dinostream.pipeline.snapshot.SnapshotWriter;
import org.apache.flink.api.common.externalresource.ExternalResourceInfo;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The DINO trainer, keyed by modelId: collects crops into batches, runs one ONNX train step per
 * batch, and holds each model's student, teacher, optimizer moments, centre and step as Flink
 * managed keyed state.
 *
 * <p>State handling is write-behind: between checkpoints the live state stays in ONNX Runtime's
 * tensors (no copy per step); just before a checkpoint barrier ({@link #prepareSnapshotPreBarrier})
 * every model that stepped since the last checkpoint is copied once into keyed state as fresh
 * safetensors bytes (never mutated afterwards, as the heap backend keeps the reference). Crops that
 * wait for a batch are in keyed list state from the moment they arrive, so a failure loses none.
 * Its output is the teacher, at the start and every {@code broadcastEvery} steps, for the embedders.
 */
public class DinoTrainerOperator extends AbstractStreamOperator<TeacherUpdate>
        implements OneInputStreamOperator<CropSet, TeacherUpdate>, org.apache.flink.streaming.api.operators.BoundedOneInput {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(DinoTrainerOperator.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private static final String MODEL_STATE = "dino-state";

    /** Images of models this subtask will not create (--max-models): dead letters, stage "train". */
    public static final org.apache.flink.util.OutputTag<dinostream.schemas.DeadLetter> DEAD_LETTERS =
            new org.apache.flink.util.OutputTag<>("trainer-dead-letters") {};

    private final TrainerOptions options;

    private transient ValueState<byte[]> modelState;
    private transient ValueState<TrainerProgress> progressState;
    private transient ListState<CropSet> pendingState;
    /** The replay buffer of the current key, by slot (see Reservoir). */
    private transient MapState<Integer, ReplayImage> replayState;
    /** Crops replayed images: the same operator as fresh images get (the job's parameters). */
    private transient MultiCrop replayCrop;
    private transient Map<String, LiveModel> live;
    private transient Map<String, TrainStep.Model> compiled;
    private transient DinoConfig config;
    private transient Schedules.TrainingSchedule schedule;
    private transient MetricsLog metricsLog;
    private transient SnapshotStore snapshots;
    private transient SnapshotWriter snapshotWriter;
    /** Snapshots due, by the checkpoint whose state they are, until it completes. */
    private transient TreeMap<Long, List<SnapshotWriter.Pending>> snapshotsByCheckpoint;
    private transient Counter stepsCounter;
    private transient Counter imagesCounter;
    private transient Counter skippedCounter;
    private transient Counter tooManyModels;

    public DinoTrainerOperator(TrainerOptions options) {
        this.options = options;
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        modelState = context.getKeyedStateStore().getState(
                new ValueStateDescriptor<>(MODEL_STATE, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO));
        progressState = context.getKeyedStateStore().getState(
                new ValueStateDescriptor<>("progress", TypeInformation.of(TrainerProgress.class)));
        pendingState = context.getKeyedStateStore().getListState(
                new ListStateDescriptor<>("pending-crops", TypeInformation.of(CropSet.class)));
        replayState = context.getKeyedStateStore().getMapState(
                new MapStateDescriptor<>("replay", TypeInformation.of(Integer.class), TypeInformation.of(ReplayImage.class)));
    }

    @Override
    public void open() throws Exception {
        super.open();
        config = options.config();
        ReplayOptions replay = options.replay();
        replayCrop = MultiCrop.forConfig(config, replay.augment() != null ? replay.augment() : MultiCrop.Params.forChannels(config.inChans));
        schedule = options.trainingSchedule();
        live = new HashMap<>();
        compiled = new HashMap<>();
        metricsLog = options.runDir() == null ? null : new MetricsLog(options.runDir());
        snapshots = options.snapshotDir() == null ? null : new SnapshotStore(options.snapshotDir(), options.snapshotKeep());
        snapshotWriter = snapshots == null ? null : new SnapshotWriter(snapshots);
        snapshotsByCheckpoint = new TreeMap<>();
        getMetricGroup().gauge("snapshots_written", (Gauge<Long>) () -> snapshotWriter == null ? 0L : snapshotWriter.written());
        getMetricGroup().gauge("snapshot_failures", (Gauge<Long>) () -> snapshotWriter == null ? 0L : snapshotWriter.failed());
        stepsCounter = getMetricGroup().counter("train_steps");
        imagesCounter = getMetricGroup().counter("train_images");
        skippedCounter = getMetricGroup().counter("skipped_steps");
        tooManyModels = getMetricGroup().addGroup("reason", "TOO_MANY_MODELS").counter("dead_letters");
        getRuntimeContext().registerUserCodeClassLoaderReleaseHookIfAbsent(OnnxRuntimeNatives.HOOK, OnnxRuntimeNatives::remove);
        // Restored models come back at once: their gauges are there before their next image, and a
        // checkpoint written under another --models list is refused here, not silently retrained.
        List<String> restored;
        org.apache.flink.runtime.state.KeyedStateBackend<String> backend = getKeyedStateBackend();
        try (var keys = backend.getKeys(MODEL_STATE, org.apache.flink.runtime.state.VoidNamespace.INSTANCE)) {
            restored = keys.toList();
        }
        for (String key : restored) {
            options.routing().checkRestored(key);
            setCurrentKey(key);
            liveModel(key);
        }
    }

    @Override
    public void processElement(StreamRecord<CropSet> element) throws Exception {
        CropSet crops = element.getValue();
        String key = (String) getCurrentKey();
        if (!live.containsKey(key) && live.size() >= options.maxModels() && modelState.value() == null) {
            rejectModel(crops);
            return;
        }
        LiveModel m = liveModel(key);
        if (m.progress.paused) {
            // Paused: its images still get embeddings (from its last teacher); none is held for training.
            m.untrained++;
            return;
        }
        if (m.announce) {
            m.announce = false;
            DinoState state = m.session.state();
            emitTeacher(m.modelId, state, InferenceExport.backboneModel(state));
        }
        if (crops.views() != config.nCrops() || crops.channels != config.inChans) {
            throw new IllegalStateException("crops of image " + crops.id + " have " + crops.views() + " views and "
                    + crops.channels + " channels; model " + m.modelId + " needs " + config.nCrops() + " and " + config.inChans);
        }
        pendingState.add(crops);
        m.pending++;
        m.offsets.merge(Manifest.offsetKey(crops.topic, crops.partition), crops.offset + 1, Math::max);
        if (m.pending >= freshPerBatch(m)) step(m);
    }

    /** Fresh images a step waits for: the batch less what the buffer supplies. */
    private int freshPerBatch(LiveModel m) {
        return options.batch() - options.replay().replayPerBatch(options.batch(), m.replay.stored());
    }

    private void step(LiveModel m) throws Exception {
        List<CropSet> pending = new ArrayList<>();
        for (CropSet c : pendingState.get()) pending.add(c);
        int fresh = Math.min(pending.size(), options.batch());
        if (fresh < freshPerBatch(m)) {
            throw new IllegalStateException("model " + m.modelId + ": " + pending.size() + " crops pending, expected " + freshPerBatch(m));
        }
        // More pending than a batch only after a restart with a lower replay ratio: the rest waits for the next step.
        List<CropSet> freshCrops = pending.subList(0, fresh), later = pending.subList(fresh, pending.size());
        long stepBefore = m.session.step();
        List<CropSet> batch = new ArrayList<>(freshCrops);
        int replayed = options.batch() - fresh;
        m.replayAugmentMs = 0;
        if (replayed > 0) {
            long t = System.nanoTime();
            for (int slot : Reservoir.pick(m.replaySeed, stepBefore, m.replay.stored(), replayed)) {
                ReplayImage r = replayState.get(slot);
                batch.add(replayCrop.apply(r.toDecoded(m.modelId), MultiCrop.rngFor(options.seed(), r.id, stepBefore)));
            }
            m.replayAugmentMs = (System.nanoTime() - t) / 1e6;
        }
        double[] mean = config.meanOrDefault(), std = config.stdOrDefault();
        for (int v = 0; v < m.views.length; v++) {
            int per = m.views[v].length / options.batch();
            for (int b = 0; b < options.batch(); b++) MultiCrop.normalize(batch.get(b), v, mean, std, m.views[v], b * per);
        }
        FloatBuffer[] buffers = new FloatBuffer[m.views.length];
        for (int v = 0; v < buffers.length; v++) buffers[v] = FloatBuffer.wrap(m.views[v]);

        // The schedule's own step: counted from where this job started the model (see TrainerProgress).
        TrainSession.Hyper hyper = schedule.at(Math.max(0, stepBefore - m.progress.scheduleOrigin));
        long t0 = System.nanoTime();
        TrainSession.Stats stats;
        try {
            stats = m.session.run(buffers, hyper)[0];
        } catch (TrainSession.NonFiniteStepException e) {
            consumed(m, freshCrops, later);
            skip(m, batch, e);
            return;
        }
        double stepMs = (System.nanoTime() - t0) / 1e6;
        m.progress.consecutiveSkips = 0;
        consumed(m, freshCrops, later);
        m.progress.imagesSeen += fresh;
        m.progress.replayedImages += replayed;
        m.dirty = true;
        m.last = stats;
        m.hyper = hyper;
        m.stepMs = stepMs;
        long now = System.nanoTime();
        m.imagesPerSecond = m.lastStepEnd == 0 ? options.batch() * 1000 / stepMs : options.batch() * 1e9 / (now - m.lastStepEnd);
        if (m.session.config().precision() == DinoConfig.Precision.FP16) {
            // A lower scale than before: this step's fp16 gradients overflowed and it changed no weight (LossScaler).
            float scale = m.session.get(dinostream.model.dino.StateKeys.LOSS_SCALE).toFloatArray()[0];
            if (scale < m.lossScale) m.overflowSkips++;
            m.lossScale = scale;
        }
        m.lastStepEnd = now;
        stepsCounter.inc();
        imagesCounter.inc(batch.size());
        long step = stats.step();   // the state's step counter after this iteration
        if (options.monitorEvery() > 0 && (step % options.monitorEvery() == 0 || m.monitors == null)) monitor(m, stats);
        if (metricsLog != null) {
            metricsLog.write(m.modelId, stats, hyper, m.progress.imagesSeen, stepMs, m.imagesPerSecond, m.lossScale,
                    step % Math.max(options.monitorEvery(), 1) == 0 ? m.monitors : null, m.warnings,
                    options.replay().enabled() ? new MetricsLog.ReplayStep(m.progress.replayedImages, m.replay.stored(), m.replayAugmentMs) : null);
        }

        // A snapshot is due; it is written from the checkpoint that holds this state, once that completes.
        // Counted from the newest snapshot handed to a checkpoint, written or not: steps taken while its checkpoint
        // completes would otherwise make a second snapshot of the same interval.
        if (snapshots != null && step >= nextSnapshotStep(Math.max(m.progress.lastSnapshotStep, m.pendingSnapshotStep))) m.snapshotDue = true;
        if (options.broadcastEvery() > 0 && step % options.broadcastEvery() == 0) {
            DinoState state = m.session.state();
            emitTeacher(m.modelId, state, InferenceExport.backboneModel(state));
        }
    }

    /**
     * A step's fresh images leave the pending list and are offered to the replay buffer (after the
     * step: a batch never replays its own images). Each takes the slot Reservoir gives its position.
     */
    private void consumed(LiveModel m, List<CropSet> fresh, List<CropSet> later) throws Exception {
        if (options.replay().enabled()) {
            for (CropSet c : fresh) {
                // Crops without their image were cut before a restart that turned replay on: trained on, not kept.
                if (c.source == null) continue;
                ReplayImage r = new ReplayImage(c.id, c.label, c.sourceWidth, c.sourceHeight, c.sourceChannels, c.source, m.progress.replayOffered);
                if (r.bytes() > options.replay().slotBytes()) {
                    // Kept, it could break the byte bound: the bound is shared evenly among the slots.
                    if (m.progress.replayOversize++ == 0) {
                        LOG.warn("model {}: image {} ({} bytes) is larger than a replay slot ({} bytes: --replay-bytes / --replay-size); "
                                + "such images are trained on but not kept for replay", m.modelId, c.id, r.bytes(), options.replay().slotBytes());
                    }
                    continue;
                }
                // Fill first (also after a restart with a larger buffer), then Algorithm R.
                long n = m.progress.replayOffered++;
                int size = options.replay().size();
                int slot = m.replay.stored() < size ? m.replay.stored() : Reservoir.slotFor(m.replaySeed, n, size);
                if (slot >= 0) {
                    replayState.put(slot, r);
                    m.replay.kept(slot, r);
                }
            }
        }
        pendingState.update(new ArrayList<>(later));
        m.pending = later.size();
    }

    /**
     * Any producer can name a new model, and each takes hundreds of MB: beyond --max-models this
     * subtask creates none. The image becomes a dead letter (its coordinates find it in the log),
     * and the embedders hear that the model has no teacher coming, so they drop its images too.
     */
    private void rejectModel(CropSet crops) {
        tooManyModels.inc();
        output.collect(DEAD_LETTERS, new StreamRecord<>(dinostream.schemas.DeadLetter.newBuilder()
                .setKey(crops.id == null ? null : java.nio.ByteBuffer.wrap(crops.id.getBytes(java.nio.charset.StandardCharsets.UTF_8)))
                .setValue(null)
                .setTopic(crops.topic == null ? "" : crops.topic)
                .setPartition(crops.partition)
                .setOffset(crops.offset)
                .setStage("train")
                .setReason("TOO_MANY_MODELS: model '" + crops.modelId + "' would be model " + (live.size() + 1) + " of this trainer, over --max-models "
                        + options.maxModels() + " (each model holds its weights, teacher and optimizer state)")
                .setTime(java.time.Instant.ofEpochMilli(getProcessingTimeService().getCurrentProcessingTime()))
                .build()));
        output.collect(new StreamRecord<>(TeacherUpdate.rejected(crops.modelId)));
    }

    /**
     * A step whose loss or new state is not finite: DINO would stop; a stream must not. Failing the
     * task would replay the same batch into the same step forever (crops and drop path are seeded),
     * so the step is refused (the model stays as before it), its images are counted and logged, not
     * dead-lettered (they are not bad records, and they still get their embeddings), and after
     * {@code maxSkippedSteps} in a row the model pauses.
     */
    private void skip(LiveModel m, List<CropSet> batch, TrainSession.NonFiniteStepException e) {
        m.progress.skippedSteps++;
        m.progress.consecutiveSkips++;
        m.dirty = true;
        skippedCounter.inc();
        List<String> ids = batch.stream().limit(8).map(c -> c.id).toList();
        LOG.warn("model {}: step skipped ({} in a row): {}; its {} images are not trained on: {}{}", m.modelId,
                m.progress.consecutiveSkips, e.getMessage(), batch.size(), ids, batch.size() > ids.size() ? " ..." : "");
        if (m.progress.consecutiveSkips >= options.maxSkippedSteps()) {
            m.progress.paused = true;
            LOG.error("model {} PAUSED after {} skipped steps in a row at step {}: it no longer trains; its images still get "
                    + "embeddings from its last teacher; to train it again, fix the cause and restart the job from a checkpoint "
                    + "with --resume-paused-models", m.modelId, m.progress.consecutiveSkips, e.step());
        }
    }

    /**
     * The end of a bounded input (train --bounded, demo --images): the last step is snapshotted too, not
     * only the last multiple of --snapshot-every, so the run's final model is on disk. The final
     * checkpoint, taken after this, writes it.
     */
    @Override
    public void endInput() {
        if (snapshots == null) return;
        for (LiveModel m : live.values()) {
            if (m.last != null && m.session.step() > m.progress.lastSnapshotStep) {
                m.snapshotDue = true;
                m.dirty = true;
            }
        }
    }

    /** The first step at or after the next multiple of --snapshot-every. */
    private long nextSnapshotStep(long lastSnapshotStep) {
        return lastSnapshotStep < 0 ? options.snapshotEvery() : (lastSnapshotStep / options.snapshotEvery() + 1) * options.snapshotEvery();
    }

    /** What a snapshot's manifest says beside the state: as of the model's last step. */
    private SnapshotInfo snapshotInfo(LiveModel m) {
        TrainSession.Hyper h = m.hyper;
        TrainSession.Stats st = m.last;
        return new SnapshotInfo(m.progress.imagesSeen,
                Map.of(Manifest.LR, (double) h.lr(), Manifest.WEIGHT_DECAY, (double) h.weightDecay(),
                        Manifest.TEACHER_TEMP, (double) h.teacherTemp(), Manifest.MOMENTUM, (double) h.momentum()),
                Map.of("loss", (double) st.loss(), "teacher_entropy", (double) st.teacherEntropy(), "kl", (double) st.kl()),
                new TreeMap<>(m.offsets));
    }

    /**
     * Snapshots describe committed state only: the state a checkpoint holds is handed to the
     * background writer when that checkpoint completes. A failover before that rolls back to an
     * earlier checkpoint, and the snapshot of a timeline that was undone is never written.
     */
    @Override
    public void notifyCheckpointComplete(long checkpointId) throws Exception {
        super.notifyCheckpointComplete(checkpointId);
        var done = snapshotsByCheckpoint.headMap(checkpointId, true);
        // Newest per model: an older pending snapshot of a model is subsumed by a newer completed one.
        Map<String, SnapshotWriter.Pending> newest = new HashMap<>();
        for (List<SnapshotWriter.Pending> l : done.values()) for (SnapshotWriter.Pending p : l) newest.put(p.modelId(), p);
        done.clear();
        for (SnapshotWriter.Pending p : newest.values()) {
            snapshotWriter.submit(p);
            for (LiveModel m : live.values()) {
                if (!m.modelId.equals(p.modelId())) continue;
                m.progress.lastSnapshotStep = Math.max(m.progress.lastSnapshotStep, p.step());
                m.progressDirty = true;
            }
        }
    }

    /** Collapse monitors from the step's teacher features and centre; a warning is logged when one starts. */
    private void monitor(LiveModel m, TrainSession.Stats stats) {
        float[][] features = m.session.teacherFeatures();
        if (features == null) return;
        float[] center = m.session.get(dinostream.model.dino.StateKeys.CENTER).toFloatArray();
        m.monitors = CollapseMonitor.of(features, center, stats.loss(), stats.teacherEntropy(), stats.kl());
        List<CollapseMonitor.Warning> w = CollapseMonitor.warnings(m.monitors, CollapseMonitor.Thresholds.DEFAULT);
        for (CollapseMonitor.Warning x : w) {
            if (!m.warnings.contains(x.kind())) LOG.warn("model {} at step {}: collapse warning: {}", m.modelId, stats.step(), x.message());
        }
        m.warnings = w.stream().map(CollapseMonitor.Warning::kind).toList();
    }

    private void emitTeacher(String modelId, DinoState state, byte[] onnx) {
        output.collect(new StreamRecord<>(new TeacherUpdate(modelId, state.step(), ModelVersion.of(state), onnx)));
    }

    /** The live model of a trainer key (the current key): restored from keyed state, or initialized on its first image. */
    private LiveModel liveModel(String key) throws Exception {
        LiveModel m = live.get(key);
        if (m != null) return m;
        String modelId = ModelRouting.modelOf(key);
        RuntimeOptions runtime = runtimeOptions();
        boolean gpu = runtime.device() == RuntimeOptions.Device.CUDA;
        // With the state on a GPU (the device runtime) it and the activations live there: the host keeps less.
        TrainMemory need = TrainMemory.of(config, options.batch());
        if (gpu && runtime.effectiveRuntime() == RuntimeOptions.Runtime.DEVICE) need = need.onGpu();
        TaskManagerBudget.check(getContainingTask().getEnvironment().getTaskManagerInfo().getConfiguration(), need, live.size() + 1,
                "model " + modelId + " (" + (config.preset != null ? "preset " + config.preset : "its configuration") + ", batch " + options.batch() + ")");
        TaskManagerBudget.checkReplay(getContainingTask().getEnvironment().getTaskManagerInfo().getConfiguration(), options.replay(), live.size() + 1,
                "model " + modelId);
        byte[] bytes = modelState.value();
        DinoState state;
        TrainerProgress progress = progressState.value();
        if (bytes != null) {
            state = DinoState.fromBytes(bytes, "checkpointed state of model " + modelId);
            LOG.info("model {}: restored at step {} ({} images seen)", modelId, state.step(),
                    progress == null ? 0 : progress.imagesSeen);
        } else {
            state = initialState();
            LOG.info("model {}: initialized from {}", modelId, options.initState() != null ? options.initState() : "seed " + options.seed());
        }
        if (progress == null) {
            progress = new TrainerProgress();
            progress.scheduleOrigin = state.step();
        }
        boolean resumed = progress.paused && options.resumePausedModels();
        if (resumed) {
            progress.paused = false;
            progress.consecutiveSkips = 0;
            LOG.info("model {}: was paused after skipped steps; resumed (--resume-paused-models)", modelId);
        } else if (progress.paused) {
            LOG.warn("model {}: restored PAUSED (after {} skipped steps in a row); restart with --resume-paused-models to train it", modelId, progress.consecutiveSkips);
        }
        // On a GPU the state stays in its memory (RuntimeOptions' AUTO: the IoBinding runtime) and a bf16 or
        // fp16 model runs its products in that type.
        TrainStep.Model model = compiled.computeIfAbsent(config.toJson() + "#" + options.batch() + "#" + gpu,
                k -> TrainStep.buildFor(config, options.batch(), gpu));
        // The stochastic-depth stream is seeded by the step too: a restored model does not replay its first masks.
        TrainSession session = TrainSession.open(model, state, runtime,
                options.seed() ^ modelId.hashCode() ^ (state.step() * 0x9E3779B97F4A7C15L));
        LOG.info("model {}: train step on {}, state in {} memory ({})", modelId, gpu ? "cuda:" + runtime.deviceId() : "the CPU",
                runtime.effectiveRuntime() == RuntimeOptions.Runtime.DEVICE ? "the device's" : "host", session.getClass().getSimpleName());
        LiveModel created = new LiveModel(modelId, key, session, progress, config, options.batch(), options.replay().size(),
                options.seed() ^ modelId.hashCode());
        JSON.readTree(progress.offsetsJson).properties().forEach(e -> created.offsets.put(e.getKey(), e.getValue().asLong()));
        for (CropSet ignored : pendingState.get()) created.pending++;
        restoreReplay(created);
        created.dirty = resumed;
        live.put(key, created);
        registerMetrics(created);
        // Embedders start at once with a new model; a restored one is announced with its next image
        // (not from open(), before the restored in-flight records), until then they have their own copy.
        if (options.broadcastEvery() > 0) {
            if (bytes == null) emitTeacher(modelId, state, InferenceExport.backboneModel(state));
            else created.announce = true;
        }
        return created;
    }

    /**
     * A new model's state: the --init-from file (read where the trainer runs, as each new model is
     * created: no copy of it stays in memory), or a random one from the seed. The job's
     * configuration was merged from the file where it was submitted; here the file must fit it.
     */
    private DinoState initialState() throws java.io.IOException {
        if (options.initState() == null) return DinoState.init(config, options.seed());
        DinoState file = InitFile.read(options.initState(), options.initImport(), config, options.seed());
        return InitFile.fit(file, config, options.initState());
    }

    /** CPU, or the GPU Flink assigned to this task manager (external resource "gpu"), or a fixed one. */
    private RuntimeOptions runtimeOptions() {
        RuntimeOptions r = RuntimeOptions.cpu().withRuntime(options.runtime()).withThreads(options.threads() > 0 ? options.threads()
                : TaskManagerBudget.threadsPerSlot(getContainingTask().getEnvironment().getTaskManagerInfo().getConfiguration()));
        if (!options.device().cuda()) return r;
        if (options.device().index() != TrainerOptions.Device.ASSIGNED) return r.onCuda(options.device().index());
        List<Integer> gpus = new ArrayList<>();
        for (ExternalResourceInfo i : getRuntimeContext().getExternalResourceInfos("gpu")) {
            i.getProperty("index").ifPresent(s -> gpus.add(Integer.parseInt(s.trim())));
        }
        // A MiniCluster reports no external resources: fall back to device 0.
        int subtask = getRuntimeContext().getTaskInfo().getIndexOfThisSubtask();
        return r.onCuda(gpus.isEmpty() ? 0 : gpus.stream().sorted().toList().get(subtask % gpus.size()));
    }

    private void registerMetrics(LiveModel m) {
        MetricGroup g = getMetricGroup().addGroup("model", m.modelId);
        g.gauge("loss", (Gauge<Double>) () -> m.last == null ? Double.NaN : m.last.loss());
        g.gauge("teacher_entropy", (Gauge<Double>) () -> m.last == null ? Double.NaN : m.last.teacherEntropy());
        g.gauge("kl", (Gauge<Double>) () -> m.last == null ? Double.NaN : m.last.kl());
        g.gauge("lr", (Gauge<Double>) () -> m.hyper == null ? Double.NaN : m.hyper.lr());
        g.gauge("momentum", (Gauge<Double>) () -> m.hyper == null ? Double.NaN : m.hyper.momentum());
        g.gauge("images_per_s", (Gauge<Double>) () -> m.imagesPerSecond);
        g.gauge("step_ms", (Gauge<Double>) () -> m.stepMs);
        g.gauge("loss_scale", (Gauge<Double>) () -> (double) m.lossScale);
        g.gauge("overflow_skipped_steps", (Gauge<Long>) () -> m.overflowSkips);
        g.gauge("step", (Gauge<Long>) () -> m.last == null ? 0L : m.last.step());
        g.gauge("images_seen", (Gauge<Long>) () -> m.progress.imagesSeen);
        g.gauge("embedding_std", (Gauge<Double>) () -> m.monitors == null ? Double.NaN : m.monitors.embeddingStd());
        g.gauge("effective_rank", (Gauge<Double>) () -> m.monitors == null ? Double.NaN : m.monitors.effectiveRank());
        g.gauge("center_norm", (Gauge<Double>) () -> m.monitors == null ? Double.NaN : m.monitors.centerNorm());
        g.gauge("loss_over_ln_k", (Gauge<Double>) () -> m.monitors == null ? Double.NaN : m.monitors.lossOverLnK());
        g.gauge("collapse_warnings", (Gauge<Integer>) () -> m.warnings.size());
        g.gauge("skipped_steps", (Gauge<Long>) () -> m.progress.skippedSteps);
        g.gauge("paused", (Gauge<Integer>) () -> m.progress.paused ? 1 : 0);
        g.gauge("untrained_images", (Gauge<Long>) () -> m.untrained);
        if (options.replay().enabled()) {
            g.gauge("replay_images", (Gauge<Integer>) () -> m.replay.stored());
            g.gauge("replay_bytes", (Gauge<Long>) () -> m.replay.bytes());
            g.gauge("replayed_images", (Gauge<Long>) () -> m.progress.replayedImages);
            g.gauge("replay_oversize_images", (Gauge<Long>) () -> m.progress.replayOversize);
            g.gauge("replay_augment_ms", (Gauge<Double>) () -> m.replayAugmentMs);
            // Age: images offered to the buffer since a kept image arrived (a uniform reservoir spreads them over the stream).
            g.gauge("replay_age_p10", (Gauge<Long>) () -> m.replay.agePercentile(m.progress.replayOffered, 0.1));
            g.gauge("replay_age_p50", (Gauge<Long>) () -> m.replay.agePercentile(m.progress.replayOffered, 0.5));
            g.gauge("replay_age_p90", (Gauge<Long>) () -> m.replay.agePercentile(m.progress.replayOffered, 0.9));
        }
    }

    /**
     * The restored buffer into the live model's summary. A restart with another --replay-size keeps
     * what fits, in slots 0 .. k-1 (a smaller buffer keeps its lowest slots, a uniform subset); with
     * no buffer it is dropped, so the state does not carry it on.
     */
    private void restoreReplay(LiveModel m) throws Exception {
        TreeMap<Integer, ReplayImage> kept = new TreeMap<>();
        for (Map.Entry<Integer, ReplayImage> e : replayState.entries()) kept.put(e.getKey(), e.getValue());
        if (kept.isEmpty()) return;
        int size = options.replay().size();
        boolean compact = kept.lastKey() != kept.size() - 1 || kept.size() > size;
        if (compact) {
            replayState.clear();
            int slot = 0;
            for (ReplayImage r : kept.values()) {
                if (slot == size) break;
                replayState.put(slot++, r);
            }
            LOG.info("model {}: replay buffer restored with {} images into {} slots: kept {}", m.modelId, kept.size(), size, slot);
        }
        for (Map.Entry<Integer, ReplayImage> e : replayState.entries()) m.replay.kept(e.getKey(), e.getValue());
    }

    /** What a model's replay buffer holds (tests). */
    ReplaySummary replayOf(String modelId) {
        return live.values().stream().filter(m -> m.modelId.equals(modelId)).findFirst().orElseThrow().replay;
    }

    /** Write-behind: each model that stepped since the last checkpoint goes into keyed state once. */
    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        super.prepareSnapshotPreBarrier(checkpointId);
        Object key = getCurrentKey();
        for (LiveModel m : live.values()) {
            if (!m.dirty) {
                if (m.progressDirty) {
                    setCurrentKey(m.key);
                    progressState.update(copy(m.progress));
                    m.progressDirty = false;
                }
                continue;
            }
            long t0 = System.nanoTime();
            setCurrentKey(m.key);
            byte[] bytes = m.session.stateBytes();
            modelState.update(bytes);
            m.progress.offsetsJson = JSON.writeValueAsString(new TreeMap<>(m.offsets));
            progressState.update(copy(m.progress));
            m.dirty = false;
            m.progressDirty = false;
            if (m.snapshotDue && m.last != null) {
                // The same array the checkpoint holds (never mutated): no copy is kept for the snapshot.
                List<SnapshotWriter.Pending> l = snapshotsByCheckpoint.computeIfAbsent(checkpointId, k -> new ArrayList<>());
                for (List<SnapshotWriter.Pending> older : snapshotsByCheckpoint.values()) older.removeIf(p -> p.modelId().equals(m.modelId));
                l.add(new SnapshotWriter.Pending(m.modelId, m.session.step(), bytes, snapshotInfo(m)));
                m.pendingSnapshotStep = m.session.step();
                m.snapshotDue = false;
            }
            double ms = (System.nanoTime() - t0) / 1e6;
            LOG.info("model {}: {} MB of state written behind for checkpoint {} in {} ms", m.modelId,
                    String.format("%.1f", bytes.length / 1e6), checkpointId, String.format("%.0f", ms));
            if (metricsLog != null) metricsLog.checkpoint(m.modelId, checkpointId, m.session.step(), bytes.length, ms);
        }
        if (key != null) setCurrentKey(key);
    }

    private static TrainerProgress copy(TrainerProgress p) {
        TrainerProgress c = new TrainerProgress();
        c.imagesSeen = p.imagesSeen;
        c.offsetsJson = p.offsetsJson;
        c.lastSnapshotStep = p.lastSnapshotStep;
        c.skippedSteps = p.skippedSteps;
        c.consecutiveSkips = p.consecutiveSkips;
        c.paused = p.paused;
        c.scheduleOrigin = p.scheduleOrigin;
        c.replayOffered = p.replayOffered;
        c.replayedImages = p.replayedImages;
        c.replayOversize = p.replayOversize;
        return c;
    }

    @Override
    public void close() throws Exception {
        // What completed checkpoints hold is written before the task ends (a bounded run's last snapshots).
        if (snapshotWriter != null) snapshotWriter.close();
        if (live != null) live.values().forEach(m -> m.session.close());
        if (metricsLog != null) metricsLog.close();
        super.close();
    }

    /** A model being trained in this subtask. */
    static final class LiveModel {
        final String modelId;
        final String key;
        final TrainSession session;
        final TrainerProgress progress;
        final Map<String, Long> offsets = new HashMap<>();
        final float[][] views;
        int pending;
        boolean dirty;
        /** Restored: its teacher goes to the embedders with its next image. */
        boolean announce;
        /** Images that arrived while paused (since this subtask started). */
        long untrained;
        /** A snapshot is due with the next checkpoint. */
        boolean snapshotDue;
        /** The step of the newest snapshot handed to a checkpoint (-1: none since this subtask started). */
        long pendingSnapshotStep = -1;
        /** Only the progress changed since the last checkpoint (a snapshot was written). */
        boolean progressDirty;
        TrainSession.Stats last;
        TrainSession.Hyper hyper;
        double stepMs;
        double imagesPerSecond;
        /** fp16 only (else NaN): the loss scale after the last step, and the steps its overflows skipped (since this subtask started). */
        float lossScale = Float.NaN;
        long overflowSkips;
        long lastStepEnd;
        CollapseMonitor.Monitors monitors;
        List<CollapseMonitor.Kind> warnings = List.of();   // the collapse warnings in force
        /** What the replay buffer holds (its images are in keyed state), and its seed. */
        final ReplaySummary replay;
        final long replaySeed;
        /** Time the last step spent cropping its replayed images. */
        double replayAugmentMs;

        LiveModel(String modelId, String key, TrainSession session, TrainerProgress progress, DinoConfig c, int batch,
                  int replaySize, long replaySeed) {
            this.replay = new ReplaySummary(replaySize);
            this.replaySeed = replaySeed;
            this.modelId = modelId;
            this.key = key;
            this.session = session;
            this.progress = progress;
            this.views = new float[c.nCrops()][];
            for (int v = 0; v < views.length; v++) {
                long[] s = TrainStep.cropShape(c, batch, v);
                views[v] = new float[(int) (s[0] * s[1] * s[2] * s[3])];
            }
        }
    }
}
