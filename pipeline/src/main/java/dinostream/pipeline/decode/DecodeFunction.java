package dinostream.pipeline.decode;

import dinostream.pipeline.records.DecodedImage;
import dinostream.pipeline.records.KafkaImage;
import dinostream.pipeline.snapshot.Manifest;
import dinostream.schemas.DeadLetter;
import dinostream.schemas.ImageRecord;
import dinostream.schemas.codec.AvroCodec;
import dinostream.schemas.codec.CodecException;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

/**
 * Kafka image records to validated 8-bit pixels. Each record goes through two stages: {@code avro}
 * ({@link AvroCodec#imageRecords()}: single-object encoding, writer schema by fingerprint) and then
 * {@link ImageDecoder} ({@code validate}: limits and consistency checked from the header;
 * {@code decode}: the pixels). A record that fails either becomes a {@link DeadLetter} on
 * {@link #DEAD_LETTERS} carrying its original key and value bytes, its Kafka coordinates, the
 * stage, and the reason as {@code CODE: message}; the job goes on.
 *
 * <p>A record whose model id could not name a snapshot folder ({@link Manifest#MODEL_ID}) is a dead
 * letter (stage {@code route}, reason {@code INVALID_MODEL_ID}); with a list of models
 * ({@code --models}), so is one naming another model ({@code UNKNOWN_MODEL}).
 *
 * <p>Metrics: counter {@code decodedImages}, and one counter {@code dead_letters} per reason code
 * under the label {@code reason} (group {@code reason}: in Prometheus
 * {@code ..._reason_dead_letters{reason="TOO_MANY_PIXELS"}}), all registered at open so that they
 * show as 0 until something fails.
 */
public class DecodeFunction extends ProcessFunction<KafkaImage, DecodedImage> {

    private static final long serialVersionUID = 1L;

    /** Side output of the records that could not be used. */
    public static final OutputTag<DeadLetter> DEAD_LETTERS = new OutputTag<>("dead-letters") {};

    static final String STAGE_AVRO = "avro";
    /** The codes {@link CodecException#code()} gives. */
    static final String UNKNOWN_SCHEMA = "UNKNOWN_SCHEMA";
    static final String BAD_ENCODING = "BAD_ENCODING";
    static final String STAGE_ROUTE = "route";
    /**
     * A dead letter keeps at most this much of the original value by default: with the key (cut to
     * {@link #MAX_DEAD_LETTER_KEY_BYTES}) and the other fields it stays far under the 1 MiB
     * max.request.size of a default Kafka producer.
     */
    public static final int DEFAULT_DEAD_LETTER_VALUE_BYTES = 512 * 1024;
    static final int MAX_DEAD_LETTER_KEY_BYTES = 4096;
    static final String UNKNOWN_MODEL = "UNKNOWN_MODEL";
    static final String INVALID_MODEL_ID = "INVALID_MODEL_ID";

    private final String defaultModelId;
    private final int channels;
    private final Limits limits;
    private final java.util.Set<String> models;
    private final int deadLetterValueBytes;

    private transient AvroCodec<ImageRecord> codec;
    private transient ImageDecoder decoder;
    private transient Counter decoded;
    private transient Map<String, Counter> deadLetters;

    /**
     * @param defaultModelId the model for records without a modelId ({@code --model-id})
     * @param channels       1 or 3: what the model takes; images are converted to it
     * @param limits         the largest image accepted
     * @param models         the models the job trains; empty: any
     * @param deadLetterValueBytes the most bytes of an original value a dead letter keeps
     */
    public DecodeFunction(String defaultModelId, int channels, Limits limits, java.util.List<String> models, int deadLetterValueBytes) {
        if (defaultModelId == null || defaultModelId.isBlank()) throw new IllegalArgumentException("defaultModelId is empty");
        if (channels != 1 && channels != 3) throw new IllegalArgumentException("channels must be 1 or 3, not " + channels);
        this.defaultModelId = defaultModelId;
        this.channels = channels;
        this.limits = limits;
        this.models = new java.util.HashSet<>(models);
        if (deadLetterValueBytes < 0) throw new IllegalArgumentException("deadLetterValueBytes must be >= 0");
        this.deadLetterValueBytes = deadLetterValueBytes;
    }

    public DecodeFunction(String defaultModelId, int channels, Limits limits, java.util.List<String> models) {
        this(defaultModelId, channels, limits, models, DEFAULT_DEAD_LETTER_VALUE_BYTES);
    }

    @Override
    public void open(OpenContext openContext) throws Exception {
        super.open(openContext);
        codec = AvroCodec.imageRecords();
        decoder = new ImageDecoder();
        MetricGroup metrics = getRuntimeContext().getMetricGroup();
        decoded = metrics.counter("decodedImages");
        deadLetters = new HashMap<>();
        java.util.List<String> codes = new java.util.ArrayList<>(java.util.List.of(UNKNOWN_SCHEMA, BAD_ENCODING, INVALID_MODEL_ID, UNKNOWN_MODEL));
        for (DecodeException.Reason r : DecodeException.Reason.values()) codes.add(r.name());
        for (String code : codes) deadLetters.put(code, metrics.addGroup("reason", code).counter("dead_letters"));
    }

    @Override
    public void processElement(KafkaImage in, Context ctx, Collector<DecodedImage> out) {
        ImageRecord r;
        try {
            r = codec.decode(in.value);
        } catch (CodecException e) {
            // UnknownSchemaException or BadEncodingException (the class is sealed to these two).
            reject(in, ctx, STAGE_AVRO, e.code(), e.getMessage());
            return;
        }
        DecodedPixels px;
        try {
            px = decoder.decode(r, channels, limits);
        } catch (DecodeException e) {
            reject(in, ctx, e.reason().stage(), e.reason().name(), e.getMessage());
            return;
        }
        DecodedImage d = new DecodedImage();
        d.id = r.getId();
        d.source = r.getSource();
        d.eventTime = r.getEventTime().toEpochMilli();
        String modelId = r.getModelId();
        d.modelId = modelId == null || modelId.isBlank() ? defaultModelId : modelId;
        // The rule snapshot folders are named by: an id that could not name one never reaches a trainer.
        if (!Manifest.MODEL_ID.matcher(d.modelId).matches()) {
            reject(in, ctx, STAGE_ROUTE, INVALID_MODEL_ID, "model id " + printable(d.modelId) + " does not match " + Manifest.MODEL_ID.pattern());
            return;
        }
        if (!models.isEmpty() && !models.contains(d.modelId)) {
            reject(in, ctx, STAGE_ROUTE, UNKNOWN_MODEL, "model '" + d.modelId + "' is not one this job trains (--models " + String.join(",", new java.util.TreeSet<>(models)) + ")");
            return;
        }
        d.label = r.getLabel();
        d.width = px.width();
        d.height = px.height();
        d.channels = px.channels();
        d.pixels = px.pixels();
        d.topic = in.topic;
        d.partition = in.partition;
        d.offset = in.offset;
        decoded.inc();
        out.collect(d);
    }

    private void reject(KafkaImage in, Context ctx, String stage, String code, String message) {
        DeadLetter dl = DeadLetter.newBuilder()
                .setKey(in.key == null ? null : ByteBuffer.wrap(in.key, 0, Math.min(in.key.length, MAX_DEAD_LETTER_KEY_BYTES)).slice())
                // Cut to the limit: a dead letter must never fail its own send (the producer's
                // max.request.size); size, hash and coordinates find the whole record in the log.
                .setValue(in.value == null ? null : ByteBuffer.wrap(in.value, 0, Math.min(in.value.length, deadLetterValueBytes)).slice())
                .setOriginalSize(in.value == null ? null : (long) in.value.length)
                .setOriginalSha256(in.value == null ? null : sha256(in.value))
                .setTopic(in.topic == null ? "" : in.topic)
                .setPartition(in.partition)
                .setOffset(in.offset)
                .setStage(stage)
                .setReason(code + ": " + oneLine(message))
                // Processing time: wall-clock in a job, controllable in tests.
                .setTime(Instant.ofEpochMilli(ctx.timerService().currentProcessingTime()))
                .build();
        deadLetters.get(code).inc();
        ctx.output(DEAD_LETTERS, dl);
    }

    /** A producer's string, quoted, control characters escaped and cut to 80 characters (with its length). */
    static String printable(String s) {
        StringBuilder b = new StringBuilder("'");
        s.codePoints().limit(80).forEach(c -> {
            if (Character.isISOControl(c)) b.append(String.format("\\u%04x", c));
            else b.appendCodePoint(c);
        });
        b.append('\'');
        if (s.length() > 80) b.append("... (").append(s.length()).append(" characters)");
        return b.toString();
    }

    private static String sha256(byte[] b) {
        try {
            return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(b));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JVM has SHA-256", e);
        }
    }

    private static String oneLine(String s) {
        return s == null ? "" : s.replaceAll("\\s+", " ").trim();
    }

    /** Dead letters counted so far for a reason code (e.g. {@code TOO_MANY_PIXELS}); for tests. */
    long deadLetterCount(String code) {
        return deadLetters.get(code).getCount();
    }

    /** Images decoded so far; for tests. */
    long decodedCount() {
        return decoded.getCount();
    }
}
