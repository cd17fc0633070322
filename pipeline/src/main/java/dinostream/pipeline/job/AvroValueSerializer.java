package dinostream.pipeline.job;

import dinostream.schemas.codec.AvroCodec;
import org.apache.avro.specific.SpecificRecord;
import org.apache.flink.api.common.serialization.SerializationSchema;

/** Kafka values in Avro single-object encoding (the codec itself is not serializable: made per task). */
public class AvroValueSerializer<T extends SpecificRecord> implements SerializationSchema<T> {
    private static final long serialVersionUID = 1L;
    private final Class<T> type;
    private transient AvroCodec<T> codec;

    public AvroValueSerializer(Class<T> type) {
        this.type = type;
    }

    @Override
    public byte[] serialize(T element) {
        if (codec == null) codec = AvroCodec.forClass(type);
        return codec.encode(element);
    }
}
