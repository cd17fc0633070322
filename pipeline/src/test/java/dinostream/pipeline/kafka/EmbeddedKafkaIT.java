package dinostream.pipeline.kafka;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** One broker for the class: started once, closed (and checked) at the end. */
// Each test takes about a second against the in-process broker.
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class EmbeddedKafkaIT {
    static EmbeddedKafka kafka;

    @BeforeAll
    static void start() {
        kafka = EmbeddedKafka.builder().build().start();
        System.err.println("EmbeddedKafkaIT: broker started in " + kafka.startMillis() + " ms on " + kafka.bootstrap());
    }

    @AfterAll
    static void closeIsClean() throws Exception {
        Path dir = kafka.dataDir();
        int port = kafka.port(), controllerPort = kafka.controllerPort();
        long t0 = System.nanoTime();
        kafka.close();
        System.err.println("EmbeddedKafkaIT: broker closed in " + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) + " ms");
        assertFalse(kafka.isRunning());
        assertFalse(Files.exists(dir), "the temporary data dir is deleted");
        assertFalse(accepts(InetAddress.getByName("127.0.0.1"), port), "the broker port is closed");
        assertFalse(accepts(InetAddress.getByName("127.0.0.1"), controllerPort), "the controller port is closed");
        kafka.close();   // idempotent
        assertThrows(IllegalStateException.class, () -> kafka.createTopic("after-close", 1));
    }

    @Test
    void listensOnLoopbackOnlyWithEphemeralPorts() throws Exception {
        assertTrue(kafka.bootstrap().startsWith("127.0.0.1:"), kafka.bootstrap());
        assertTrue(kafka.port() > 0 && kafka.controllerPort() > 0 && kafka.port() != kafka.controllerPort());
        Collection<Node> nodes = kafka.admin().describeCluster().nodes().get(10, TimeUnit.SECONDS);
        assertEquals(1, nodes.size());
        assertEquals("127.0.0.1", nodes.iterator().next().host());
        assertTrue(accepts(InetAddress.getByName("127.0.0.1"), kafka.port()));
        // Bound to 127.0.0.1, not the wildcard: the same port on the machine's other addresses refuses.
        for (InetAddress other : otherLocalAddresses()) {
            assertFalse(accepts(other, kafka.port()), "reachable on " + other);
            assertFalse(accepts(other, kafka.controllerPort()), "controller reachable on " + other);
        }
        Properties server = new Properties();
        try (var in = Files.newInputStream(kafka.dataDir().resolve("server.properties"))) {
            server.load(in);
        }
        assertEquals("PLAINTEXT://127.0.0.1:" + kafka.port() + ",CONTROLLER://127.0.0.1:" + kafka.controllerPort(), server.getProperty("listeners"));
        assertEquals("false", server.getProperty("auto.create.topics.enable"));
        assertEquals("3600000", server.getProperty("transaction.max.timeout.ms"));
        assertEquals("16777216", server.getProperty("message.max.bytes"));
    }

    @Test
    void aLargeRecordRoundTrips() throws Exception {
        assertTrue(kafka.createTopic("round-trip", 2, Map.of("retention.ms", "3600000")));
        assertFalse(kafka.createTopic("round-trip", 2, Map.of()), "a second create is a no-op");
        // 3 MiB: over every 1 MiB client and broker default, under the 16 MiB limits set here.
        byte[] value = new byte[3 * 1024 * 1024];
        new SplittableRandom(1).nextBytes(value);
        try (KafkaProducer<String, byte[]> p = new KafkaProducer<>(producerProps(null))) {
            p.send(new ProducerRecord<>("round-trip", 0, "big", value)).get(30, TimeUnit.SECONDS);
        }
        List<ConsumerRecord<String, byte[]>> got = consume("round-trip", 1, Duration.ofSeconds(30));
        assertEquals(1, got.size());
        assertEquals("big", got.get(0).key());
        assertArrayEquals(value, got.get(0).value());
    }

    @Test
    void committedTransactionsAreVisibleAndAbortedOnesAreNot() throws Exception {
        kafka.createTopic("tx", 1, Map.of());
        try (KafkaProducer<String, byte[]> p = new KafkaProducer<>(producerProps("embedded-kafka-test-tx"))) {
            p.initTransactions();
            p.beginTransaction();
            p.send(new ProducerRecord<>("tx", "k", bytes("committed")));
            p.commitTransaction();
            p.beginTransaction();
            p.send(new ProducerRecord<>("tx", "k", bytes("aborted")));
            p.flush();
            p.abortTransaction();
            // Committed after the abort: once it is read, the aborted record had its chance to show.
            p.beginTransaction();
            p.send(new ProducerRecord<>("tx", "k", bytes("after")));
            p.commitTransaction();
        }
        List<String> values = new ArrayList<>();
        for (ConsumerRecord<String, byte[]> r : consume("tx", 2, Duration.ofSeconds(30))) {
            values.add(new String(r.value(), StandardCharsets.UTF_8));
        }
        assertEquals(List.of("committed", "after"), values);
    }

    static Properties producerProps(String transactionalId) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrap());
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Integer.toString(EmbeddedKafka.MAX_MESSAGE_BYTES));
        if (transactionalId != null) {
            p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
            // Above the broker's default cap of 15 min, as Flink's KafkaSink asks for: accepted here.
            p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, Long.toString(Duration.ofMinutes(59).toMillis()));
        }
        return p;
    }

    /** All partitions of a topic from the start, read_committed, until n records or the timeout. */
    static List<ConsumerRecord<String, byte[]>> consume(String topic, int n, Duration timeout) {
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrap());
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        c.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, Integer.toString(EmbeddedKafka.MAX_MESSAGE_BYTES));
        List<ConsumerRecord<String, byte[]>> out = new ArrayList<>();
        try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(c)) {
            // assign, not subscribe: no consumer group, so no rebalance to wait for.
            List<TopicPartition> parts = consumer.partitionsFor(topic, Duration.ofSeconds(10)).stream()
                    .map(pi -> new TopicPartition(topic, pi.partition())).toList();
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            long deadline = System.nanoTime() + timeout.toNanos();
            while (out.size() < n && System.nanoTime() < deadline) {
                consumer.poll(Duration.ofMillis(200)).forEach(out::add);
            }
            // A short extra poll: anything beyond n (e.g. an aborted record) would show up here.
            consumer.poll(Duration.ofMillis(300)).forEach(out::add);
        }
        return out;
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static boolean accepts(InetAddress addr, int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(addr, port), 500);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    static List<InetAddress> otherLocalAddresses() throws Exception {
        List<InetAddress> out = new ArrayList<>();
        for (NetworkInterface ni : Collections.list(NetworkInterface.getNetworkInterfaces())) {
            if (!ni.isUp() || ni.isLoopback()) continue;
            for (InetAddress a : Collections.list(ni.getInetAddresses())) {
                if (a instanceof Inet4Address && !a.isLoopbackAddress()) out.add(a);
            }
        }
        return out;
    }
}
