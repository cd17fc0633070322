package dinostream.it.ops;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.networknt.schema.JsonSchema;
import com.networknt.schema.JsonSchemaFactory;
import com.networknt.schema.SpecVersion;
import com.networknt.schema.ValidationMessage;
import com.networknt.schema.oas.OpenApi30;
import dinostream.it.cluster.DashboardCheck;
import dinostream.model.dino.DinoConfig;
import dinostream.model.dino.Presets;
import dinostream.model.runtime.TrainMemory;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.PodTemplateSpec;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicyIngressRule;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicyPort;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.kubernetes.operator.api.FlinkDeployment;
import org.apache.flink.kubernetes.operator.api.spec.FlinkVersion;
import org.apache.flink.kubernetes.operator.api.spec.JobSpec;
import org.apache.flink.runtime.clusterframework.TaskExecutorProcessSpec;
import org.apache.flink.runtime.clusterframework.TaskExecutorProcessUtils;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Kubernetes manifests in {@code ops/kubernetes/}, checked offline (they have not been applied
 * to a cluster):
 *
 * <ul>
 *   <li>against the FlinkDeployment CRD's OpenAPI schema (the one the operator-api jar bundles, or
 *       the file named by {@code -Ddinostream.flinkdeployment.crd=PATH}), strictly: a field the
 *       schema does not define is an error, as with {@code kubectl apply --validate=strict};</li>
 *   <li>parsed into the operator's own {@link FlinkDeployment} class, unknown fields an error, and
 *       every Kubernetes object inside (pod templates) without fields its fabric8 class does not know;</li>
 *   <li>the settings dinostream needs: Flink 2.2, the job jar and entry class of the image, last-state
 *       upgrades, checkpoints, savepoints, HA and snapshots on {@code s3://}, S3 credentials only from
 *       a Secret, the Prometheus reporter port, and (GPU variant) Flink's GPU external resource with
 *       {@code nvidia.com/gpu: 1};</li>
 *   <li>memory: Flink's own TaskManager memory model accepts the settings, and the task off-heap
 *       memory holds what the trainer demands for the preset and batch in the job's arguments
 *       ({@link TrainMemory}, the check the job itself makes when a model starts);</li>
 *   <li>the NetworkPolicy lets only Prometheus reach the reporter port and Flink reach the ports the
 *       FlinkDeployments fix; the Dockerfile puts the jars where the manifests expect them.</li>
 * </ul>
 *
 * The operator-api version on the package mirror (1.10.0) predates Flink 2: its {@link FlinkVersion}
 * and its CRD's {@code flinkVersion} enum end at {@code v1_20}. Where the enum lacks the manifests'
 * {@code v2_2}, the test adds that one value to the bundled schema, reads it as unknown in the class,
 * and checks the text itself; everything else is checked as is. With {@code
 * -Ddinostream.flinkdeployment.crd=} an operator 1.13+ CRD, nothing is added.
 */
class FlinkDeploymentManifestTest {
    static final String GPU = "ops/kubernetes/flinkdeployment-gpu.yaml";
    static final String CPU = "ops/kubernetes/flinkdeployment-cpu.yaml";
    static final String JAR_URI = "local:///opt/flink/usrlib/dinostream-job-without-onnxruntime.jar";
    static final String CRD_RESOURCE = "META-INF/fabric8/flinkdeployments.flink.apache.org-v1.yml";
    static final int REPORTER_PORT = 9249;
    static final List<String> FLINK_PORT_KEYS = List.of("taskmanager.data.port", "taskmanager.rpc.port",
            "jobmanager.rpc.port", "blob.server.port", "rest.port");

    static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
    static final Path ROOT = DashboardCheck.repositoryRoot();

    static JsonNode yaml(String file) throws IOException {
        return YAML.readTree(ROOT.resolve(file).toFile());
    }

    static Map<String, String> flinkConfiguration(JsonNode manifest) {
        Map<String, String> conf = new TreeMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = manifest.path("spec").path("flinkConfiguration").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            conf.put(e.getKey(), e.getValue().asText());
        }
        return conf;
    }

    // ---- 1. The CRD's schema -------------------------------------------------------------------------

    /** The v1beta1 openAPIV3Schema of the FlinkDeployment CRD, and where it came from. */
    record Crd(JsonNode schema, String source, boolean bundled) {
    }

    static Crd crd() throws IOException {
        String file = System.getProperty("dinostream.flinkdeployment.crd");
        JsonNode doc;
        String source;
        if (file != null && !file.isBlank()) {
            doc = YAML.readTree(Path.of(file).toFile());
            source = file;
        } else {
            try (InputStream in = FlinkDeployment.class.getClassLoader().getResourceAsStream(CRD_RESOURCE)) {
                assertNotNull(in, CRD_RESOURCE + " not in the operator-api jar");
                doc = YAML.readTree(in);
            }
            source = CRD_RESOURCE + " of " + FlinkDeployment.class.getProtectionDomain().getCodeSource().getLocation();
        }
        assertEquals("CustomResourceDefinition", doc.path("kind").asText());
        assertEquals("flinkdeployments.flink.apache.org", doc.path("metadata").path("name").asText());
        for (JsonNode v : doc.path("spec").path("versions")) {
            if ("v1beta1".equals(v.path("name").asText())) {
                return new Crd(v.path("schema").path("openAPIV3Schema").deepCopy(), source, file == null || file.isBlank());
            }
        }
        throw new AssertionError("no v1beta1 in " + source);
    }

    /**
     * Strict like the API server's field validation: every object schema that lists its properties
     * and neither allows more ({@code additionalProperties}) nor keeps unknown fields
     * ({@code x-kubernetes-preserve-unknown-fields}) rejects other fields.
     */
    static void strict(JsonNode schema) {
        if (schema instanceof ObjectNode o) {
            if (o.has("properties") && !o.has("additionalProperties")
                    && !o.path("x-kubernetes-preserve-unknown-fields").asBoolean(false)) {
                o.put("additionalProperties", false);
            }
            for (JsonNode child : o) strict(child);
        } else if (schema instanceof ArrayNode a) {
            for (JsonNode child : a) strict(child);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {GPU, CPU})
    void matchesTheCrdSchema(String file) throws IOException {
        JsonNode manifest = yaml(file);
        Crd crd = crd();
        ObjectNode schema = (ObjectNode) crd.schema();
        // what the API server allows at the root of every object, whatever the CRD's schema lists
        ObjectNode root = (ObjectNode) schema.path("properties");
        if (!root.has("apiVersion")) root.putObject("apiVersion").put("type", "string");
        if (!root.has("kind")) root.putObject("kind").put("type", "string");
        if (!root.has("metadata")) root.putObject("metadata").put("type", "object");
        strict(schema);
        String version = manifest.path("spec").path("flinkVersion").asText();
        ArrayNode versions = (ArrayNode) schema.path("properties").path("spec").path("properties").path("flinkVersion").path("enum");
        boolean known = false;
        for (JsonNode v : versions) known |= v.asText().equals(version);
        if (!known) {
            assertTrue(crd.bundled(), "flinkVersion " + version + " is not in the enum of " + crd.source() + ": " + versions);
            versions.add(version);
            System.out.println(file + ": the CRD bundled with the operator-api on the classpath predates " + version
                    + " (its flinkVersion enum: " + versions + "); " + version + " added for this check only");
        }
        JsonSchemaFactory factory = JsonSchemaFactory.getInstance(SpecVersion.VersionFlag.V4,
                b -> b.metaSchema(OpenApi30.getInstance()).defaultMetaSchemaIri(OpenApi30.getInstance().getIri()));
        JsonSchema validator = factory.getSchema(schema);
        Set<ValidationMessage> errors = validator.validate(manifest);
        assertTrue(errors.isEmpty(), file + " against " + crd.source() + ":\n" + String.join("\n", errors.stream().map(Object::toString).toList()));
        System.out.println(file + ": valid against " + crd.source() + " (strict)");

        // The strict schema does catch a misplaced field and a wrong type.
        ObjectNode broken = manifest.deepCopy();
        ((ObjectNode) broken.path("spec").path("job")).put("upgradeMod", "last-state");
        ((ObjectNode) broken.path("spec").path("taskManager")).put("replicas", "two");
        Set<ValidationMessage> caught = validator.validate(broken);
        assertEquals(2, caught.size(), caught.toString());
    }

    // ---- 2. The operator's class -----------------------------------------------------------------------

    static boolean operatorKnows(String flinkVersion) {
        return Arrays.stream(FlinkVersion.values()).anyMatch(v -> v.name().equals(flinkVersion));
    }

    static FlinkDeployment parse(String file) throws IOException {
        String version = yaml(file).path("spec").path("flinkVersion").asText();
        ObjectMapper strict = new ObjectMapper(new YAMLFactory()).enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);
        // operator-api before 1.13 has no v2_x: read the version as unknown there (the text is checked below)
        if (!operatorKnows(version)) strict.enable(DeserializationFeature.READ_UNKNOWN_ENUM_VALUES_AS_NULL);
        return strict.readValue(ROOT.resolve(file).toFile(), FlinkDeployment.class);
    }

    @ParameterizedTest
    @ValueSource(strings = {GPU, CPU})
    void parsesIntoTheOperatorsClass(String file) throws IOException {
        JsonNode raw = yaml(file);
        FlinkDeployment d = parse(file);
        assertEquals("flink.apache.org/v1beta1", d.getApiVersion());
        assertEquals("FlinkDeployment", d.getKind());
        assertEquals("dinostream", d.getMetadata().getNamespace());

        assertEquals("v2_2", raw.path("spec").path("flinkVersion").asText());
        if (operatorKnows("v2_2")) assertEquals("v2_2", d.getSpec().getFlinkVersion().name());
        else assertNull(d.getSpec().getFlinkVersion());
        assertNotNull(d.getSpec().getImage());
        assertEquals("flink", d.getSpec().getServiceAccount());

        JobSpec job = d.getSpec().getJob();
        assertEquals(JAR_URI, job.getJarURI());
        assertEquals("dinostream.cli.JobMain", job.getEntryClass());
        assertEquals("LAST_STATE", job.getUpgradeMode().name());
        assertEquals("RUNNING", job.getState().name());
        List<String> args = List.of(job.getArgs());
        assertEquals("train", args.get(0));
        assertFalse(arg(args, "--bootstrap").isBlank());
        assertTrue(arg(args, "--snapshot-dir").startsWith("s3://"), args.toString());
        int models = arg(args, "--models").split(",").length;
        int slots = Integer.parseInt(flinkConfiguration(raw).get("taskmanager.numberOfTaskSlots"));
        assertTrue(d.getSpec().getTaskManager().getReplicas() * slots >= Math.max(models, job.getParallelism()),
                "fewer slots than models or parallelism");

        // Kubernetes objects inside (pod templates): nothing their fabric8 classes do not know
        List<String> unknown = new ArrayList<>();
        unknownFields(d.getSpec().getPodTemplate(), "spec.podTemplate", unknown);
        unknownFields(d.getSpec().getJobManager().getPodTemplate(), "spec.jobManager.podTemplate", unknown);
        unknownFields(d.getSpec().getTaskManager().getPodTemplate(), "spec.taskManager.podTemplate", unknown);
        assertEquals(List.of(), unknown);

        // The reporter's port, named for the PodMonitor and the kubernetes_sd job, and the annotations
        Container main = mainContainer(d.getSpec().getPodTemplate());
        assertTrue(main.getPorts().stream().anyMatch(p -> "metrics".equals(p.getName()) && p.getContainerPort() == REPORTER_PORT),
                main.getPorts().toString());
        Map<String, String> annotations = d.getSpec().getPodTemplate().getMetadata().getAnnotations();
        assertEquals("true", annotations.get("prometheus.io/scrape"));
        assertEquals(Integer.toString(REPORTER_PORT), annotations.get("prometheus.io/port"));
    }

    static String arg(List<String> args, String name) {
        int i = args.indexOf(name);
        assertTrue(i >= 0 && i + 1 < args.size(), "no " + name + " in " + args);
        return args.get(i + 1);
    }

    static Container mainContainer(PodTemplateSpec template) {
        assertNotNull(template);
        return template.getSpec().getContainers().stream().filter(c -> "flink-main-container".equals(c.getName()))
                .findFirst().orElseThrow(() -> new AssertionError("no flink-main-container"));
    }

    /** Paths of fields that landed in a fabric8 object's additionalProperties: fields its Kubernetes type does not have. */
    static void unknownFields(Object o, String path, List<String> out) {
        if (o == null) return;
        if (o instanceof Map<?, ?> m) {
            m.forEach((k, v) -> unknownFields(v, path + "." + k, out));
            return;
        }
        if (o instanceof Collection<?> c) {
            int i = 0;
            for (Object e : c) unknownFields(e, path + "[" + i++ + "]", out);
            return;
        }
        if (!o.getClass().getName().startsWith("io.fabric8.kubernetes.api.model")) return;
        for (Method m : o.getClass().getMethods()) {
            String n = m.getName();
            if (m.getParameterCount() != 0 || !n.startsWith("get") || n.equals("getClass")) continue;
            Object v;
            try {
                v = m.invoke(o);
            } catch (ReflectiveOperationException e) {
                throw new AssertionError(path + "." + n, e);
            }
            if (n.equals("getAdditionalProperties")) {
                if (v instanceof Map<?, ?> extra && !extra.isEmpty()) out.add(path + ": " + extra.keySet());
            } else {
                unknownFields(v, path + "." + Character.toLowerCase(n.charAt(3)) + n.substring(4), out);
            }
        }
    }

    // ---- 3. What dinostream needs -------------------------------------------------------------------------

    @ParameterizedTest
    @ValueSource(strings = {GPU, CPU})
    void checkpointsSnapshotsAndHaOnS3(String file) throws IOException {
        Map<String, String> conf = flinkConfiguration(yaml(file));
        for (String key : List.of("execution.checkpointing.dir", "execution.checkpointing.savepoint-dir", "high-availability.storageDir")) {
            assertTrue(conf.getOrDefault(key, "").startsWith("s3://"), key + " = " + conf.get(key));
        }
        assertEquals("kubernetes", conf.get("high-availability.type"), "upgradeMode last-state needs HA");
        assertEquals("hashmap", conf.get("state.backend.type"));
        assertEquals("RETAIN_ON_CANCELLATION", conf.get("execution.checkpointing.externalized-checkpoint-retention"));
        assertTrue(conf.containsKey("execution.checkpointing.interval"), "the job refuses to start without checkpointing");
        // ONNX Runtime's Java API and bytedeco's C++ API with its loader: one copy per TaskManager from lib/.
        assertTrue(conf.get("classloader.parent-first-patterns.additional").contains("ai.onnxruntime."));
        assertTrue(conf.get("classloader.parent-first-patterns.additional").contains("org.bytedeco."));
        assertEquals("org.apache.flink.metrics.prometheus.PrometheusReporterFactory", conf.get("metrics.reporter.prom.factory.class"));
        assertEquals(Integer.toString(REPORTER_PORT), conf.get("metrics.reporter.prom.port"));

        // the S3 plugin, enabled from the image's opt/ at container start
        Container main = mainContainer(parse(file).getSpec().getPodTemplate());
        String plugins = env(main, "ENABLE_BUILT_IN_PLUGINS").getValue();
        assertTrue(plugins.matches("flink-s3-fs-(presto|hadoop)-2\\.2\\.1\\.jar(;.*)?"), plugins);
    }

    static EnvVar env(Container c, String name) {
        return c.getEnv().stream().filter(e -> name.equals(e.getName())).findFirst()
                .orElseThrow(() -> new AssertionError("no env " + name + " in " + c.getName()));
    }

    static final Pattern SECRET_NAME = Pattern.compile("(?i).*(secret|password|passwd|token|credential|access[._-]?key|private[._-]?key).*");

    @ParameterizedTest
    @ValueSource(strings = {GPU, CPU, "ops/kubernetes/networkpolicy.yaml", "ops/kubernetes/podmonitor.yaml"})
    void noInlineSecrets(String file) throws IOException {
        String text = Files.readString(ROOT.resolve(file));
        assertFalse(Pattern.compile("(?m)^kind:\\s*Secret\\b").matcher(text).find(), "a Secret manifest in " + file);
        assertFalse(Pattern.compile("AKIA[0-9A-Z]{16}").matcher(text).find(), "an AWS access key id in " + file);
        if (!file.contains("flinkdeployment")) return;

        JsonNode raw = yaml(file);
        for (String key : flinkConfiguration(raw).keySet()) {
            assertFalse(SECRET_NAME.matcher(key).matches(), "credential in flinkConfiguration: " + key);
        }
        FlinkDeployment d = parse(file);
        List<PodTemplateSpec> templates = new ArrayList<>();
        templates.add(d.getSpec().getPodTemplate());
        templates.add(d.getSpec().getJobManager().getPodTemplate());
        templates.add(d.getSpec().getTaskManager().getPodTemplate());
        int fromSecret = 0;
        for (PodTemplateSpec t : templates) {
            if (t == null || t.getSpec() == null) continue;
            List<Container> all = new ArrayList<>(t.getSpec().getContainers());
            all.addAll(t.getSpec().getInitContainers());
            for (Container c : all) {
                for (EnvVar e : c.getEnv()) {
                    if (!SECRET_NAME.matcher(e.getName()).matches() && !e.getName().startsWith("AWS_")) continue;
                    assertNull(e.getValue(), "inline value for " + e.getName());
                    assertNotNull(e.getValueFrom(), e.getName());
                    assertNotNull(e.getValueFrom().getSecretKeyRef(), e.getName() + " must come from a Secret");
                    fromSecret++;
                }
            }
        }
        Container main = mainContainer(d.getSpec().getPodTemplate());
        assertEquals("dinostream-s3", env(main, "AWS_ACCESS_KEY_ID").getValueFrom().getSecretKeyRef().getName());
        assertEquals("dinostream-s3", env(main, "AWS_SECRET_ACCESS_KEY").getValueFrom().getSecretKeyRef().getName());
        assertEquals(2, fromSecret);
    }

    @Test
    void gpuVariantDeclaresOneGpuPerTaskManager() throws IOException {
        JsonNode raw = yaml(GPU);
        Map<String, String> conf = flinkConfiguration(raw);
        assertEquals("gpu", conf.get("external-resources"));
        assertEquals("org.apache.flink.externalresource.gpu.GPUDriverFactory", conf.get("external-resource.gpu.driver-factory.class"));
        assertEquals("1", conf.get("external-resource.gpu.amount"));
        assertEquals("nvidia.com/gpu", conf.get("external-resource.gpu.kubernetes.config-key"));
        assertEquals("/opt/flink/plugins/external-resource-gpu/nvidia-gpu-discovery.sh", conf.get("external-resource.gpu.param.discovery-script.path"));

        FlinkDeployment d = parse(GPU);
        Container tm = mainContainer(d.getSpec().getTaskManager().getPodTemplate());
        Quantity gpus = tm.getResources().getLimits().get("nvidia.com/gpu");
        assertNotNull(gpus, "TaskManager limits: " + tm.getResources().getLimits());
        assertEquals("1", gpus.getAmount());
        assertNull(d.getSpec().getJobManager().getPodTemplate(), "the JobManager needs no GPU");
        assertEquals("cuda", arg(List.of(d.getSpec().getJob().getArgs()), "--device"));
        assertTrue(d.getSpec().getImage().endsWith("-gpu"), d.getSpec().getImage());

        // the CPU variant has none of it
        Map<String, String> cpu = flinkConfiguration(yaml(CPU));
        assertTrue(cpu.keySet().stream().noneMatch(k -> k.startsWith("external-resource")), cpu.toString());
        assertFalse(Files.readString(ROOT.resolve(CPU)).contains("nvidia.com/gpu"));
        assertEquals("cpu", arg(List.of(parse(CPU).getSpec().getJob().getArgs()), "--device"));
    }

    // ---- 4. Memory ---------------------------------------------------------------------------------------

    @ParameterizedTest
    @ValueSource(strings = {GPU, CPU})
    void memoryFitsFlinkAndTheTrainer(String file) throws IOException {
        JsonNode raw = yaml(file);
        FlinkDeployment d = parse(file);
        Map<String, String> conf = new LinkedHashMap<>(flinkConfiguration(raw));
        // what the operator does with spec.taskManager.resource.memory
        conf.put("taskmanager.memory.process.size", d.getSpec().getTaskManager().getResource().getMemory());
        conf.put("taskmanager.cpu.cores", Double.toString(d.getSpec().getTaskManager().getResource().getCpu()));
        TaskExecutorProcessSpec spec = TaskExecutorProcessUtils.processSpecFromConfig(Configuration.fromMap(conf));

        List<String> args = List.of(d.getSpec().getJob().getArgs());
        String preset = arg(args, "--preset");
        int batch = Integer.parseInt(arg(args, "--batch"));
        int slots = Integer.parseInt(conf.get("taskmanager.numberOfTaskSlots"));
        DinoConfig config = Presets.get(preset);
        TrainMemory need = TrainMemory.of(config, batch);
        long offHeap = MemorySize.parse(conf.get("taskmanager.memory.task.off-heap.size")).getBytes();
        System.out.printf("%s: %s batch %d: trainer needs %s off-heap per slot, %s state; TaskManager %s: task off-heap %s, "
                        + "task heap %s, JVM heap %s, direct %s, slots %d%n", file, preset, batch,
                TrainMemory.flinkSize(need.offHeapBytes()), TrainMemory.flinkSize(need.stateBytes()),
                conf.get("taskmanager.memory.process.size"), spec.getTaskOffHeapSize().toHumanReadableString(),
                spec.getTaskHeapSize().toHumanReadableString(), spec.getJvmHeapMemorySize().toHumanReadableString(),
                spec.getJvmDirectMemorySize().toHumanReadableString(), slots);

        assertEquals(offHeap, spec.getTaskOffHeapSize().getBytes());
        assertTrue(offHeap / slots >= need.offHeapBytes(), "task off-heap " + conf.get("taskmanager.memory.task.off-heap.size")
                + " per " + slots + " slot(s) is less than the " + TrainMemory.flinkSize(need.offHeapBytes())
                + " the trainer demands for " + preset + " at batch " + batch + " (TaskManagerBudget refuses to start the model)");
        assertTrue(spec.getJvmDirectMemorySize().getBytes() >= need.directBytes() * slots);
        // the heap holds each model's state at a checkpoint (heap state backend), with room to spare
        assertTrue(spec.getTaskHeapSize().getBytes() >= 2 * need.stateBytes() * slots,
                "task heap " + spec.getTaskHeapSize().toHumanReadableString() + " < twice the state (" + TrainMemory.flinkSize(need.stateBytes()) + ")");
        assertEquals(0, spec.getManagedMemorySize().getBytes(), "managed memory would sit unused with heap state");
    }

    // ---- 5. NetworkPolicy, PodMonitor, Dockerfile -----------------------------------------------------

    @Test
    void networkPolicyLetsOnlyPrometheusReachTheReporter() throws IOException {
        NetworkPolicy np = new ObjectMapper(new YAMLFactory()).enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
                .readValue(ROOT.resolve("ops/kubernetes/networkpolicy.yaml").toFile(), NetworkPolicy.class);
        List<String> unknown = new ArrayList<>();
        unknownFields(np, "networkpolicy", unknown);
        assertEquals(List.of(), unknown);
        assertEquals("dinostream", np.getMetadata().getNamespace());
        assertEquals(Map.of("type", "flink-native-kubernetes"), np.getSpec().getPodSelector().getMatchLabels());
        assertEquals(List.of("Ingress"), np.getSpec().getPolicyTypes());

        Set<Integer> flinkPorts = new TreeSet<>();
        for (String file : List.of(GPU, CPU)) {
            Map<String, String> conf = flinkConfiguration(yaml(file));
            Set<Integer> ports = new TreeSet<>();
            for (String k : FLINK_PORT_KEYS) ports.add(Integer.parseInt(conf.get(k)));
            if (!flinkPorts.isEmpty()) assertEquals(flinkPorts, ports, "both FlinkDeployments fix the same ports");
            flinkPorts = ports;
        }

        boolean prometheusRule = false;
        boolean flinkRule = false;
        for (NetworkPolicyIngressRule rule : np.getSpec().getIngress()) {
            Set<Integer> ports = new TreeSet<>();
            for (NetworkPolicyPort p : rule.getPorts()) {
                assertEquals("TCP", p.getProtocol());
                ports.add(p.getPort().getIntVal());
            }
            assertFalse(rule.getFrom().isEmpty(), "a rule without 'from' admits everyone");
            String from = rule.getFrom().toString();
            if (ports.contains(REPORTER_PORT)) {
                assertEquals(Set.of(REPORTER_PORT), ports);
                assertEquals(1, rule.getFrom().size());
                assertEquals("prometheus", rule.getFrom().get(0).getPodSelector().getMatchLabels().get("app.kubernetes.io/name"), from);
                assertNotNull(rule.getFrom().get(0).getNamespaceSelector(), "Prometheus's namespace");
                prometheusRule = true;
            }
            if (ports.equals(flinkPorts)) {
                assertEquals(Map.of("type", "flink-native-kubernetes"), rule.getFrom().get(0).getPodSelector().getMatchLabels());
                flinkRule = true;
            }
        }
        assertTrue(prometheusRule, "no rule for the reporter port");
        assertTrue(flinkRule, "no rule for Flink's own ports " + flinkPorts);
    }

    @Test
    void podMonitorScrapesTheMetricsPort() throws IOException {
        JsonNode pm = yaml("ops/kubernetes/podmonitor.yaml");
        assertEquals("monitoring.coreos.com/v1", pm.path("apiVersion").asText());
        assertEquals("PodMonitor", pm.path("kind").asText());
        assertEquals("flink-native-kubernetes", pm.path("spec").path("selector").path("matchLabels").path("type").asText());
        assertEquals("metrics", pm.path("spec").path("podMetricsEndpoints").path(0).path("port").asText());
    }

    @Test
    void dockerfilePutsTheJarsWhereTheManifestsLook() throws IOException {
        String docker = Files.readString(ROOT.resolve("ops/docker/Dockerfile"));
        assertTrue(docker.contains("ARG FLINK_IMAGE=flink:2.2.1-java17"), "base image");
        String jarPath = JAR_URI.substring("local://".length());
        assertTrue(docker.contains("COPY --chown=flink:flink pipeline/target/dinostream-job-without-onnxruntime.jar " + jarPath), "job jar at " + jarPath);
        // The versions the build uses (the root pom), API and natives of each of the four jars.
        String pom = Files.readString(ROOT.resolve("pom.xml"));
        for (String[] v : new String[][]{{"ONNXRUNTIME_VERSION", "onnxruntime.version"}, {"JAVACPP_VERSION", "javacpp.version"},
                {"DNNL_VERSION", "dnnl.version"}, {"OPENCL_VERSION", "opencl.version"}}) {
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("<" + java.util.regex.Pattern.quote(v[1]) + ">([^<]+)<").matcher(pom);
            assertTrue(m.find(), v[1] + " in pom.xml");
            assertTrue(docker.contains("ARG " + v[0] + "=" + m.group(1) + "\n"), "Dockerfile's " + v[0] + " is the build's " + m.group(1));
        }
        assertTrue(docker.contains("org.bytedeco:onnxruntime:${ONNXRUNTIME_VERSION}:jar:${ONNXRUNTIME_PLATFORM}"));
        assertTrue(docker.contains("test \"$(ls /onnxruntime | wc -l)\" -eq 8"), "four jars and their natives");
        assertTrue(docker.contains("/onnxruntime/ /opt/flink/lib/"), "ONNX Runtime into lib/");
        assertTrue(docker.contains("plugins/metrics-prometheus"));
        for (String file : List.of(GPU, CPU)) {
            Container main = mainContainer(parse(file).getSpec().getPodTemplate());
            for (String jar : env(main, "ENABLE_BUILT_IN_PLUGINS").getValue().split(";")) {
                assertTrue(docker.contains("opt/" + jar), "the Dockerfile checks that opt/" + jar + " exists");
            }
        }
        String script = flinkConfiguration(yaml(GPU)).get("external-resource.gpu.param.discovery-script.path");
        assertTrue(docker.contains(script.substring("/opt/flink/".length())), "the Dockerfile checks " + script);
        String ignore = Files.readString(ROOT.resolve("ops/docker/Dockerfile.dockerignore"));
        assertTrue(ignore.contains("!pipeline/target/dinostream-job-without-onnxruntime.jar"));
        // CPU image by default, GPU by build argument
        assertTrue(docker.contains("ARG ONNXRUNTIME_PLATFORM=linux-x86_64\n"));
        assertTrue(docker.contains("linux-x86_64-gpu"));
        assertTrue(docker.contains("libcudart.so.13"), "the GPU variant checks the CUDA 13 runtime the natives link");
    }
}
