package dinostream.pipeline.kafka;

import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import kafka.tools.StorageTool;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.utils.Time;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.config.Configurator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.BindException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Stream;

/**
 * A real Kafka 4.2 broker inside this JVM: one KRaft node that is broker and controller at once,
 * every listener on 127.0.0.1. For the tests and the one-command demo, where a separate Kafka
 * install or Docker is not available.
 *
 * <p>It formats its data dir with the same {@code StorageTool} that {@code kafka-storage.sh format}
 * runs (skipped when the dir is already formatted, so a given dir survives restarts), then starts
 * {@code KafkaRaftServer}, the class behind {@code kafka-server-start.sh}. Neither is public Kafka
 * API, which is why the Kafka version is pinned in the POM.
 *
 * <pre>{@code
 * try (EmbeddedKafka kafka = EmbeddedKafka.builder().build().start()) {
 *     kafka.createTopic("images", 1, Map.of());
 *     ... kafka.bootstrap() ...
 * }
 * }</pre>
 */
public final class EmbeddedKafka implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(EmbeddedKafka.class);

    public static final String HOST = "127.0.0.1";
    /** Broker and topic message limit: images are large records (see flink-spike.md §6). */
    public static final int MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
    /** The broker's cap on producer transaction timeouts; Flink's KafkaSink asks for 1 h by default. */
    public static final long TRANSACTION_MAX_TIMEOUT_MS = Duration.ofHours(1).toMillis();

    private static final String BROKER_LISTENER = "PLAINTEXT";
    private static final String CONTROLLER_LISTENER = "CONTROLLER";
    private static final int NODE_ID = 1;
    private static final int PORT_ATTEMPTS = 3;

    private final int requestedPort;
    private final int requestedControllerPort;
    private final Path givenDataDir;
    private final boolean shutdownHook;
    private final boolean quiet;
    private final Duration startTimeout;
    private final Map<String, String> overrides;

    private Path dataDir;
    private boolean deleteDataDir;
    private int port;
    private int controllerPort;
    private KafkaRaftServer server;
    private Admin admin;
    private Thread hook;
    private long startMillis = -1;
    private boolean started;
    private boolean closed;

    private EmbeddedKafka(Builder b) {
        this.requestedPort = b.port;
        this.requestedControllerPort = b.controllerPort;
        this.givenDataDir = b.dataDir;
        this.shutdownHook = b.shutdownHook;
        this.quiet = b.quiet;
        this.startTimeout = b.startTimeout;
        this.overrides = Map.copyOf(b.overrides);
    }

    public static Builder builder() {
        return new Builder();
    }

    public static final class Builder {
        private int port;
        private int controllerPort;
        private Path dataDir;
        private boolean shutdownHook;
        private boolean quiet = true;
        private Duration startTimeout = Duration.ofSeconds(60);
        private final java.util.LinkedHashMap<String, String> overrides = new java.util.LinkedHashMap<>();

        private Builder() {}

        /** The client (PLAINTEXT) port; 0 (the default) picks a free one. */
        public Builder port(int port) {
            if (port < 0 || port > 65535) throw new IllegalArgumentException("port out of range: " + port);
            this.port = port;
            return this;
        }

        /** The KRaft controller port; 0 (the default) picks a free one. */
        public Builder controllerPort(int port) {
            if (port < 0 || port > 65535) throw new IllegalArgumentException("controller port out of range: " + port);
            this.controllerPort = port;
            return this;
        }

        /** Where the logs and metadata live; kept after close. Default: a temporary dir, deleted on close. */
        public Builder dataDir(Path dir) {
            this.dataDir = dir;
            return this;
        }

        /** Also close the broker from a JVM shutdown hook (Ctrl-C, SIGTERM). */
        public Builder shutdownHook(boolean on) {
            this.shutdownHook = on;
            return this;
        }

        /** Turn Kafka's INFO logging down to WARN (the default); off leaves the log configuration alone. */
        public Builder quietLogging(boolean on) {
            this.quiet = on;
            return this;
        }

        public Builder startTimeout(Duration timeout) {
            this.startTimeout = timeout;
            return this;
        }

        /** A broker setting on top of the defaults of {@link #brokerProperties}. */
        public Builder brokerProperty(String key, String value) {
            overrides.put(key, value);
            return this;
        }

        public EmbeddedKafka build() {
            if (port != 0 && port == controllerPort) throw new IllegalArgumentException("port and controller port must differ: " + port);
            return new EmbeddedKafka(this);
        }
    }

    /**
     * Formats (if needed) and starts the broker, and returns once an admin client sees it. Throws
     * {@link IllegalStateException} when it cannot start; the broker is then shut down again.
     */
    public synchronized EmbeddedKafka start() {
        if (closed) throw new IllegalStateException("embedded Kafka was closed");
        if (started) return this;
        if (quiet) quietKafkaLogging();
        long t0 = System.nanoTime();
        try {
            if (givenDataDir != null) {
                dataDir = givenDataDir.toAbsolutePath();
                Files.createDirectories(dataDir);
            } else {
                dataDir = Files.createTempDirectory("embedded-kafka-");
                deleteDataDir = true;
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the Kafka data dir: " + e.getMessage(), e);
        }
        if (shutdownHook) {
            hook = new Thread(this::close, "embedded-kafka-shutdown");
            Runtime.getRuntime().addShutdownHook(hook);
        }
        try {
            startServer();
            waitUntilReady(t0);
        } catch (RuntimeException | Error e) {
            close();
            throw e;
        }
        started = true;
        startMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        LOG.info("Kafka broker up on {} in {} ms (data: {})", bootstrap(), startMillis, dataDir);
        return this;
    }

    private void startServer() {
        Path logDir = dataDir.resolve("logs");
        String clusterId = null;
        // A port the caller asked for is checked first, for a clear error instead of Kafka's stack traces.
        for (int p : new int[]{requestedPort, requestedControllerPort}) {
            if (p != 0 && !isFree(p)) throw new IllegalStateException("cannot start Kafka: port " + p + " on " + HOST + " is in use");
        }
        for (int attempt = 1; ; attempt++) {
            port = requestedPort != 0 ? requestedPort : freePort(-1);
            controllerPort = requestedControllerPort != 0 ? requestedControllerPort : freePort(port);
            Properties props = brokerProperties(logDir, port, controllerPort);
            props.putAll(overrides);
            Path configFile = dataDir.resolve("server.properties");
            writeProperties(props, configFile);
            if (!Files.exists(logDir.resolve("meta.properties"))) {
                if (clusterId == null) clusterId = Uuid.randomUuid().toString();
                format(clusterId, configFile);
            }
            // The constructor, not KafkaConfig.fromProps: a static call makes javac load KafkaConfig's
            // superclass, which lives in kafka-server, on the runtime classpath only.
            KafkaRaftServer s = new KafkaRaftServer(new KafkaConfig(props, false), Time.SYSTEM);
            try {
                s.startup();
                server = s;
                return;
            } catch (RuntimeException e) {
                shutdownQuietly(s);
                // Free ports are picked by binding and releasing them, so another process can take one in
                // between; then pick again. A port the caller asked for is not retried.
                if (isBindFailure(e) && !mentionsRequestedPort(e) && attempt < PORT_ATTEMPTS) {
                    LOG.warn("Kafka port taken meanwhile, retrying with other ports: {}", e.getMessage());
                    continue;
                }
                if (isBindFailure(e)) {
                    throw new IllegalStateException("cannot start Kafka: port " + port + " or " + controllerPort
                            + " on " + HOST + " is in use", e);
                }
                throw new IllegalStateException("cannot start Kafka: " + e.getMessage(), e);
            }
        }
    }

    /**
     * The broker settings: one combined KRaft node on loopback, sized for one machine (replication 1 for
     * the internal topics, a few partitions each so the first consumer group or transaction does not
     * create 50), 16 MiB messages, 1 h transactions, no topic auto-creation.
     */
    public static Properties brokerProperties(Path logDir, int port, int controllerPort) {
        Properties p = new Properties();
        p.put("process.roles", "broker,controller");
        p.put("node.id", Integer.toString(NODE_ID));
        p.put("controller.quorum.voters", NODE_ID + "@" + HOST + ":" + controllerPort);
        p.put("listeners", BROKER_LISTENER + "://" + HOST + ":" + port + "," + CONTROLLER_LISTENER + "://" + HOST + ":" + controllerPort);
        p.put("advertised.listeners", BROKER_LISTENER + "://" + HOST + ":" + port);
        p.put("listener.security.protocol.map", BROKER_LISTENER + ":PLAINTEXT," + CONTROLLER_LISTENER + ":PLAINTEXT");
        p.put("controller.listener.names", CONTROLLER_LISTENER);
        p.put("inter.broker.listener.name", BROKER_LISTENER);
        p.put("log.dirs", logDir.toString());

        p.put("auto.create.topics.enable", "false");
        p.put("num.partitions", "1");
        p.put("default.replication.factor", "1");
        p.put("min.insync.replicas", "1");
        p.put("offsets.topic.replication.factor", "1");
        p.put("offsets.topic.num.partitions", "4");
        p.put("transaction.state.log.replication.factor", "1");
        p.put("transaction.state.log.min.isr", "1");
        p.put("transaction.state.log.num.partitions", "4");
        p.put("share.coordinator.state.topic.replication.factor", "1");
        p.put("share.coordinator.state.topic.min.isr", "1");
        p.put("share.coordinator.state.topic.num.partitions", "4");
        p.put("group.initial.rebalance.delay.ms", "0");
        p.put("transaction.max.timeout.ms", Long.toString(TRANSACTION_MAX_TIMEOUT_MS));
        p.put("message.max.bytes", Integer.toString(MAX_MESSAGE_BYTES));
        p.put("replica.fetch.max.bytes", Integer.toString(MAX_MESSAGE_BYTES));

        // A laptop-sized broker: fewer threads, and the log cleaner (needed for the compacted
        // __consumer_offsets) allocates its dedupe buffer up front, 128 MiB of heap by default.
        p.put("num.network.threads", "2");
        p.put("num.io.threads", "4");
        p.put("background.threads", "4");
        p.put("log.cleaner.dedupe.buffer.size", Integer.toString(16 * 1024 * 1024));
        return p;
    }

    private static void format(String clusterId, Path configFile) {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        int rc;
        try (PrintStream ps = new PrintStream(buf, true, StandardCharsets.UTF_8)) {
            rc = StorageTool.execute(new String[]{"format", "-t", clusterId, "-c", configFile.toString(), "--ignore-formatted"}, ps);
        } catch (RuntimeException e) {
            throw new IllegalStateException("cannot format the Kafka data dir: " + e.getMessage() + " " + buf.toString(StandardCharsets.UTF_8).strip(), e);
        }
        if (rc != 0) {
            throw new IllegalStateException("cannot format the Kafka data dir (exit " + rc + "): " + buf.toString(StandardCharsets.UTF_8).strip());
        }
    }

    private void waitUntilReady(long t0) {
        long deadline = t0 + startTimeout.toNanos();
        Exception last = null;
        while (System.nanoTime() < deadline) {
            try {
                Collection<Node> nodes = admin().describeCluster().nodes().get(2, TimeUnit.SECONDS);
                if (!nodes.isEmpty()) return;
            } catch (ExecutionException | TimeoutException e) {
                last = e;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for Kafka", e);
            }
            sleep(50);
        }
        throw new IllegalStateException("Kafka on " + bootstrap() + " not ready after " + startTimeout.toSeconds() + " s"
                + (last != null ? ": " + last.getMessage() : ""), last);
    }

    /** "127.0.0.1:PORT", for {@code bootstrap.servers}. */
    public String bootstrap() {
        if (port == 0) throw new IllegalStateException("embedded Kafka is not started");
        return HOST + ":" + port;
    }

    public int port() {
        return port;
    }

    public int controllerPort() {
        return controllerPort;
    }

    public Path dataDir() {
        return dataDir;
    }

    /** How long {@link #start} took, from the call to a ready broker; -1 before. */
    public long startMillis() {
        return startMillis;
    }

    public synchronized boolean isRunning() {
        return started && !closed;
    }

    /** An admin client for this broker, owned (and closed) by this object. */
    public synchronized Admin admin() {
        if (closed) throw new IllegalStateException("embedded Kafka was closed");
        if (admin == null) {
            Properties p = new Properties();
            p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, HOST + ":" + port);
            p.put(AdminClientConfig.CLIENT_ID_CONFIG, "embedded-kafka-admin");
            p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
            admin = Admin.create(p);
        }
        return admin;
    }

    /**
     * Creates a topic with replication 1 and the given topic configs (e.g. {@code retention.ms}).
     * Returns false, changing nothing, when it already exists, so a restarted demo can call it again.
     */
    public boolean createTopic(String name, int partitions, Map<String, String> config) {
        if (!isRunning()) throw new IllegalStateException("embedded Kafka is not running");
        NewTopic t = new NewTopic(name, partitions, (short) 1).configs(config);
        try {
            admin().createTopics(List.of(t)).all().get(30, TimeUnit.SECONDS);
            return true;
        } catch (ExecutionException e) {
            if (e.getCause() instanceof TopicExistsException) return false;
            throw new IllegalStateException("cannot create topic " + name + ": " + e.getCause().getMessage(), e.getCause());
        } catch (TimeoutException e) {
            throw new IllegalStateException("cannot create topic " + name + ": timed out", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while creating topic " + name, e);
        }
    }

    public boolean createTopic(String name, int partitions) {
        return createTopic(name, partitions, Map.of());
    }

    /**
     * Shuts the broker down cleanly (so the next start on the same data dir needs no log recovery)
     * and deletes the data dir if it was a temporary one. Safe to call twice and from any thread.
     */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        long t0 = System.nanoTime();
        if (admin != null) {
            admin.close(Duration.ofSeconds(5));
            admin = null;
        }
        if (server != null) {
            shutdownQuietly(server);
            server = null;
        }
        if (deleteDataDir && dataDir != null) deleteRecursively(dataDir);
        if (hook != null && Thread.currentThread() != hook) {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException alreadyShuttingDown) {
                // The hook runs anyway and finds the broker closed.
            }
        }
        if (started) LOG.info("Kafka broker on {} stopped in {} ms", HOST + ":" + port, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
    }

    private static void shutdownQuietly(KafkaRaftServer s) {
        try {
            s.shutdown();
            s.awaitShutdown();
        } catch (RuntimeException e) {
            LOG.warn("Kafka shutdown: {}", e.toString());
        }
    }

    /**
     * Lowers the Kafka broker and client loggers to WARN when they are more verbose: at INFO the
     * broker logs hundreds of lines at start-up. A stricter level set elsewhere (tests turn logging
     * off) is left as is.
     */
    static void quietKafkaLogging() {
        try {
            for (String name : List.of("kafka", "org.apache.kafka", "state.change.logger")) {
                Level current = LogManager.getLogger(name).getLevel();
                if (current == null || current.isLessSpecificThan(Level.INFO)) Configurator.setLevel(name, Level.WARN);
            }
        } catch (LinkageError | RuntimeException notLog4jCore) {
            // Another logging backend (e.g. on a Flink cluster) owns the configuration; leave it.
        }
    }

    /** A port that is free on 127.0.0.1 right now, other than {@code not}. */
    private static int freePort(int not) {
        for (int i = 0; i < 10; i++) {
            try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName(HOST))) {
                int p = s.getLocalPort();
                if (p != not) return p;
            } catch (IOException e) {
                throw new UncheckedIOException("cannot find a free port on " + HOST + ": " + e.getMessage(), e);
            }
        }
        throw new IllegalStateException("cannot find a free port on " + HOST);
    }

    private static boolean isFree(int port) {
        try (ServerSocket s = new ServerSocket(port, 1, InetAddress.getByName(HOST))) {
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private boolean mentionsRequestedPort(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            String m = t.getMessage();
            if (m == null) continue;
            if (requestedPort != 0 && m.contains(":" + requestedPort)) return true;
            if (requestedControllerPort != 0 && m.contains(":" + requestedControllerPort)) return true;
        }
        return false;
    }

    private static boolean isBindFailure(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof BindException) return true;
            String m = t.getMessage();
            if (m != null && (m.contains("Address already in use") || m.contains("failed to bind"))) return true;
        }
        return false;
    }

    private static void writeProperties(Properties p, Path file) {
        try (OutputStream out = Files.newOutputStream(file)) {
            p.store(out, "written by dinostream EmbeddedKafka; the broker runs in-process with these settings");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    private static void deleteRecursively(Path dir) {
        try (Stream<Path> s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (IOException | UncheckedIOException e) {
            LOG.warn("cannot delete the Kafka data dir {}: {}", dir, e.getMessage());
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for Kafka", e);
        }
    }

    /** Runs a broker until Ctrl-C: {@code EmbeddedKafka [PORT [DATA_DIR]]}, for poking at it with Kafka's CLI tools. */
    public static void main(String[] args) throws InterruptedException {
        Builder b = builder().shutdownHook(true);
        if (args.length > 0) b.port(Integer.parseInt(args[0]));
        if (args.length > 1) b.dataDir(Path.of(args[1]));
        EmbeddedKafka k = b.build().start();
        System.err.println("Kafka broker on " + k.bootstrap() + " started in " + k.startMillis() + " ms; Ctrl-C stops it");
        Thread.currentThread().join();
    }
}
