package dev.tandem.packaging;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.tandem.cli.Main;
import dev.tandem.cli.ServeCommand;
import dev.tandem.engine.Engine;
import dev.tandem.engine.Tandem;
import dev.tandem.server.OpenAiServer;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.HTTPGetAction;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.PersistentVolumeClaim;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Probe;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.autoscaling.v2.MetricSpec;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.File;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.math.BigDecimal;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The Kubernetes deployment (docker/kubernetes/), rendered by {@code kubectl kustomize} as a cluster would receive
 * it, base and CPU overlay: every object is read into the Kubernetes API's own classes (fabric8's model) with
 * unknown fields refused; the probes and the Prometheus scrape ask routes a real server answers; the grace period
 * outlasts the pre-stop pause and the drain timeout the container's own arguments give; the objects fit together
 * (selectors, ports, the autoscaler's target and metric, the user of the image).
 */
class KubernetesManifestsTest {
    static final Path KUBERNETES = Path.of("docker/kubernetes");
    static final List<String> LAYOUTS = List.of("base", "overlays/cpu");
    static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory()).enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);
    /** apiVersion/kind to the class a cluster's API would check it against. */
    static final Map<String, Class<? extends HasMetadata>> KINDS = Map.of(
            "v1/Service", Service.class,
            "v1/PersistentVolumeClaim", PersistentVolumeClaim.class,
            "apps/v1/Deployment", Deployment.class,
            "policy/v1/PodDisruptionBudget", PodDisruptionBudget.class,
            "autoscaling/v2/HorizontalPodAutoscaler", HorizontalPodAutoscaler.class);

    static final Map<String, List<HasMetadata>> rendered = new LinkedHashMap<>();
    static Engine engine;
    static OpenAiServer server;

    @BeforeAll
    static void renderAndServe() throws Exception {
        for (String layout : LAYOUTS) rendered.put(layout, parse(kustomize(KUBERNETES.resolve(layout)), layout));
        engine = Tandem.builder().model(Path.of("test-models/kjv-main-q8_0.gguf")).threads(1).parallel(1).build();
        server = new OpenAiServer(engine, OpenAiServer.Options.defaults().withPort(0)).start();
    }

    @AfterAll
    static void stop() {
        if (server != null) server.close();
        if (engine != null) engine.close();
    }

    @Test
    void everyRenderedObjectIsAKubernetesObjectWithoutUnknownFields() {
        for (String layout : LAYOUTS) {
            List<String> kinds = rendered.get(layout).stream().map(HasMetadata::getKind).sorted().toList();
            assertEquals(List.of("Deployment", "HorizontalPodAutoscaler", "PersistentVolumeClaim", "PodDisruptionBudget", "Service"), kinds, layout);
        }
    }

    @Test
    void theCheckRefusesAMisspelledField() throws Exception {
        String yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n"
                + "      terminationGracePeriod: 45\n      containers: [{name: x, image: x}]\n";
        AssertionError e = assertThrows(AssertionError.class, () -> parse(yaml, "a misspelled deployment"));
        assertTrue(e.getMessage().contains("spec.template.spec") && e.getMessage().contains("terminationGracePeriod"), e.getMessage());
        assertThrows(Exception.class, () -> parse(yaml.replace("terminationGracePeriod: 45", "terminationGracePeriodSeconds: soon"), "a mistyped one"));
    }

    @Test
    void theProbesAndTheScrapeAskRoutesTheServerAnswers() throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        for (String layout : LAYOUTS) {
            Deployment d = only(layout, Deployment.class);
            Container c = container(d);
            int port = c.getPorts().stream().filter(p -> "http".equals(p.getName())).findFirst().orElseThrow().getContainerPort();
            assertTrue(c.getArgs().contains("--port=" + port), layout + ": the server listens where the probes look: " + c.getArgs());
            for (Probe probe : List.of(c.getReadinessProbe(), c.getLivenessProbe(), c.getStartupProbe())) {
                HTTPGetAction get = probe.getHttpGet();
                assertEquals("http", get.getPort().getStrVal(), layout);
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(server.url() + get.getPath())).build(), HttpResponse.BodyHandlers.ofString());
                assertEquals(200, r.statusCode(), layout + ": GET " + get.getPath() + " on a ready server: " + r.body());
            }
            assertEquals("/health", c.getReadinessProbe().getHttpGet().getPath(), "readiness is the route that says warming_up and draining");
            assertEquals("/health/live", c.getLivenessProbe().getHttpGet().getPath(), "liveness stays up while warming up and draining");

            Map<String, String> scrape = d.getSpec().getTemplate().getMetadata().getAnnotations();
            assertEquals("true", scrape.get("prometheus.io/scrape"), layout);
            assertEquals(Integer.toString(port), scrape.get("prometheus.io/port"), layout);
            HttpResponse<String> metrics = http.send(HttpRequest.newBuilder(URI.create(server.url() + scrape.get("prometheus.io/path"))).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, metrics.statusCode());
            String hpaMetric = hpaMetric(layout);
            assertTrue(metrics.body().lines().anyMatch(l -> l.startsWith(hpaMetric + " ")), "the autoscaler's metric " + hpaMetric + " is scraped");
        }
    }

    @Test
    void theGracePeriodOutlastsThePreStopPauseAndTheDrainTimeout() {
        for (String layout : LAYOUTS) {
            Deployment d = only(layout, Deployment.class);
            Container c = container(d);
            Duration drain = serveOptions(c).drainTimeout();
            List<String> preStop = c.getLifecycle().getPreStop().getExec().getCommand();
            assertEquals("sleep", preStop.get(0), layout);
            long pause = Long.parseLong(preStop.get(1));
            long grace = d.getSpec().getTemplate().getSpec().getTerminationGracePeriodSeconds();
            assertTrue(grace > pause + drain.toSeconds(), layout + ": grace " + grace + " s, pre-stop " + pause + " s, drain " + drain);
        }
    }

    @Test
    void theBaseTakesOneGpuAndTheCpuOverlayNone() {
        Container gpu = container(only("base", Deployment.class));
        assertEquals(new Quantity("1"), gpu.getResources().getLimits().get("nvidia.com/gpu"));
        assertEquals(new Quantity("1"), gpu.getResources().getRequests().get("nvidia.com/gpu"));
        assertTrue(gpu.getArgs().contains("--backend=cuda"), gpu.getArgs().toString());

        Deployment cpuDeployment = only("overlays/cpu", Deployment.class);
        Container cpu = container(cpuDeployment);
        assertTrue(cpu.getArgs().contains("--backend=cpu"), cpu.getArgs().toString());
        assertFalse(cpu.getResources().getLimits().containsKey("nvidia.com/gpu"));
        assertFalse(cpu.getResources().getRequests().containsKey("nvidia.com/gpu"));
        List<?> tolerations = cpuDeployment.getSpec().getTemplate().getSpec().getTolerations();
        assertTrue(tolerations == null || tolerations.isEmpty(), "no GPU toleration on CPU nodes");

        for (String layout : LAYOUTS) {
            Container c = container(only(layout, Deployment.class));
            Quantity memory = c.getResources().getLimits().get("memory");
            assertEquals(memory, c.getResources().getRequests().get("memory"), layout + ": memory requested is memory allowed");
            long heap = heapBytes(c);
            assertTrue(heap < memory.getNumericalAmount().longValue(), layout + ": the heap fits the memory limit with room for the rest");
        }
    }

    @Test
    void runsAsTheImagesNonRootUserWithTheModelsReadOnly() throws Exception {
        Matcher uid = Pattern.compile("useradd [^\\n]*--uid (\\d+)").matcher(Files.readString(DockerfileTest.DOCKERFILE));
        assertTrue(uid.find(), "the Dockerfile gives its user a fixed id");
        for (String layout : LAYOUTS) {
            PodSpec pod = only(layout, Deployment.class).getSpec().getTemplate().getSpec();
            assertTrue(pod.getSecurityContext().getRunAsNonRoot(), layout);
            assertEquals(Long.parseLong(uid.group(1)), pod.getSecurityContext().getRunAsUser(), layout + ": the image's user");
            Container c = container(only(layout, Deployment.class));
            assertFalse(c.getSecurityContext().getAllowPrivilegeEscalation(), layout);
            VolumeMount models = c.getVolumeMounts().stream().filter(m -> m.getMountPath().equals("/models")).findFirst().orElseThrow();
            assertTrue(models.getReadOnly(), layout + ": models are mounted read-only");
            Volume volume = pod.getVolumes().stream().filter(v -> v.getName().equals(models.getName())).findFirst().orElseThrow();
            assertTrue(volume.getPersistentVolumeClaim().getReadOnly(), layout);
            assertEquals(only(layout, PersistentVolumeClaim.class).getMetadata().getName(), volume.getPersistentVolumeClaim().getClaimName());
            assertTrue(c.getArgs().stream().anyMatch(a -> a.startsWith("--model=/models/")), layout + ": the model comes from the volume");
            assertTrue(c.getImage().startsWith("tandem:") || c.getImage().endsWith("/tandem") || c.getImage().contains("/tandem:"),
                    layout + ": the image of docker/: " + c.getImage());
        }
    }

    @Test
    void serviceBudgetAndAutoscalerFitTheDeploymentAndTheAdapterRule() throws Exception {
        JsonNode adapter = YAML.readTree(KUBERNETES.resolve("prometheus-adapter/values.yaml").toFile());
        JsonNode rule = adapter.path("rules").path("custom").path(0);
        for (String layout : LAYOUTS) {
            Deployment d = only(layout, Deployment.class);
            Map<String, String> podLabels = d.getSpec().getTemplate().getMetadata().getLabels();
            assertEquals(d.getSpec().getSelector().getMatchLabels(), podLabels, layout);
            Service service = only(layout, Service.class);
            assertTrue(podLabels.entrySet().containsAll(service.getSpec().getSelector().entrySet()), layout + ": the Service selects the pods");
            assertEquals("http", service.getSpec().getPorts().getFirst().getTargetPort().getStrVal());
            PodDisruptionBudget budget = only(layout, PodDisruptionBudget.class);
            assertTrue(podLabels.entrySet().containsAll(budget.getSpec().getSelector().getMatchLabels().entrySet()), layout + ": the budget covers the pods");

            HorizontalPodAutoscaler hpa = only(layout, HorizontalPodAutoscaler.class);
            assertEquals("Deployment", hpa.getSpec().getScaleTargetRef().getKind());
            assertEquals(d.getMetadata().getName(), hpa.getSpec().getScaleTargetRef().getName());
            assertNull(d.getSpec().getReplicas(), layout + ": the autoscaler owns the replica count");
            assertTrue(hpa.getSpec().getMinReplicas() >= 2, layout + ": a rollout or a node drain keeps one replica serving");
            String metric = hpaMetric(layout);
            assertEquals(metric, rule.path("name").path("as").asText(), "the adapter publishes the metric the autoscaler reads");
            assertTrue(rule.path("seriesQuery").asText().startsWith(metric + "{"), rule.toString());
        }
    }

    private static String hpaMetric(String layout) {
        List<MetricSpec> metrics = only(layout, HorizontalPodAutoscaler.class).getSpec().getMetrics();
        assertEquals(1, metrics.size());
        assertEquals("Pods", metrics.getFirst().getType());
        return metrics.getFirst().getPods().getMetric().getName();
    }

    /** {@code tandem serve} with the container's arguments, parsed as the CLI parses them (an unknown option fails here). */
    private static ServeCommand serveOptions(Container c) {
        assertTrue(c.getCommand() == null || c.getCommand().isEmpty(), "the image's entry point runs tandem: " + c.getCommand());
        CommandLine.ParseResult parsed = new CommandLine(new Main()).parseArgs(c.getArgs().toArray(String[]::new));
        assertTrue(parsed.hasSubcommand());
        return (ServeCommand) parsed.subcommand().commandSpec().userObject();
    }

    /** -Xmx of JAVA_TOOL_OPTIONS, in bytes. */
    private static long heapBytes(Container c) {
        String options = c.getEnv().stream().filter(e -> e.getName().equals("JAVA_TOOL_OPTIONS")).findFirst().orElseThrow().getValue();
        Matcher m = Pattern.compile("-Xmx(\\d+)([kKmMgG])").matcher(options);
        assertTrue(m.find(), options);
        return Long.parseLong(m.group(1)) << switch (m.group(2).toLowerCase()) { case "k" -> 10; case "m" -> 20; default -> 30; };
    }

    private static Container container(Deployment d) {
        List<Container> containers = d.getSpec().getTemplate().getSpec().getContainers();
        assertEquals(1, containers.size());
        return containers.getFirst();
    }

    private static <T extends HasMetadata> T only(String layout, Class<T> kind) {
        List<T> found = rendered.get(layout).stream().filter(kind::isInstance).map(kind::cast).toList();
        assertEquals(1, found.size(), layout + ": one " + kind.getSimpleName());
        return found.getFirst();
    }

    /** What {@code kubectl kustomize dir} renders. Skipped without kubectl, unless TANDEM_REQUIRE_KUBECTL=1 (CI). */
    static String kustomize(Path dir) throws Exception {
        if (!onPath("kubectl")) {
            assertNotEquals("1", System.getenv("TANDEM_REQUIRE_KUBECTL"), "kubectl is not installed but TANDEM_REQUIRE_KUBECTL=1");
            assumeTrue(false, "kubectl is not installed: the Kubernetes manifests are not rendered or checked");
        }
        Process p = new ProcessBuilder("kubectl", "kustomize", dir.toString()).redirectErrorStream(false).start();
        byte[] out = p.getInputStream().readAllBytes();
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), "kubectl kustomize " + dir + ": " + err);
        return new String(out, StandardCharsets.UTF_8);
    }

    /** The documents of {@code yaml}, each read into its kind's class; fails naming every field the API does not know. */
    static List<HasMetadata> parse(String yaml, String where) throws Exception {
        List<HasMetadata> objects = new ArrayList<>();
        List<String> unknown = new ArrayList<>();
        for (JsonNode doc : YAML.readerFor(JsonNode.class).<JsonNode>readValues(yaml).readAll()) {
            if (doc.isNull() || doc.isMissingNode()) continue;
            String type = doc.path("apiVersion").asText() + "/" + doc.path("kind").asText();
            Class<? extends HasMetadata> kind = KINDS.get(type);
            assertNotNull(kind, where + ": an object of an unexpected kind " + type);
            HasMetadata o = YAML.treeToValue(doc, kind);
            unknownFields(o, doc.path("kind").asText(), unknown);
            objects.add(o);
        }
        if (!unknown.isEmpty()) fail(where + ": fields the Kubernetes API does not know: " + unknown);
        return objects;
    }

    /**
     * fabric8's classes keep a field they do not know in {@code additionalProperties} instead of failing: every such
     * map in the object tree must be empty.
     */
    private static void unknownFields(Object o, String path, List<String> out) throws Exception {
        if (o instanceof Map<?, ?> m) {
            for (Map.Entry<?, ?> e : m.entrySet()) unknownFields(e.getValue(), path + "." + e.getKey(), out);
            return;
        }
        if (o instanceof List<?> l) {
            for (int i = 0; i < l.size(); i++) unknownFields(l.get(i), path + "[" + i + "]", out);
            return;
        }
        if (o == null || !o.getClass().getName().startsWith("io.fabric8.kubernetes.api.model.")) return;
        for (Method getter : o.getClass().getMethods()) {
            String name = getter.getName();
            if (getter.getParameterCount() != 0 || Modifier.isStatic(getter.getModifiers()) || !name.startsWith("get")
                    || getter.getDeclaringClass() != o.getClass() || getter.getReturnType().isPrimitive() || getter.getReturnType() == BigDecimal.class) continue;
            Object value = getter.invoke(o);
            if (name.equals("getAdditionalProperties")) {
                if (value instanceof Map<?, ?> extra && !extra.isEmpty()) out.add(path + ": " + extra.keySet());
            } else {
                unknownFields(value, path + "." + Character.toLowerCase(name.charAt(3)) + name.substring(4), out);
            }
        }
    }

    private static boolean onPath(String cmd) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            if (Files.isExecutable(Path.of(dir, cmd))) return true;
        }
        return false;
    }
}
