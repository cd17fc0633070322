package dinostream.pipeline.decode;

import dinostream.pipeline.records.DecodedImage;
import dinostream.pipeline.records.KafkaImage;
import dinostream.schemas.DeadLetter;
import dinostream.schemas.ImageRecord;
import dinostream.schemas.codec.AvroCodec;
import dinostream.schemas.codec.CodecException;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.HashMap;
import java.util.Locale;
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
 * <p>With a list of models ({@code --models}), a record naming another model is a dead letter too
 * (stage {@code route}, reason {@code UNKNOWN_MODEL}).
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
    static final String UNKNOWN_MODEL = "UNKNOWN_MODEL";

    private final String defaultModelId;
    private final int channels;
    private final Limits limits;
    private final java.util.Set<String> models;

    private transient AvroCodec<ImageRecord> codec;
    private transient ImageDecoder decoder;
    private transient Counter decoded;
    private transient Map<String, Counter> deadLetters;

    /**
     * @param defaultModelId the model for records without a modelId ({@code --model-id})
     * @param channels       1 or 3: what the model takes; images are converted to it
     * @param limits         the largest image accepted
     * @param models         the models the job trains; empty: any
     */
    public DecodeFunction(String defaultModelId, int channels, Limits limits, java.util.List<String> models) {
        if (defaultModelId == null || defaultModelId.isBlank()) throw new IllegalArgumentException("defaultModelId is empty");
        if (channels != 1 && channels != 3) throw new IllegalArgumentException("channels must be 1 or 3, not " + channels);
        this.defaultModelId = defaultModelId;
        this.channels = channels;
        this.limits = limits;
        this.models = new java.util.HashSet<>(models);
    }

    @Override
    public void open(OpenContext openContext) throws Exception {
        super.open(openContext);
        codec = AvroCodec.imageRecords();
        decoder = new ImageDecoder();
        MetricGroup metrics = getRuntimeContext().getMetricGroup();
        decoded = metrics.counter("decodedImages");
        deadLetters = new HashMap<>();
        java.util.List<String> codes = new java.util.ArrayList<>(java.util.List.of(UNKNOWN_SCHEMA, BAD_ENCODING, UNKNOWN_MODEL));
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
                .setKey(in.key == null ? null : ByteBuffer.wrap(in.key))
                .setValue(in.value == null ? null : ByteBuffer.wrap(in.value))
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
