package io.expertmesh.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.StatefulSet;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** deploy/k8s: every manifest strictly valid, wired together, and the GPU overlay renders (with kubectl). */
class KubernetesManifestsTest {
    private static final Path K8S = DeployFiles.ROOT.resolve("k8s");
    private static final Set<String> KUSTOMIZATION_KEYS = Set.of("apiVersion", "kind", "resources", "patches",
            "labels", "namespace", "images", "configMapGenerator", "commonAnnotations");

    /** The manifests of the base (every file but kustomization.yaml), strictly parsed. */
    private static List<HasMetadata> base() throws IOException {
        List<HasMetadata> all = new ArrayList<>();
        for (Path p : DeployFiles.yamlFiles(K8S.resolve("base"))) {
            if (!p.getFileName().toString().equals("kustomization.yaml")) {
                all.addAll(StrictKubernetesYaml.parseAll(Files.readString(p)));
            }
        }
        return all;
    }

    private static <T extends HasMetadata> T find(List<HasMetadata> all, Class<T> type, String name) {
        return all.stream().filter(type::isInstance).map(type::cast).filter(o -> o.getMetadata().getName().equals(name))
                .findFirst().orElseThrow(() -> new AssertionError("no " + type.getSimpleName() + " " + name));
    }

    @Test
    void everyManifest_parsesStrictlyIntoTheKubernetesModel() throws IOException {
        List<String> problems = new ArrayList<>();
        int objects = 0;
        for (Path p : DeployFiles.yamlFiles(K8S)) {
            if (p.getFileName().toString().equals("kustomization.yaml")) {
                continue;
            }
            try {
                objects += StrictKubernetesYaml.parseAll(Files.readString(p)).size();
            } catch (IOException | IllegalArgumentException e) {
                problems.add(K8S.relativize(p) + ": " + e.getMessage());
            }
        }
        assertEquals(List.of(), problems);
        assertTrue(objects >= 8, "objects parsed: " + objects);
    }

    @Test
    void strictParsing_misspeltField_fails() {
        String bad = """
                apiVersion: apps/v1
                kind: StatefulSet
                metadata: {name: x}
                spec:
                  template:
                    spec:
                      containers:
                        - name: worker
                          readinesProbe: {grpc: {port: 50061}}
                """;
        Exception e = assertThrows(Exception.class, () -> StrictKubernetesYaml.parseAll(bad));
        assertTrue(e.getMessage().contains("readinesProbe"), e.getMessage());
    }

    @Test
    void workers_statefulSetBehindHeadlessService_routerNamesEachReplica() throws IOException {
        List<HasMetadata> all = base();
        StatefulSet workers = find(all, StatefulSet.class, "expert-worker");
        Service headless = find(all, Service.class, workers.getSpec().getServiceName());
        assertEquals("None", headless.getSpec().getClusterIP());
        assertEquals(workers.getSpec().getSelector().getMatchLabels(), headless.getSpec().getSelector());
        int port = headless.getSpec().getPorts().getFirst().getPort();

        Deployment router = find(all, Deployment.class, "expertmesh-router");
        Container routerContainer = router.getSpec().getTemplate().getSpec().getContainers().getFirst();
        List<String> expected = new ArrayList<>();
        for (int i = 0; i < workers.getSpec().getReplicas(); i++) {
            expected.add(workers.getMetadata().getName() + "-" + i + "." + headless.getMetadata().getName() + ":" + port);
        }
        assertEquals(String.join(",", expected), env(routerContainer).get("EXPERTMESH_WORKERS"));
        // one init container waits for each worker
        List<String> waited = router.getSpec().getTemplate().getSpec().getInitContainers().stream()
                .map(c -> c.getArgs().get(c.getArgs().indexOf("--target") + 1)).toList();
        assertEquals(expected, waited);
    }

    @Test
    void routers_twoOrMoreReplicas_rollingUpdate_behindAHeadlessServiceForClientSideBalancing() throws IOException {
        List<HasMetadata> all = base();
        Deployment router = find(all, Deployment.class, "expertmesh-router");
        assertTrue(router.getSpec().getReplicas() >= 2, "the attention side scales out: " + router.getSpec());
        assertEquals("RollingUpdate", router.getSpec().getStrategy().getType(),
                "routers share the placement, so old and new may run side by side");
        assertEquals(0, router.getSpec().getStrategy().getRollingUpdate().getMaxUnavailable().getIntVal());
        Service headless = find(all, Service.class, "expertmesh-routers");
        assertEquals("None", headless.getSpec().getClusterIP(), "DNS answers every router's address");
        assertEquals(router.getSpec().getSelector().getMatchLabels(), headless.getSpec().getSelector());
        Container c = router.getSpec().getTemplate().getSpec().getContainers().getFirst();
        assertEquals(env(c).get("EXPERTMESH_PORT"), String.valueOf(headless.getSpec().getPorts().getFirst().getPort()));
        // the placement is shared through the cache tier, which every router must reach as a client
        assertEquals("hazelcast-client", env(c).get("EXPERTMESH_KV_STORE"));
    }

    @Test
    void cacheMembers_listEveryReplicaByStableName_inBothTheMembersAndTheRouter() throws IOException {
        List<HasMetadata> all = base();
        StatefulSet cache = find(all, StatefulSet.class, "expertmesh-cache");
        Service headless = find(all, Service.class, cache.getSpec().getServiceName());
        assertEquals("None", headless.getSpec().getClusterIP());
        List<String> expected = new ArrayList<>();
        for (int i = 0; i < cache.getSpec().getReplicas(); i++) {
            expected.add("expertmesh-cache-" + i + "." + headless.getMetadata().getName() + ":5801");
        }
        Container member = cache.getSpec().getTemplate().getSpec().getContainers().getFirst();
        assertEquals(String.join(",", expected), env(member).get("EXPERTMESH_MEMBERS"));
        Container router = find(all, Deployment.class, "expertmesh-router").getSpec().getTemplate().getSpec()
                .getContainers().getFirst();
        assertEquals(String.join(",", expected), env(router).get("EXPERTMESH_KV_MEMBERS"));
        assertEquals("hazelcast-client", env(router).get("EXPERTMESH_KV_STORE"));
    }

    /** The cache tier is on the pod network: the router signs its blocks with a secret mounted from a Secret. */
    @Test
    void router_kvSecretFileUnderAMountOfASecretVolume() throws IOException {
        PodSpec pod = find(base(), Deployment.class, "expertmesh-router").getSpec().getTemplate().getSpec();
        Container router = pod.getContainers().getFirst();
        String file = env(router).get("EXPERTMESH_KV_SECRET_FILE");
        assertNotNull(file, "a router of a pod-network KV tier needs EXPERTMESH_KV_SECRET_FILE");
        var mount = router.getVolumeMounts().stream().filter(m -> file.startsWith(m.getMountPath() + "/"))
                .findFirst().orElseThrow(() -> new AssertionError(file + " is under no mount of the router"));
        var volume = pod.getVolumes().stream().filter(v -> v.getName().equals(mount.getName())).findFirst()
                .orElseThrow(() -> new AssertionError("no volume " + mount.getName()));
        assertNotNull(volume.getSecret(), "the secret comes from a Secret, not the image or a ConfigMap");
        assertEquals(file.substring(file.lastIndexOf('/') + 1), "kv-secret");
    }

    @Test
    void everyContainer_envNamesOptionsOfItsCommand_grpcProbesOnGrpcServers_nonRoot() throws IOException {
        List<String> problems = new ArrayList<>();
        for (HasMetadata o : base()) {
            PodSpec pod = podSpec(o);
            if (pod == null) {
                continue;
            }
            assertTrue(pod.getSecurityContext().getRunAsNonRoot(), o.getMetadata().getName() + " runs as non-root");
            List<Container> containers = new ArrayList<>(pod.getContainers());
            containers.addAll(pod.getInitContainers());
            for (Container c : containers) {
                String command = c.getArgs().getFirst();
                problems.addAll(DeployFiles.unknownVariables(o.getMetadata().getName() + "/" + c.getName(), command,
                        env(c)));
                assertFalse(c.getSecurityContext().getAllowPrivilegeEscalation(), c.getName());
                if (command.equals("serve") || command.equals("worker")) {
                    assertNotNull(c.getReadinessProbe().getGrpc(), c.getName() + " readiness is a gRPC probe");
                    assertNotNull(c.getLivenessProbe().getGrpc(), c.getName() + " liveness is a gRPC probe");
                    assertNotNull(c.getStartupProbe().getGrpc(), c.getName() + " startup is a gRPC probe");
                    assertEquals(Integer.valueOf(env(c).get("EXPERTMESH_PORT")), c.getReadinessProbe().getGrpc().getPort(),
                            c.getName() + " probes the port it serves");
                    assertNotNull(c.getResources().getRequests().get("memory"), c.getName() + " requests memory");
                }
                String metrics = env(c).get("EXPERTMESH_METRICS_PORT");
                if (command.equals("serve") || command.equals("worker")) {
                    // every server exposes Prometheus metrics on a declared port that the pod's scrape annotation names
                    assertNotNull(metrics, c.getName() + " serves metrics");
                    assertTrue(c.getPorts().stream().anyMatch(p -> "metrics".equals(p.getName())
                            && Integer.valueOf(metrics).equals(p.getContainerPort())), c.getName() + " declares port metrics");
                    Map<String, String> annotations = podAnnotations(o);
                    assertEquals("true", annotations.get("prometheus.io/scrape"), o.getMetadata().getName());
                    assertEquals(metrics, annotations.get("prometheus.io/port"), o.getMetadata().getName());
                }
                String http = env(c).get("EXPERTMESH_HTTP_PORT");
                if (http != null) {
                    // the HTTP API's port is the container's port named http, which the Service exposes
                    assertTrue(c.getPorts().stream().anyMatch(p -> "http".equals(p.getName())
                            && Integer.valueOf(http).equals(p.getContainerPort())), c.getName() + " declares port http");
                    assertTrue(base().stream().filter(x -> x instanceof Service)
                            .map(x -> (Service) x)
                            .anyMatch(svc -> svc.getSpec().getPorts().stream().anyMatch(sp -> sp.getTargetPort() != null
                                    && "http".equals(sp.getTargetPort().getStrVal()))),
                            "a Service exposes the HTTP API of " + c.getName());
                }
            }
        }
        assertEquals(List.of(), problems);
    }

    @Test
    void kustomizations_knownKeys_referencedFilesExist() throws IOException {
        for (Path k : DeployFiles.yamlFiles(K8S)) {
            if (!k.getFileName().toString().equals("kustomization.yaml")) {
                continue;
            }
            JsonNode doc = new YAMLMapper().readTree(k.toFile());
            doc.fieldNames().forEachRemaining(f -> assertTrue(KUSTOMIZATION_KEYS.contains(f), k + ": unknown key " + f));
            List<String> refs = new ArrayList<>();
            doc.path("resources").forEach(r -> refs.add(r.asText()));
            doc.path("patches").forEach(p -> refs.add(p.path("path").asText()));
            assertFalse(refs.isEmpty(), k + " lists something");
            for (String r : refs) {
                assertTrue(Files.exists(k.getParent().resolve(r)), k + ": " + r + " does not exist");
            }
        }
    }

    /** With kubectl (it bundles kustomize) the overlays render, and the render is strictly valid too. */
    @Test
    void kustomize_gpuOverlay_givesWorkersOneGpuEach_baseNone() throws Exception {
        assumeTrue(kubectlAvailable(), "kubectl not installed: the render check is skipped");
        StatefulSet gpu = find(StrictKubernetesYaml.parseAll(kustomize(K8S.resolve("overlays/gpu"))),
                StatefulSet.class, "expert-worker");
        Container worker = gpu.getSpec().getTemplate().getSpec().getContainers().getFirst();
        assertEquals(new Quantity("1"), worker.getResources().getLimits().get("nvidia.com/gpu"));
        assertEquals("true", gpu.getSpec().getTemplate().getSpec().getNodeSelector().get("nvidia.com/gpu.present"));
        assertNotNull(worker.getReadinessProbe().getGrpc(), "the patch keeps the base's probes");
        List<HasMetadata> base = StrictKubernetesYaml.parseAll(kustomize(K8S.resolve("base")));
        Container cpuWorker = find(base, StatefulSet.class, "expert-worker").getSpec().getTemplate().getSpec()
                .getContainers().getFirst();
        assertFalse(cpuWorker.getResources().getLimits().containsKey("nvidia.com/gpu"));
        assertEquals(base.size(), StrictKubernetesYaml.parseAll(kustomize(K8S.resolve("overlays/gpu"))).size());
    }

    /** Every container of a render runs a registry-qualified image (set by kustomize images:, not in the manifests). */
    private static void assertRegistryImages(List<HasMetadata> render, String what) {
        for (HasMetadata o : render) {
            PodSpec pod = podSpec(o);
            if (pod == null) {
                continue;
            }
            List<Container> containers = new ArrayList<>(pod.getContainers());
            containers.addAll(pod.getInitContainers());
            for (Container c : containers) {
                String host = c.getImage().split("/")[0];
                assertTrue(c.getImage().contains("/") && (host.contains(".") || host.contains(":")),
                        what + ": " + o.getMetadata().getName() + "/" + c.getName() + " runs " + c.getImage());
                assertTrue(c.getImage().matches(".*:[A-Za-z0-9._-]+$"), "a tag: " + c.getImage());
            }
        }
    }

    @Test
    void kustomize_baseAndOverlays_everyImageRegistryQualified() throws Exception {
        assumeTrue(kubectlAvailable(), "kubectl not installed: the render check is skipped");
        for (String dir : List.of("base", "overlays/gpu", "overlays/tls", "overlays/model-pvc")) {
            assertRegistryImages(StrictKubernetesYaml.parseAll(kustomize(K8S.resolve(dir))), dir);
        }
    }

    @Test
    void kustomize_gpuOverlay_workersRunCudaFromTheGpuImage_routerStaysOnTheCpuImage() throws Exception {
        assumeTrue(kubectlAvailable(), "kubectl not installed: the render check is skipped");
        List<HasMetadata> gpu = StrictKubernetesYaml.parseAll(kustomize(K8S.resolve("overlays/gpu")));
        Container worker = find(gpu, StatefulSet.class, "expert-worker").getSpec().getTemplate().getSpec()
                .getContainers().getFirst();
        assertEquals("cuda", env(worker).get("EXPERTMESH_DEVICE"), "worker --device cuda");
        assertTrue(worker.getImage().contains("/expertmesh-gpu:"), worker.getImage());
        assertEquals(List.of(), DeployFiles.unknownVariables("gpu worker", "worker", env(worker)));
        Container router = find(gpu, Deployment.class, "expertmesh-router").getSpec().getTemplate().getSpec()
                .getContainers().getFirst();
        assertFalse(router.getImage().contains("gpu"), router.getImage());
        assertFalse(env(router).containsKey("EXPERTMESH_DEVICE"));
    }

    @Test
    void kustomize_modelPvcOverlay_routerAndWorkersMountTheClaimReadOnlyAndLoadIt() throws Exception {
        assumeTrue(kubectlAvailable(), "kubectl not installed: the render check is skipped");
        List<HasMetadata> render = StrictKubernetesYaml.parseAll(kustomize(K8S.resolve("overlays/model-pvc")));
        var claim = find(render, io.fabric8.kubernetes.api.model.PersistentVolumeClaim.class, "expertmesh-model");
        assertEquals(List.of("ReadOnlyMany"), claim.getSpec().getAccessModes());
        for (HasMetadata o : List.of(find(render, Deployment.class, "expertmesh-router"),
                find(render, StatefulSet.class, "expert-worker"))) {
            PodSpec pod = podSpec(o);
            var volume = pod.getVolumes().stream().filter(v -> v.getPersistentVolumeClaim() != null).findFirst()
                    .orElseThrow(() -> new AssertionError(o.getMetadata().getName() + " has no claim volume"));
            assertEquals("expertmesh-model", volume.getPersistentVolumeClaim().getClaimName());
            assertTrue(volume.getPersistentVolumeClaim().getReadOnly());
            Container c = pod.getContainers().getFirst();
            String model = env(c).get("EXPERTMESH_MODEL");
            assertEquals("/models/model", model, o.getMetadata().getName());
            var mount = c.getVolumeMounts().stream().filter(m -> m.getName().equals(volume.getName())).findFirst()
                    .orElseThrow();
            assertEquals(model, mount.getMountPath());
            assertTrue(mount.getReadOnly());
            assertEquals(List.of(), DeployFiles.unknownVariables(o.getMetadata().getName(),
                    c.getArgs().getFirst(), env(c)));
        }
    }

    /**
     * The TLS overlay's patches without kubectl: each patched container is one of the base's, and its variables
     * are options of that container's command.
     */
    @Test
    void tlsOverlay_patchedContainersExistInTheBase_variablesAreOptions() throws IOException {
        List<HasMetadata> base = base();
        List<String> problems = new ArrayList<>();
        int patched = 0;
        for (Path p : DeployFiles.yamlFiles(K8S.resolve("overlays/tls"))) {
            if (p.getFileName().toString().equals("kustomization.yaml")) {
                continue;
            }
            for (HasMetadata patch : StrictKubernetesYaml.parseAll(Files.readString(p))) {
                PodSpec baseSpec = podSpec(find(base, patch.getClass(), patch.getMetadata().getName()));
                List<Container> baseContainers = new ArrayList<>(baseSpec.getContainers());
                baseContainers.addAll(baseSpec.getInitContainers());
                PodSpec spec = podSpec(patch);
                List<Container> containers = new ArrayList<>(spec.getContainers());
                containers.addAll(spec.getInitContainers());
                for (Container c : containers) {
                    Container b = baseContainers.stream().filter(x -> x.getName().equals(c.getName())).findFirst()
                            .orElse(null);
                    if (b == null) {
                        problems.add(p.getFileName() + ": container " + c.getName() + " is not in the base");
                        continue;
                    }
                    patched++;
                    problems.addAll(DeployFiles.unknownVariables(p.getFileName() + "/" + c.getName(),
                            b.getArgs().getFirst(), env(c)));
                }
            }
        }
        assertEquals(List.of(), problems);
        assertEquals(4, patched, "router, its two init containers, worker");
    }

    /**
     * The TLS overlay rendered (with kubectl): the same objects as the base; routers and workers serve TLS; every
     * probe is an exec of {@code expertmesh health} over TLS (a gRPC probe cannot do TLS) with a timeout a JVM start
     * fits in; the init containers wait over mutual TLS; every file named is under a mount of a volume of the pod.
     */
    @Test
    void kustomize_tlsOverlay_tlsEnv_execHealthProbesOverTls_everyNamedFileMounted() throws Exception {
        assumeTrue(kubectlAvailable(), "kubectl not installed: the render check is skipped");
        List<HasMetadata> tls = StrictKubernetesYaml.parseAll(kustomize(K8S.resolve("overlays/tls")));
        assertEquals(base().size(), tls.size());
        List<String> problems = new ArrayList<>();
        int servers = 0;
        for (HasMetadata o : tls) {
            PodSpec pod = podSpec(o);
            if (pod == null) {
                continue;
            }
            Set<String> volumes = new java.util.HashSet<>();
            pod.getVolumes().forEach(v -> volumes.add(v.getName()));
            List<Container> containers = new ArrayList<>(pod.getContainers());
            containers.addAll(pod.getInitContainers());
            for (Container c : containers) {
                String where = o.getMetadata().getName() + "/" + c.getName();
                String command = c.getArgs().getFirst();
                problems.addAll(DeployFiles.unknownVariables(where, command, env(c)));
                List<String> named = new ArrayList<>(env(c).values());
                named.addAll(c.getArgs());
                if (command.equals("serve") || command.equals("worker")) {
                    servers++;
                    if (env(c).get("EXPERTMESH_TLS_CERT") == null) {
                        problems.add(where + ": no EXPERTMESH_TLS_CERT");
                    }
                    if (command.equals("worker") && env(c).get("EXPERTMESH_ALLOWED_CLIENTS") == null) {
                        problems.add(where + ": a worker without an allow list");
                    }
                    for (var probe : List.of(c.getStartupProbe(), c.getReadinessProbe(), c.getLivenessProbe())) {
                        if (probe.getGrpc() != null || probe.getExec() == null) {
                            problems.add(where + ": a probe that is not exec only: " + probe);
                            continue;
                        }
                        List<String> cmd = probe.getExec().getCommand();
                        named.addAll(cmd);
                        int target = cmd.indexOf("--target");
                        if (!cmd.contains("health") || !cmd.contains("--tls-ca") || target < 0
                                || !cmd.get(target + 1).endsWith(":" + env(c).get("EXPERTMESH_PORT"))) {
                            problems.add(where + ": probe is not health over TLS on its port: " + cmd);
                        }
                        if (probe.getTimeoutSeconds() == null || probe.getTimeoutSeconds() < 5) {
                            problems.add(where + ": exec probe timeout " + probe.getTimeoutSeconds() + " s");
                        }
                    }
                } else if (command.equals("health") && !c.getArgs().contains("--tls-cert")) {
                    problems.add(where + ": waits for a mutual-TLS worker without a certificate: " + c.getArgs());
                }
                List<String> mounts = c.getVolumeMounts().stream().map(m -> m.getMountPath() + "/").toList();
                c.getVolumeMounts().forEach(m -> {
                    if (!volumes.contains(m.getName())) {
                        problems.add(where + ": mounts " + m.getName() + ", not a volume of the pod");
                    }
                });
                for (String n : named) {
                    if (n != null && n.startsWith("/etc/expertmesh/") && mounts.stream().noneMatch(n::startsWith)) {
                        problems.add(where + ": " + n + " is under no mount " + mounts);
                    }
                }
            }
        }
        assertEquals(List.of(), problems);
        assertEquals(2, servers, "the router and the worker StatefulSet");
    }

    private static boolean kubectlAvailable() {
        try {
            Process p = new ProcessBuilder("kubectl", "version", "--client").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    private static String kustomize(Path dir) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("kubectl", "kustomize", dir.toString()).start();
        byte[] err = new byte[0];
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        err = p.getErrorStream().readAllBytes();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "kubectl kustomize finished");
        assertEquals(0, p.exitValue(), "kubectl kustomize " + dir + ": " + new String(err, StandardCharsets.UTF_8));
        return out;
    }

    private static PodSpec podSpec(HasMetadata o) {
        if (o instanceof Deployment d) {
            return d.getSpec().getTemplate().getSpec();
        }
        if (o instanceof StatefulSet s) {
            return s.getSpec().getTemplate().getSpec();
        }
        return null;
    }

    private static Map<String, String> podAnnotations(HasMetadata o) {
        var template = o instanceof Deployment d ? d.getSpec().getTemplate() : ((StatefulSet) o).getSpec().getTemplate();
        Map<String, String> a = template.getMetadata().getAnnotations();
        return a == null ? Map.of() : a;
    }

    private static Map<String, String> env(Container c) {
        Map<String, String> env = new LinkedHashMap<>();
        for (EnvVar v : c.getEnv()) {
            env.put(v.getName(), v.getValue());
        }
        return env;
    }
}
