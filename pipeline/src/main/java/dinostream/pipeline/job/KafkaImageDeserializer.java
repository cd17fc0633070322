package dinostream.pipeline.job;

import dinostream.pipeline.records.KafkaImage;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;

/** Keeps each Kafka record whole (bytes and coordinates): decoding happens in an operator that can dead-letter. */
public class KafkaImageDeserializer implements KafkaRecordDeserializationSchema<KafkaImage> {
    private static final long serialVersionUID = 1L;

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> r, Collector<KafkaImage> out) {
        out.collect(new KafkaImage(r.key(), r.value(), r.topic(), r.partition(), r.offset(), r.timestamp()));
    }

    @Override
    public TypeInformation<KafkaImage> getProducedType() {
        return TypeInformation.of(KafkaImage.class);
    }
}
