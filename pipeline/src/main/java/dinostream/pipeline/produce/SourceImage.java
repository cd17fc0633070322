package dinostream.pipeline.produce;

import dinostream.schemas.ImageEncoding;
import dinostream.schemas.ImageRecord;

import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.Map;
import java.util.Objects;

/**
 * One image as a source hands it out, before it becomes an {@link ImageRecord}.
 *
 * @param id         stable across runs, e.g. {@code fmnist-train-000123}; the Kafka key
 * @param width      pixels; null for JPEG/PNG (the decoder reads the header)
 * @param height     pixels; null for JPEG/PNG
 * @param channels   1 or 3 for RAW_U8; null for JPEG/PNG
 * @param bytes      the encoded file, or HWC uint8 pixels for RAW_U8
 * @param label      class index, or null when unknown
 * @param eventTime  when the image was taken (a file's mtime), or null for "when it is sent"
 * @param attributes free-form provenance (split, path, class name)
 */
public record SourceImage(String id, ImageEncoding encoding, Integer width, Integer height, Integer channels,
                          byte[] bytes, Integer label, Instant eventTime, Map<String, String> attributes) {
    public SourceImage {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(encoding, "encoding");
        Objects.requireNonNull(bytes, "bytes");
        attributes = attributes == null ? Map.of() : Map.copyOf(attributes);
    }

    /** The Avro record; {@code now} stands in for a missing event time, {@code modelId} may be null. */
    public ImageRecord toRecord(String source, Instant now, String modelId) {
        return ImageRecord.newBuilder()
                .setId(id)
                .setSource(source)
                .setEventTime(eventTime != null ? eventTime : now)
                .setEncoding(encoding)
                .setWidth(width)
                .setHeight(height)
                .setChannels(channels)
                .setBytes(ByteBuffer.wrap(bytes))
                .setLabel(label)
                .setAttributes(new java.util.HashMap<>(attributes))
                .setModelId(modelId)
                .build();
    }
}
