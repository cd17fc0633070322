package dinostream.pipeline.produce;

import dinostream.pipeline.kafka.EmbeddedKafka;
import dinostream.schemas.ImageRecord;
import dinostream.schemas.codec.AvroCodec;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.UnknownHostException;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * Sends a source's images to a Kafka topic as Avro single-object-encoded {@link ImageRecord}s keyed
 * by image id, optionally paced to a rate: what {@code dinostream produce} runs, and what the demo
 * runs on a thread (and stops with {@link #stop}).
 */
public final class ImageProducer {
    /** What was sent so far; {@code sent} and {@code bytes} count records the broker acknowledged. */
    public record Stats(long sent, long skipped, long bytes, long nanos) {
        public double seconds() {
            return nanos / 1e9;
        }

        public double imagesPerSecond() {
            return nanos > 0 ? sent / seconds() : 0;
        }
    }

    private final String bootstrap;
    private final String topic;
    private final Map<String, String> kafkaProperties;
    private final String compression;
    private final double rate;
    private final String modelId;
    private final String sourceName;
    private final Duration progressEvery;
    private final Consumer<Stats> progress;
    private final Consumer<String> warnings;
    private final AvroCodec<ImageRecord> codec = AvroCodec.imageRecords();
    private volatile boolean stopped;

    private ImageProducer(Builder b) {
        this.bootstrap = Objects.requireNonNull(b.bootstrap, "bootstrap");
        this.topic = Objects.requireNonNull(b.topic, "topic");
        this.kafkaProperties = Map.copyOf(b.kafkaProperties);
        this.compression = b.compression;
        this.rate = b.rate;
        this.modelId = b.modelId;
        this.sourceName = b.sourceName;
        this.progressEvery = b.progressEvery;
        this.progress = b.progress;
        this.warnings = b.warnings;
    }

    public static Builder builder(String bootstrap, String topic) {
        return new Builder(bootstrap, topic);
    }

    public static final class Builder {
        private final String bootstrap;
        private final String topic;
        private Map<String, String> kafkaProperties = Map.of();
        private String compression = "lz4";
        private double rate;
        private String modelId;
        private String sourceName;
        private Duration progressEvery = Duration.ofSeconds(5);
        private Consumer<Stats> progress = s -> {};
        private Consumer<String> warnings = s -> {};

        private Builder(String bootstrap, String topic) {
            this.bootstrap = bootstrap;
            this.topic = topic;
        }

        /** Client settings on top of the defaults (security, sizes); they win over the defaults. */
        public Builder kafkaProperties(Map<String, String> props) {
            this.kafkaProperties = props;
            return this;
        }

        /** {@code compression.type}: lz4 (default) or none (for JPEG/PNG, already compressed). */
        public Builder compression(String c) {
            this.compression = c;
            return this;
        }

        /** Images per second; 0 (default) sends as fast as Kafka takes them. */
        public Builder rate(double imagesPerSecond) {
            if (!(imagesPerSecond >= 0) || Double.isInfinite(imagesPerSecond)) throw new IllegalArgumentException("rate must be positive: " + imagesPerSecond);
            this.rate = imagesPerSecond;
            return this;
        }

        /** The records' modelId; null leaves it unset (the job's --model-id applies). */
        public Builder modelId(String id) {
            this.modelId = id;
            return this;
        }

        /** The records' source field; default: the source's own name. */
        public Builder sourceName(String name) {
            this.sourceName = name;
            return this;
        }

        public Builder progress(Duration every, Consumer<Stats> listener) {
            this.progressEvery = every;
            this.progress = listener;
            return this;
        }

        /** Lines about skipped images. */
        public Builder warnings(Consumer<String> listener) {
            this.warnings = listener;
            return this;
        }

        public ImageProducer build() {
            return new ImageProducer(this);
        }
    }

    /**
     * The producer configuration: acks=all with idempotence (no duplicates from retries), requests up
     * to the broker's 16 MiB message limit, batching for small images; then the caller's properties.
     */
    public Map<String, Object> producerConfig() {
        Map<String, Object> c = new HashMap<>();
        c.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        c.put(ProducerConfig.CLIENT_ID_CONFIG, "dinostream-produce");
        c.put(ProducerConfig.ACKS_CONFIG, "all");
        c.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        c.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
        c.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Integer.toString(EmbeddedKafka.MAX_MESSAGE_BYTES));
        c.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        c.put(ProducerConfig.BATCH_SIZE_CONFIG, Integer.toString(256 * 1024));
        c.putAll(kafkaProperties);
        c.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        c.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        return c;
    }

    private final AtomicLong acked = new AtomicLong(), bytes = new AtomicLong();
    private volatile long startNanos = System.nanoTime();

    /** The counts so far of a {@link #run} in progress (any thread); skipped files are counted at the end. */
    public Stats stats() {
        return new Stats(acked.get(), 0, bytes.get(), System.nanoTime() - startNanos);
    }

    /** Ends {@link #run} after the image being sent; what was sent is still flushed. Any thread. */
    public void stop() {
        stopped = true;
    }

    /** Whether {@link #stop} was called. */
    public boolean stopped() {
        return stopped;
    }

    /**
     * Sends {@code source}'s images in the given index order, flushes, and returns the counts.
     * Fails with {@link IllegalStateException} when the topic is missing or a send fails.
     */
    public Stats run(ImageSource source, int[] order) throws IOException, InterruptedException {
        checkTopic();
        String name = sourceName != null ? sourceName : source.name();
        AtomicLong acked = this.acked, bytes = this.bytes;
        AtomicReference<Exception> failure = new AtomicReference<>();
        long skipped = 0;
        long start = System.nanoTime(), nextProgress = start + progressEvery.toNanos();
        startNanos = start;
        KafkaProducer<String, byte[]> producer = newProducer();
        boolean clean = false;
        try {
            for (int k = 0; k < order.length && !stopped && failure.get() == null; k++) {
                if (rate > 0) {
                    // Pace against the start time, not the previous send, so slow sends do not add up.
                    long wait = start + (long) (k * 1e9 / rate) - System.nanoTime();
                    if (wait > 0) TimeUnit.NANOSECONDS.sleep(wait);
                }
                SourceImage im = source.read(order[k]);
                if (im == null) {
                    skipped++;
                    warnings.accept("skipping image " + order[k] + " of " + name + ": not a JPEG or PNG file");
                    continue;
                }
                byte[] value = codec.encode(im.toRecord(name, Instant.now(), modelId));
                String id = im.id();
                producer.send(new ProducerRecord<>(topic, id, value), (md, e) -> {
                    if (e != null) {
                        failure.compareAndSet(null, new IllegalStateException("sending " + id + " to topic " + topic + " failed: " + e.getMessage(), e));
                    } else {
                        acked.incrementAndGet();
                        bytes.addAndGet(value.length);
                    }
                });
                long now = System.nanoTime();
                if (now >= nextProgress) {
                    progress.accept(new Stats(acked.get(), skipped, bytes.get(), now - start));
                    nextProgress = now + progressEvery.toNanos();
                }
            }
            if (failure.get() == null) producer.flush();
            clean = true;
        } catch (KafkaException e) {
            throw new IllegalStateException("sending to topic " + topic + " failed: " + e.getMessage(), e);
        } finally {
            // After a failure there is no point waiting for the rest to be delivered.
            producer.close(clean && failure.get() == null ? Duration.ofSeconds(30) : Duration.ZERO);
        }
        Exception e = failure.get();
        if (e != null) throw (IllegalStateException) e;
        return new Stats(acked.get(), skipped, bytes.get(), System.nanoTime() - start);
    }

    private KafkaProducer<String, byte[]> newProducer() {
        try {
            return new KafkaProducer<>(producerConfig());
        } catch (KafkaException e) {
            throw new IllegalStateException("cannot create the Kafka producer: " + rootMessage(e), e);
        }
    }

    /**
     * Fails fast, with a clear line, when Kafka is unreachable or the topic does not exist: the
     * producer alone would wait 60 s (max.block.ms) and then say only that the metadata is missing.
     */
    private void checkTopic() throws InterruptedException {
        probe();
        Map<String, Object> c = new HashMap<>();
        for (Map.Entry<String, Object> e : producerConfig().entrySet()) {
            if (AdminClientConfig.configNames().contains(e.getKey())) c.put(e.getKey(), e.getValue());
        }
        c.put(AdminClientConfig.CLIENT_ID_CONFIG, "dinostream-produce-check");
        c.putIfAbsent(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "15000");
        c.putIfAbsent(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        Admin admin;
        try {
            admin = Admin.create(c);
        } catch (KafkaException e) {
            throw new IllegalStateException("cannot connect to Kafka at " + bootstrap + ": " + rootMessage(e), e);
        }
        try (admin) {
            admin.describeTopics(List.of(topic)).allTopicNames().get(20, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof UnknownTopicOrPartitionException) {
                throw new IllegalStateException("topic " + topic + " does not exist on " + bootstrap + " (create it first)");
            }
            throw new IllegalStateException("cannot reach Kafka at " + bootstrap + ": " + e.getCause().getMessage(), e.getCause());
        } catch (TimeoutException e) {
            throw new IllegalStateException("cannot reach Kafka at " + bootstrap + ": no answer in 20 s", e);
        }
    }

    /**
     * A plain TCP connect to the bootstrap servers first: when none answers (the broker is not
     * running, a typo in the host), this says so at once, where the Kafka client would log a warning
     * every second until its timeout.
     */
    private void probe() {
        String last = null;
        for (String hp : bootstrap.split(",")) {
            String s = hp.strip();
            int colon = s.lastIndexOf(':');
            if (colon <= 0) continue;   // let the Kafka client report the malformed entry
            String host = s.substring(0, colon).replaceAll("^\\[|\\]$", "");
            try (Socket socket = new Socket()) {
                socket.connect(new InetSocketAddress(host, Integer.parseInt(s.substring(colon + 1))), 5000);
                return;
            } catch (UnknownHostException e) {
                last = "unknown host " + host;
            } catch (IOException | IllegalArgumentException e) {
                last = e.getMessage() != null ? e.getMessage() : e.toString();
            }
        }
        if (last != null) throw new IllegalStateException("cannot reach Kafka at " + bootstrap + ": " + last);
    }

    private static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) t = t.getCause();
        return t.getMessage() != null ? t.getMessage() : t.toString();
    }
}
