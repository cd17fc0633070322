package dinostream.it.cluster;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ConfigurationUtils;
import org.apache.flink.configuration.GlobalConfiguration;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * A real Flink standalone session cluster on this machine: one JobManager JVM
 * ({@code StandaloneSessionClusterEntrypoint}) and N TaskManager JVMs ({@code TaskManagerRunner}),
 * each a separate {@code java} process started the way Flink's {@code bin/jobmanager.sh} and
 * {@code bin/taskmanager.sh} start them, from a {@code lib/} and {@code plugins/} folder laid out
 * like Flink's binary distribution (here assembled from Flink's Maven artifacts by the
 * integration-tests POM).
 *
 * <p>As the scripts do, the JVM memory options ({@code -Xmx}, {@code -XX:MaxDirectMemorySize},
 * metaspace) and the derived memory settings (dynamic {@code -D} properties) come from Flink's own
 * {@code BashJavaUtils GET_JM_RESOURCE_PARAMS / GET_TM_RESOURCE_PARAMS}, so Flink's memory model
 * applies exactly as on a real installation; the JVM options are {@code env.java.default-opts.*}
 * and {@code env.java.opts.*} of the configuration.
 *
 * <p>Everything listens on 127.0.0.1, on free ports picked at start (nothing fixed), except that
 * Flink's Prometheus reporter binds its HTTP server to the wildcard address (it has no host
 * option). Each JVM logs to its own file under {@code <workDir>/log}; {@link #close()} kills every
 * process this object started and prints the tail of every log when {@link #markFailed} was called.
 */
public final class StandaloneFlinkCluster implements AutoCloseable {
    /** Flink's default {@code env.java.opts.all} for Java 17 (the distribution's config.yaml). */
    public static final String JAVA17_OPTS = String.join(" ",
            "--add-exports=java.base/sun.net.util=ALL-UNNAMED",
            "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
            "--add-exports=jdk.compiler/com.sun.tools.javac.api=ALL-UNNAMED",
            "--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
            "--add-exports=jdk.compiler/com.sun.tools.javac.parser=ALL-UNNAMED",
            "--add-exports=jdk.compiler/com.sun.tools.javac.tree=ALL-UNNAMED",
            "--add-exports=jdk.compiler/com.sun.tools.javac.util=ALL-UNNAMED",
            "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
            "--add-opens=java.base/java.lang=ALL-UNNAMED",
            "--add-opens=java.base/java.net=ALL-UNNAMED",
            "--add-opens=java.base/java.io=ALL-UNNAMED",
            "--add-opens=java.base/java.nio=ALL-UNNAMED",
            "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
            "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
            "--add-opens=java.base/java.text=ALL-UNNAMED",
            "--add-opens=java.base/java.time=ALL-UNNAMED",
            "--add-opens=java.base/java.util=ALL-UNNAMED",
            "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
            "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
            "--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED");

    public static final String HOST = "127.0.0.1";
    private static final String RESULT_PREFIX = "BASH_JAVA_UTILS_EXEC_RESULT:";
    private static final String JOB_MANAGER_CLASS = "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint";
    private static final String TASK_MANAGER_CLASS = "org.apache.flink.runtime.taskexecutor.TaskManagerRunner";
    private static final String CLIENT_CLASS = "org.apache.flink.client.cli.CliFrontend";
    private static final String BASH_JAVA_UTILS_CLASS = "org.apache.flink.runtime.util.bash.BashJavaUtils";
    /** Marks every JVM this class starts with the test JVM's pid, so that orphans of a dead run can be found. */
    private static final String OWNER_PROPERTY = "dinostream.it.cluster.owner";
    private static final int SIGKILL_EXIT = 128 + 9;

    /** One JVM of the cluster. */
    public static final class Node {
        private final String name;
        private final Process process;
        private final Path log;
        private final Path out;
        private final int prometheusPort;
        private final long startedMillis = System.currentTimeMillis();
        private volatile long killedMillis = -1;

        Node(String name, Process process, Path log, Path out, int prometheusPort) {
            this.name = name;
            this.process = process;
            this.log = log;
            this.out = out;
            this.prometheusPort = prometheusPort;
        }

        /** For a TaskManager also its {@code taskmanager.resource-id}, as the REST API shows it. */
        public String name() {
            return name;
        }

        /** The pid of the {@code java} process itself (no wrapper shell). */
        public long pid() {
            return process.pid();
        }

        public boolean isAlive() {
            return process.isAlive();
        }

        public Path log() {
            return log;
        }

        /** stdout and stderr of the JVM. */
        public Path out() {
            return out;
        }

        /** The port of this JVM's Prometheus reporter, or -1. */
        public int prometheusPort() {
            return prometheusPort;
        }

        public long startedMillis() {
            return startedMillis;
        }

        /** When {@link #killTaskManager} killed it, or -1. */
        public long killedMillis() {
            return killedMillis;
        }

        @Override
        public String toString() {
            return name + " (pid " + pid() + (isAlive() ? "" : ", exited " + process.exitValue()) + ")";
        }
    }

    /** What a CliFrontend run returned. */
    public record ClientResult(int exitCode, String stdout, String stderr, Duration duration) {
        private static final java.util.regex.Pattern JOB_ID = java.util.regex.Pattern.compile("JobID ([0-9a-f]{32})");

        /** The JobID in "Job has been submitted with JobID ..." of a detached run. */
        public String jobId() {
            java.util.regex.Matcher m = JOB_ID.matcher(stdout + "\n" + stderr);
            if (!m.find()) throw new AssertionError("no JobID in the client's output:\n" + this);
            return m.group(1);
        }

        @Override
        public String toString() {
            return "exit " + exitCode + " after " + duration.toMillis() + " ms\n--- stdout\n" + stdout + "\n--- stderr\n" + stderr;
        }
    }

    public static Builder builder(Path flinkHome, Path workDir) {
        return new Builder(flinkHome, workDir);
    }

    public static final class Builder {
        private final Path flinkHome;
        private final Path workDir;
        private int taskManagers = 1;
        private final List<String> yamls = new ArrayList<>();
        private final Map<String, String> properties = new LinkedHashMap<>();
        private boolean prometheus;
        private Duration startTimeout = Duration.ofSeconds(180);

        private Builder(Path flinkHome, Path workDir) {
            this.flinkHome = flinkHome.toAbsolutePath().normalize();
            this.workDir = workDir.toAbsolutePath().normalize();
        }

        public Builder taskManagers(int n) {
            if (n < 0) throw new IllegalArgumentException("task managers: " + n);
            this.taskManagers = n;
            return this;
        }

        /**
         * A Flink config.yaml fragment (standard YAML, nested or flat keys) laid over the minimal
         * defaults: its settings win over them, later fragments win over earlier ones, and
         * {@link #property} wins over all. Addresses, ports and working folders are always the
         * cluster's own.
         */
        public Builder extraYaml(String yaml) {
            yamls.add(Objects.requireNonNull(yaml));
            return this;
        }

        public Builder property(String key, String value) {
            properties.put(key, value);
            return this;
        }

        /**
         * Gives the JobManager and each TaskManager its own free port for the Prometheus reporter named {@code prom}
         * ({@code metrics.reporter.prom.port}), when the configuration enables that reporter.
         */
        public Builder prometheusPorts(boolean on) {
            this.prometheus = on;
            return this;
        }

        public Builder startTimeout(Duration d) {
            this.startTimeout = d;
            return this;
        }

        public StandaloneFlinkCluster start() throws IOException, InterruptedException {
            StandaloneFlinkCluster c = new StandaloneFlinkCluster(this);
            try {
                c.startAll(taskManagers, startTimeout);
                return c;
            } catch (Throwable t) {
                c.markFailed();
                c.close();
                throw t;
            }
        }
    }

    private final Path flinkHome;
    private final Path libDir;
    private final Path pluginsDir;
    private final Path workDir;
    private final Path confDir;
    private final Path logDir;
    private final String javaBin;
    private final String classpath;
    private final boolean prometheus;
    private final Set<Integer> usedPorts = new HashSet<>();
    private final int restPort;
    private final int rpcPort;
    private final Configuration config;
    private final FlinkRest rest;
    private final List<Node> taskManagers = new ArrayList<>();
    private final List<Process> clients = new ArrayList<>();
    private final java.util.concurrent.atomic.AtomicInteger clientCount = new java.util.concurrent.atomic.AtomicInteger();
    private final Thread shutdownHook;
    private List<String> tmJvmParams;
    private List<String> tmDynamicParams;
    private Node jobManager;
    private volatile boolean failed;
    private boolean closed;

    private StandaloneFlinkCluster(Builder b) throws IOException {
        this.flinkHome = b.flinkHome;
        this.libDir = flinkHome.resolve("lib");
        this.pluginsDir = flinkHome.resolve("plugins");
        this.workDir = b.workDir;
        this.confDir = workDir.resolve("conf");
        this.logDir = workDir.resolve("log");
        this.prometheus = b.prometheus;
        this.javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        if (!Files.isDirectory(libDir)) {
            throw new IllegalStateException("no Flink lib/ at " + libDir + ": run `mvn verify` in integration-tests (its"
                    + " pre-integration-test phase copies the cluster jars there)");
        }
        try (Stream<Path> jars = Files.list(libDir)) {
            // Sorted by name, as bin/config.sh builds the classpath.
            this.classpath = jars.filter(p -> p.toString().endsWith(".jar")).sorted().map(Path::toString)
                    .collect(Collectors.joining(":"));
        }
        if (!classpath.contains("flink-runtime-")) throw new IllegalStateException("no flink-runtime jar in " + libDir);
        Files.createDirectories(confDir);
        Files.createDirectories(logDir);
        reapOrphans();
        this.restPort = freePort();
        this.rpcPort = freePort();
        this.config = configuration(b);
        writeConf();
        this.rest = new FlinkRest("http://" + HOST + ":" + restPort);
        this.shutdownHook = new Thread(this::killAll, "flink-cluster-reaper");
        Runtime.getRuntime().addShutdownHook(shutdownHook);
    }

    // ------------------------------------------------------------------------------------------
    // Configuration

    private Configuration configuration(Builder b) throws IOException {
        // 1. A minimal default cluster configuration (the distribution's config.yaml, smaller).
        Configuration c = new Configuration();
        c.setString("env.java.opts.all", JAVA17_OPTS);
        c.setString("jobmanager.memory.process.size", "1024m");
        c.setString("jobmanager.execution.failover-strategy", "region");
        c.setString("taskmanager.memory.process.size", "1400m");
        c.setString("taskmanager.numberOfTaskSlots", "1");
        c.setString("parallelism.default", "1");
        // 2. The fragments, in order.
        int i = 0;
        for (String yaml : b.yamls) c.addAll(parseYaml(yaml, "fragment-" + i++));
        // 3. The caller's properties.
        b.properties.forEach(c::setString);
        // 4. What makes it this cluster: loopback only, free ports, folders under the work dir.
        c.setString("jobmanager.rpc.address", HOST);
        c.setString("jobmanager.rpc.port", Integer.toString(rpcPort));
        c.setString("jobmanager.bind-host", HOST);
        c.setString("taskmanager.bind-host", HOST);
        c.setString("taskmanager.host", HOST);
        c.setString("taskmanager.rpc.port", "0");
        c.setString("taskmanager.data.port", "0");
        c.setString("blob.server.port", "0");
        c.setString("metrics.internal.query-service.port", "0");
        c.setString("rest.address", HOST);
        c.setString("rest.bind-address", HOST);
        c.setString("rest.port", Integer.toString(restPort));
        c.setString("rest.bind-port", Integer.toString(restPort));
        c.setString("io.tmp.dirs", workDir.resolve("tmp").toString());
        // ONNX Runtime's natives are unpacked by JavaCPP: into this cluster's folder, not the user's home.
        c.setString("env.java.opts.all", c.getString("env.java.opts.all", "") + " -Dorg.bytedeco.javacpp.cachedir=" + javacppCache());
        c.setString("web.tmpdir", workDir.resolve("web").toString());
        c.setString("web.upload.dir", workDir.resolve("web-upload").toString());
        Files.createDirectories(workDir.resolve("tmp"));
        Files.createDirectories(workDir.resolve("web-upload"));
        return c;
    }

    /** A config.yaml fragment as Flink reads it (standard YAML, flattened keys). */
    private Configuration parseYaml(String yaml, String name) throws IOException {
        Path dir = workDir.resolve("conf-parts").resolve(name);
        Files.createDirectories(dir);
        Files.writeString(dir.resolve(GlobalConfiguration.FLINK_CONF_FILENAME), yaml);
        return GlobalConfiguration.loadConfiguration(dir.toString());
    }

    private void writeConf() throws IOException {
        List<String> lines = ConfigurationUtils.convertConfigToWritableLines(config, false);
        Files.write(confDir.resolve(GlobalConfiguration.FLINK_CONF_FILENAME), lines, StandardCharsets.UTF_8);
        // Read it back as Flink will: every setting must survive the round trip.
        Map<String, String> back = GlobalConfiguration.loadConfiguration(confDir.toString()).toMap();
        Map<String, String> want = config.toMap();
        if (!back.equals(want)) {
            throw new IllegalStateException("config.yaml does not read back as written:\nwritten " + want + "\nread " + back);
        }
        copyResource("cluster/log4j.properties", confDir.resolve("log4j.properties"));
        copyResource("cluster/log4j-cli.properties", confDir.resolve("log4j-cli.properties"));
    }

    private static void copyResource(String name, Path to) throws IOException {
        try (InputStream in = StandaloneFlinkCluster.class.getClassLoader().getResourceAsStream(name)) {
            if (in == null) throw new IllegalStateException("no test resource " + name);
            Files.copy(in, to, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** The cluster's effective configuration (as written to conf/config.yaml). */
    public Map<String, String> configuration() {
        return config.toMap();
    }

    // ------------------------------------------------------------------------------------------
    // Processes

    private void startAll(int n, Duration timeout) throws IOException, InterruptedException {
        long t0 = System.nanoTime();
        List<String>[] jm = resourceParams("GET_JM_RESOURCE_PARAMS");
        List<String>[] tm = resourceParams("GET_TM_RESOURCE_PARAMS");
        tmJvmParams = tm[0];
        tmDynamicParams = tm[1];
        System.out.printf("[cluster] JobManager JVM %s, dynamic %s%n[cluster] TaskManager JVM %s, dynamic %s%n",
                jm[0], String.join(" ", jm[1]), tm[0], String.join(" ", tm[1]));

        List<String> cmd = new ArrayList<>(jvmCommand(jm[0], "jobmanager", "jobmanager"));
        Path log = logDir.resolve("jobmanager.log");
        cmd.addAll(logSettings(log, "log4j.properties"));
        cmd.addAll(List.of("-classpath", classpath, JOB_MANAGER_CLASS));
        cmd.addAll(jm[1]);
        int jmPromPort = prometheus ? freePort() : -1;
        if (jmPromPort > 0) cmd.addAll(List.of("-D", "metrics.reporter.prom.port=" + jmPromPort));
        cmd.addAll(List.of("--configDir", confDir.toString(), "--executionMode", "cluster"));
        jobManager = new Node("jobmanager", launch(cmd, logDir.resolve("jobmanager.out")), log, logDir.resolve("jobmanager.out"), jmPromPort);

        for (int i = 0; i < n; i++) startTaskManagerProcess();
        Deadline d = new Deadline(timeout);
        String last = "";
        while (true) {
            if (!jobManager.isAlive()) throw failure("the JobManager exited (code " + jobManager.process.exitValue() + ") while starting", jobManager);
            for (Node t : taskManagers) {
                if (!t.isAlive()) throw failure("TaskManager " + t.name + " exited (code " + t.process.exitValue() + ") while starting", t);
            }
            try {
                var o = rest.overview();
                last = o.toString();
                if (o.path("taskmanagers").asInt() == n) break;
            } catch (IOException e) {
                last = e.toString();
            }
            if (d.expired()) throw failure("the cluster did not come up in " + timeout.toSeconds() + " s (" + n + " TaskManagers registered wanted); last /overview: " + last, null);
            Thread.sleep(250);
        }
        System.out.printf("[cluster] up in %.1f s: REST %s, %d TaskManager(s), work dir %s%n",
                (System.nanoTime() - t0) / 1e9, rest.base(), n, workDir);
    }

    /** Flink's BashJavaUtils, as bin/config.sh runs it: the JVM parameters (line 1) and dynamic configs (line 2). */
    @SuppressWarnings("unchecked")
    private List<String>[] resourceParams(String command) throws IOException, InterruptedException {
        List<String> cmd = List.of(javaBin, "-classpath", classpath, BASH_JAVA_UTILS_CLASS, command, "--configDir", confDir.toString());
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(workDir.toFile()).redirectErrorStream(true);
        environment(pb);
        Process p = pb.start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException("BashJavaUtils " + command + " did not finish in 120 s:\n" + output);
        }
        List<String> results = output.lines().filter(l -> l.startsWith(RESULT_PREFIX))
                .map(l -> l.substring(RESULT_PREFIX.length()).strip()).toList();
        if (p.exitValue() != 0 || results.size() != 2) {
            throw new IllegalStateException("BashJavaUtils " + command + " failed (exit " + p.exitValue() + ", "
                    + results.size() + " result lines, 2 expected):\n" + output);
        }
        return new List[] {words(results.get(0)), words(results.get(1))};
    }

    private static List<String> words(String s) {
        return s.isBlank() ? List.of() : Arrays.asList(s.trim().split("\\s+"));
    }

    /** java, the memory parameters, then env.java.default-opts.all, opts.all, default-opts.ROLE, opts.ROLE, as the scripts order them. */
    private List<String> jvmCommand(List<String> memory, String role, String name) {
        List<String> cmd = new ArrayList<>();
        cmd.add(javaBin);
        cmd.addAll(memory);
        for (String key : List.of("env.java.default-opts.all", "env.java.opts.all",
                "env.java.default-opts." + role, "env.java.opts." + role)) {
            String v = config.toMap().get(key);
            if (v != null) {
                // bin/config.sh strips one pair of surrounding double quotes, then the shell splits on whitespace.
                v = v.strip().replaceAll("^\"|\"$", "");
                cmd.addAll(words(v));
            }
        }
        cmd.add("-D" + OWNER_PROPERTY + "=" + ProcessHandle.current().pid());
        cmd.add("-Ddinostream.it.cluster.node=" + name);
        return cmd;
    }

    private List<String> logSettings(Path log, String log4jFile) {
        String conf = confDir.resolve(log4jFile).toUri().toString();
        return List.of("-Dlog.file=" + log, "-Dlog4j.configuration=" + conf, "-Dlog4j.configurationFile=" + conf);
    }

    private void environment(ProcessBuilder pb) {
        Map<String, String> env = pb.environment();
        env.put("FLINK_HOME", flinkHome.toString());
        env.put("FLINK_CONF_DIR", confDir.toString());
        env.put("FLINK_LIB_DIR", libDir.toString());
        env.put("FLINK_PLUGINS_DIR", pluginsDir.toString());
        env.put("FLINK_OPT_DIR", flinkHome.resolve("opt").toString());
        env.put("FLINK_BIN_DIR", flinkHome.resolve("bin").toString());
        env.put("FLINK_LOG_DIR", logDir.toString());
        // The test JVM's own settings must not leak into the cluster's JVMs.
        env.remove("JAVA_TOOL_OPTIONS");
        env.remove("_JAVA_OPTIONS");
        env.remove("JDK_JAVA_OPTIONS");
        env.remove("HADOOP_CLASSPATH");
    }

    private Process launch(List<String> cmd, Path out) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(workDir.toFile())
                .redirectErrorStream(true).redirectOutput(out.toFile()).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        environment(pb);
        Files.writeString(out.resolveSibling(out.getFileName() + ".cmd"), String.join(" ", cmd) + "\n");
        return pb.start();
    }

    private synchronized Node startTaskManagerProcess() throws IOException {
        String name = "tm-" + taskManagers.size();
        int promPort = prometheus ? freePort() : -1;
        List<String> cmd = new ArrayList<>(jvmCommand(tmJvmParams, "taskmanager", name));
        Path log = logDir.resolve("taskmanager-" + name + ".log");
        cmd.addAll(logSettings(log, "log4j.properties"));
        cmd.addAll(List.of("-classpath", classpath, TASK_MANAGER_CLASS, "--configDir", confDir.toString()));
        cmd.addAll(tmDynamicParams);
        cmd.addAll(List.of("-D", "taskmanager.resource-id=" + name));
        if (promPort > 0) cmd.addAll(List.of("-D", "metrics.reporter.prom.port=" + promPort));
        Path out = logDir.resolve("taskmanager-" + name + ".out");
        Node n = new Node(name, launch(cmd, out), log, out, promPort);
        taskManagers.add(n);
        return n;
    }

    /** Starts one more TaskManager (named tm-N) and waits until it has registered with the ResourceManager. */
    public Node startTaskManager(Duration timeout) throws IOException, InterruptedException {
        Node n = startTaskManagerProcess();
        Deadline d = new Deadline(timeout);
        while (true) {
            if (!n.isAlive()) throw failure("TaskManager " + n.name + " exited (code " + n.process.exitValue() + ") while starting", n);
            try {
                for (var tm : rest.get("/taskmanagers").path("taskmanagers")) {
                    if (n.name.equals(tm.path("id").asText())) {
                        System.out.printf("[cluster] TaskManager %s registered %.1f s after its start (pid %d)%n",
                                n.name, (System.currentTimeMillis() - n.startedMillis) / 1e3, n.pid());
                        return n;
                    }
                }
            } catch (IOException e) {
                // the JobManager may be busy with the failover: retry
            }
            if (d.expired()) throw failure("TaskManager " + n.name + " did not register in " + timeout.toSeconds() + " s", n);
            Thread.sleep(250);
        }
    }

    /**
     * {@code kill -9} of TaskManager {@code i} (in start order; replacements continue the
     * numbering): the JVM gets SIGKILL, no shutdown hook runs. Returns when the process is gone.
     */
    public Node killTaskManager(int i) throws InterruptedException {
        Node n = taskManagers.get(i);
        if (!n.isAlive()) throw new IllegalStateException(n + " is not running");
        n.killedMillis = System.currentTimeMillis();
        // Process.destroyForcibly is kill(pid, SIGKILL) on Linux; the exit status below proves it.
        n.process.destroyForcibly();
        if (!n.process.waitFor(30, TimeUnit.SECONDS)) throw new IllegalStateException(n.name + " survived SIGKILL for 30 s");
        int code = n.process.exitValue();
        if (code != SIGKILL_EXIT) throw new IllegalStateException(n.name + " ended with exit status " + code + ", not " + SIGKILL_EXIT + " (SIGKILL)");
        System.out.printf("[cluster] killed TaskManager %s (pid %d) with SIGKILL: exit status %d%n", n.name, n.pid(), code);
        return n;
    }

    /** The TaskManager whose {@code taskmanager.resource-id} is {@code id}. */
    public int taskManagerIndex(String id) {
        for (int i = 0; i < taskManagers.size(); i++) if (taskManagers.get(i).name.equals(id)) return i;
        throw new IllegalArgumentException("no TaskManager " + id + " among " + taskManagers);
    }

    public List<Node> taskManagers() {
        return List.copyOf(taskManagers);
    }

    /** The pids of the TaskManager JVMs still running. */
    public List<Long> taskManagerPids() {
        return taskManagers.stream().filter(Node::isAlive).map(Node::pid).toList();
    }

    public Node jobManager() {
        return jobManager;
    }

    public boolean isJobManagerAlive() {
        return jobManager != null && jobManager.isAlive();
    }

    public FlinkRest rest() {
        return rest;
    }

    public int restPort() {
        return restPort;
    }

    /** Where the cluster's JVMs unpack native libraries (JavaCPP's cache: a folder per jar they came in). */
    public Path javacppCache() {
        return workDir.resolve("javacpp");
    }

    public Path workDir() {
        return workDir;
    }

    public Path confDir() {
        return confDir;
    }

    // ------------------------------------------------------------------------------------------
    // The client

    /**
     * {@code flink run -d JAR ARGS...}: Flink's {@code CliFrontend} in its own JVM, as
     * {@code bin/flink} starts it (same classpath, env.java.opts.all and .client, FLINK_CONF_DIR).
     */
    public ClientResult submitDetached(Path jar, List<String> args, Duration timeout) throws IOException, InterruptedException {
        List<String> cli = new ArrayList<>(List.of("run", "-d", jar.toAbsolutePath().toString()));
        cli.addAll(args);
        return runClient(cli, timeout);
    }

    /** {@code flink run -d JAR ARGS...} with a 3-minute limit. */
    public ClientResult submitDetached(Path jar, String... args) throws IOException, InterruptedException {
        return submitDetached(jar, List.of(args), Duration.ofMinutes(3));
    }

    /** Any CliFrontend command line (run, list, cancel, ...). */
    public ClientResult runClient(List<String> cliArgs, Duration timeout) throws IOException, InterruptedException {
        int k = clientCount.getAndIncrement();
        List<String> cmd = new ArrayList<>(jvmCommand(List.of(), "client", "client-" + k));
        cmd.addAll(logSettings(logDir.resolve("client-" + k + ".log"), "log4j-cli.properties"));
        cmd.addAll(List.of("-classpath", classpath, CLIENT_CLASS));
        cmd.addAll(cliArgs);
        Path out = logDir.resolve("client-" + k + ".stdout"), err = logDir.resolve("client-" + k + ".stderr");
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(workDir.toFile())
                .redirectOutput(out.toFile()).redirectError(err.toFile()).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        environment(pb);
        Files.writeString(logDir.resolve("client-" + k + ".cmd"), String.join(" ", cmd) + "\n");
        long t0 = System.nanoTime();
        Process p = pb.start();
        synchronized (this) {
            clients.add(p);
        }
        if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            throw new AssertionError("flink " + String.join(" ", cliArgs) + " did not finish in " + timeout.toSeconds()
                    + " s; stdout:\n" + Files.readString(out) + "\nstderr:\n" + Files.readString(err));
        }
        return new ClientResult(p.exitValue(), Files.readString(out), Files.readString(err), Duration.ofNanos(System.nanoTime() - t0));
    }

    // ------------------------------------------------------------------------------------------
    // Failure reporting and shutdown

    /** Makes {@link #close} print the tail of every log. */
    public void markFailed() {
        failed = true;
    }

    /** An AssertionError whose message ends with the log tail of {@code node}; {@link #close} then prints every log's tail. */
    public AssertionError failure(String message, Node node) {
        markFailed();
        return new AssertionError(message + "\n" + (node != null ? tail(node, 60) : "(the logs' tails follow; all logs under " + logDir + ")"));
    }

    /** The last {@code lines} lines of every JVM's log and stdout. */
    public String logTails(int lines) {
        StringBuilder sb = new StringBuilder();
        if (jobManager != null) sb.append(tail(jobManager, lines));
        for (Node n : taskManagers) sb.append(tail(n, lines));
        return sb.toString();
    }

    public static String tail(Node n, int lines) {
        return tail(n.log, lines) + tail(n.out, Math.min(lines, 30));
    }

    public static String tail(Path file, int lines) {
        if (!Files.exists(file)) return "=== " + file + ": (none)\n";
        try {
            List<String> all = Files.readAllLines(file, StandardCharsets.UTF_8);
            List<String> last = all.subList(Math.max(0, all.size() - lines), all.size());
            return "=== " + file + " (last " + last.size() + " of " + all.size() + " lines)\n" + String.join("\n", last) + "\n";
        } catch (IOException | UncheckedIOException e) {
            return "=== " + file + ": " + e + "\n";
        }
    }

    /** Lines of every TaskManager log that match {@code regex}, each prefixed with the TaskManager's name. */
    public List<String> grepTaskManagerLogs(String regex) {
        List<String> hits = new ArrayList<>();
        for (Node n : taskManagers) hits.addAll(grep(n, regex));
        return hits;
    }

    /** Lines of a JVM's log that match {@code regex}, prefixed with its name. */
    public static List<String> grep(Node n, String regex) {
        java.util.regex.Pattern p = java.util.regex.Pattern.compile(regex);
        List<String> hits = new ArrayList<>();
        try {
            for (String l : Files.readAllLines(n.log, StandardCharsets.UTF_8)) if (p.matcher(l).find()) hits.add(n.name + ": " + l);
        } catch (IOException | UncheckedIOException e) {
            hits.add(n.name + ": " + e);
        }
        return hits;
    }

    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        if (failed) System.out.println("[cluster] logs of the failed run (all under " + logDir + "):\n" + logTails(80));
        killAll();
        try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (IllegalStateException ignored) {
            // shutting down already
        }
    }

    /** SIGTERM to every JVM still running, SIGKILL after 10 s. */
    private void killAll() {
        List<Process> all = new ArrayList<>();
        synchronized (this) {
            all.addAll(clients);
            all.addAll(taskManagers.stream().map(n -> n.process).toList());
            if (jobManager != null) all.add(jobManager.process);
        }
        all.removeIf(p -> !p.isAlive());
        all.forEach(Process::destroy);
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        for (Process p : all) {
            try {
                if (!p.waitFor(Math.max(0, end - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                    p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                p.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * Kills cluster JVMs left behind by an earlier test JVM that died without closing its cluster
     * (their owner pid, a -D property of each, is no longer running).
     */
    private static void reapOrphans() {
        String marker = "-D" + OWNER_PROPERTY + "=";
        ProcessHandle.allProcesses().forEach(ph -> {
            String[] args = ph.info().arguments().orElse(null);
            if (args == null) return;
            for (String a : args) {
                if (!a.startsWith(marker)) continue;
                long owner;
                try {
                    owner = Long.parseLong(a.substring(marker.length()));
                } catch (NumberFormatException e) {
                    return;
                }
                if (ProcessHandle.of(owner).map(ProcessHandle::isAlive).orElse(false)) return;
                System.out.println("[cluster] killing orphaned cluster JVM " + ph.pid() + " of dead test JVM " + owner);
                ph.destroyForcibly();
                return;
            }
        });
    }

    private int freePort() throws IOException {
        for (int attempt = 0; attempt < 20; attempt++) {
            try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName(HOST))) {
                int port = s.getLocalPort();
                if (usedPorts.add(port)) return port;
            }
        }
        throw new IOException("no free port");
    }

    /** A wait with an end. */
    public static final class Deadline {
        private final long end;

        public Deadline(Duration d) {
            end = System.nanoTime() + d.toNanos();
        }

        public boolean expired() {
            return System.nanoTime() > end;
        }
    }
}
