package dinostream.pipeline.records;

/** One Kafka record of the images topic, undecoded: kept whole so a dead letter can carry it. */
public class KafkaImage {
    public byte[] key;
    public byte[] value;
    public String topic;
    public int partition;
    public long offset;
    /** The Kafka record timestamp (ms). */
    public long timestamp;

    public KafkaImage() {}

    public KafkaImage(byte[] key, byte[] value, String topic, int partition, long offset, long timestamp) {
        this.key = key;
        this.value = value;
        this.topic = topic;
        this.partition = partition;
        this.offset = offset;
        this.timestamp = timestamp;
    }
}
