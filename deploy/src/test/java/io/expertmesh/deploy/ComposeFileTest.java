package io.expertmesh.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.Yaml;

/**
 * deploy/compose/compose.yaml: checked by Docker's own parser when one is installed ({@code docker compose} or
 * {@code docker-compose}: {@code config -q}), and always by a schema check of the Compose specification's keys
 * that the file uses, plus the wiring (every variable an option of its command, depends_on and worker names).
 */
class ComposeFileTest {
    private static final Path COMPOSE = DeployFiles.ROOT.resolve("compose/compose.yaml");
    /** The TLS override, applied over {@link #COMPOSE}. */
    private static final Path COMPOSE_TLS = DeployFiles.ROOT.resolve("compose/compose.tls.yaml");
    // From the Compose specification (compose-spec.json): the top-level and service properties.
    private static final Set<String> TOP_LEVEL = Set.of("version", "name", "services", "networks", "volumes",
            "secrets", "configs", "include", "models");
    private static final Set<String> SERVICE_KEYS = Set.of("annotations", "attach", "build", "blkio_config",
            "cap_add", "cap_drop", "cgroup", "cgroup_parent", "command", "configs", "container_name", "cpu_count",
            "cpu_percent", "cpu_shares", "cpu_quota", "cpu_period", "cpu_rt_period", "cpu_rt_runtime", "cpus",
            "cpuset", "credential_spec", "depends_on", "deploy", "develop", "device_cgroup_rules", "devices", "dns",
            "dns_opt", "dns_search", "domainname", "entrypoint", "env_file", "environment", "expose", "extends",
            "external_links", "extra_hosts", "gpus", "group_add", "healthcheck", "hostname", "image", "init", "ipc",
            "isolation", "labels", "links", "logging", "mac_address", "mem_limit", "mem_reservation",
            "mem_swappiness", "memswap_limit", "network_mode", "networks", "oom_kill_disable", "oom_score_adj",
            "pid", "pids_limit", "platform", "ports", "privileged", "profiles", "pull_policy", "read_only",
            "restart", "runtime", "scale", "secrets", "security_opt", "shm_size", "stdin_open", "stop_grace_period",
            "stop_signal", "storage_opt", "sysctls", "tmpfs", "tty", "ulimits", "user", "userns_mode", "uts",
            "volumes", "volumes_from", "working_dir");
    private static final Set<String> HEALTHCHECK_KEYS = Set.of("disable", "interval", "retries", "test", "timeout",
            "start_period", "start_interval");
    private static final Set<String> DEPENDS_CONDITIONS = Set.of("service_started", "service_healthy",
            "service_completed_successfully");
    private static final Set<String> RESTART = Set.of("no", "always", "on-failure", "unless-stopped");

    private static Map<String, Object> load() throws IOException {
        return load(COMPOSE);
    }

    private static Map<String, Object> load(Path file) throws IOException {
        // SnakeYAML resolves the file's anchors and << merge keys, as Compose does.
        return new Yaml().load(Files.readString(file));
    }

    private static Map<String, Map<String, Object>> services() throws IOException {
        return services(COMPOSE);
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Map<String, Object>> services(Path file) throws IOException {
        return (Map<String, Map<String, Object>>) load(file).get("services");
    }

    @Test
    void compose_dockersOwnParser_acceptsIt_whenInstalled() throws Exception {
        List<String> config = composeConfig(List.of(COMPOSE), "-q");
        assertEquals("", String.join("\n", config));
    }

    /** With the TLS override: Compose accepts the merge, and the merged router and workers are TLS-configured. */
    @Test
    @SuppressWarnings("unchecked")
    void composeTls_dockersOwnParser_acceptsTheMerge_routerAndWorkersGetTls_whenInstalled() throws Exception {
        Map<String, Map<String, Object>> merged = (Map<String, Map<String, Object>>) new Yaml()
                .<Map<String, Object>>load(String.join("\n", composeConfig(List.of(COMPOSE, COMPOSE_TLS))))
                .get("services");
        for (var e : merged.entrySet()) {
            String command = ((List<String>) e.getValue().get("command")).getFirst();
            if (!command.equals("serve") && !command.equals("worker")) {
                continue;
            }
            Map<String, String> env = (Map<String, String>) e.getValue().get("environment");
            assertNotNull(env.get("EXPERTMESH_TLS_CERT"), e.getKey() + " serves TLS: " + env);
            assertNotNull(env.get("EXPERTMESH_PORT"), e.getKey() + " keeps the base's variables: " + env);
            List<String> test = (List<String>) ((Map<String, Object>) e.getValue().get("healthcheck")).get("test");
            assertTrue(test.contains("--tls-ca"), e.getKey() + " health check speaks TLS: " + test);
        }
    }

    /** {@code docker compose|docker-compose -f F... config ARGS}'s output lines; skips the test without either. */
    private static List<String> composeConfig(List<Path> files, String... args) throws Exception {
        List<String> cmd = null;
        for (List<String> candidate : List.of(List.of("docker", "compose"), List.of("docker-compose"))) {
            if (runs(candidate, "version")) {
                cmd = candidate;
                break;
            }
        }
        org.junit.jupiter.api.Assumptions.assumeTrue(cmd != null,
                "neither 'docker compose' nor 'docker-compose' is installed; the schema check below still runs");
        List<String> full = new ArrayList<>(cmd);
        for (Path f : files) {
            full.addAll(List.of("-f", f.toString()));
        }
        full.add("config");
        full.addAll(List.of(args));
        Process p = new ProcessBuilder(full).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), String.join(" ", full) + ":\n" + out + err);
        return out.isEmpty() ? List.of() : List.of(out.split("\n"));
    }

    private static boolean runs(List<String> cmd, String arg) {
        try {
            List<String> full = new ArrayList<>(cmd);
            full.add(arg);
            Process p = new ProcessBuilder(full).redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    @Test
    void compose_keysOfTheComposeSpecification() throws IOException {
        assertEquals(List.of(), specProblems(COMPOSE));
    }

    @Test
    void composeTls_keysOfTheComposeSpecification() throws IOException {
        assertEquals(List.of(), specProblems(COMPOSE_TLS));
    }

    /**
     * The TLS override: it only adds to services of the base file, its variables are options of their commands,
     * every serve and worker service gets TLS, and every file its variables and health checks name is mounted.
     */
    @Test
    @SuppressWarnings("unchecked")
    void composeTls_overridesBaseServices_variablesAreOptions_everyNamedFileMounted() throws IOException {
        Map<String, Map<String, Object>> base = services();
        Map<String, Map<String, Object>> tls = services(COMPOSE_TLS);
        List<String> problems = new ArrayList<>();
        for (var e : base.entrySet()) {
            String command = ((List<String>) e.getValue().get("command")).getFirst();
            if ((command.equals("serve") || command.equals("worker")) && !tls.containsKey(e.getKey())) {
                problems.add(e.getKey() + " (" + command + ") has no TLS settings");
            }
        }
        for (var e : tls.entrySet()) {
            String s = e.getKey();
            if (!base.containsKey(s)) {
                problems.add(s + " is not a service of compose.yaml");
                continue;
            }
            String command = ((List<String>) base.get(s).get("command")).getFirst();
            Map<String, String> env = (Map<String, String>) e.getValue().get("environment");
            problems.addAll(DeployFiles.unknownVariables(s, command, env));
            if (env.get("EXPERTMESH_TLS_CERT") == null || env.get("EXPERTMESH_TLS_KEY") == null) {
                problems.add(s + ": no EXPERTMESH_TLS_CERT/KEY");
            }
            if (command.equals("worker") && (env.get("EXPERTMESH_TLS_CLIENT_CA") == null
                    || env.get("EXPERTMESH_ALLOWED_CLIENTS") == null)) {
                problems.add(s + ": a worker needs mutual TLS and an allow list");
            }
            if (command.equals("serve") && env.get("EXPERTMESH_WORKER_TLS_CERT") == null) {
                problems.add(s + ": the router needs its certificate for the workers");
            }
            List<String> mounted = ((List<String>) e.getValue().get("volumes")).stream()
                    .map(v -> v.split(":")[1]).toList();
            List<String> named = new ArrayList<>(env.values());
            named.addAll((List<String>) ((Map<String, Object>) e.getValue().get("healthcheck")).get("test"));
            for (String n : named) {
                if (n.startsWith("/etc/expertmesh/") && !mounted.contains(n)) {
                    problems.add(s + ": " + n + " is not mounted (mounts: " + mounted + ")");
                }
            }
        }
        assertEquals(List.of(), problems);
    }

    @SuppressWarnings("unchecked")
    private static List<String> specProblems(Path file) throws IOException {
        Map<String, Object> doc = load(file);
        List<String> problems = new ArrayList<>();
        for (String k : doc.keySet()) {
            if (!TOP_LEVEL.contains(k) && !k.startsWith("x-")) {
                problems.add("top-level key " + k);
            }
        }
        for (var e : services(file).entrySet()) {
            String s = e.getKey();
            for (String k : e.getValue().keySet()) {
                if (!SERVICE_KEYS.contains(k) && !k.startsWith("x-")) {
                    problems.add(s + ": unknown service key " + k);
                }
            }
            Object hc = e.getValue().get("healthcheck");
            if (!(hc instanceof Map<?, ?> h)) {
                problems.add(s + ": no healthcheck");
            } else {
                for (Object k : h.keySet()) {
                    if (!HEALTHCHECK_KEYS.contains(k)) {
                        problems.add(s + ": unknown healthcheck key " + k);
                    }
                }
                if (!(h.get("test") instanceof List<?> test) || !"CMD".equals(test.getFirst())) {
                    problems.add(s + ": healthcheck test must be an exec list starting with CMD");
                }
            }
            Object restart = e.getValue().get("restart");
            if (restart != null && !RESTART.contains(restart.toString())) {
                problems.add(s + ": restart " + restart);
            }
            if (!(e.getValue().get("environment") instanceof Map<?, ?> env)) {
                problems.add(s + ": environment must be a mapping");
            } else {
                env.values().forEach(v -> {
                    if (!(v instanceof String)) {
                        problems.add(s + ": environment values must be strings (quote numbers): " + v);
                    }
                });
            }
        }
        return problems;
    }

    @Test
    @SuppressWarnings("unchecked")
    void compose_wiring_variablesAreOptions_routerDependsOnHealthyWorkersAndCache() throws IOException {
        Map<String, Map<String, Object>> services = services();
        List<String> problems = new ArrayList<>();
        for (var e : services.entrySet()) {
            String command = ((List<String>) e.getValue().get("command")).getFirst();
            problems.addAll(DeployFiles.unknownVariables(e.getKey(), command,
                    (Map<String, ?>) e.getValue().get("environment")));
        }
        assertEquals(List.of(), problems);
        Map<String, Object> router = services.get("router");
        Map<String, String> env = (Map<String, String>) router.get("environment");
        Map<String, Map<String, String>> deps = (Map<String, Map<String, String>>) router.get("depends_on");
        for (String worker : env.get("EXPERTMESH_WORKERS").split(",")) {
            String host = worker.substring(0, worker.indexOf(':'));
            Map<String, Object> w = services.get(host);
            assertNotNull(w, "router names worker " + host + ", a service of the file");
            assertEquals("worker", ((List<?>) w.get("command")).getFirst());
            assertEquals(worker.substring(worker.indexOf(':') + 1),
                    ((Map<String, String>) w.get("environment")).get("EXPERTMESH_PORT"), host + " port");
            assertEquals("service_healthy", deps.get(host).get("condition"), "router waits for " + host);
        }
        for (String member : env.get("EXPERTMESH_KV_MEMBERS").split(",")) {
            String host = member.substring(0, member.indexOf(':'));
            assertEquals("cache-node", ((List<?>) services.get(host).get("command")).getFirst());
            assertEquals("service_healthy", deps.get(host).get("condition"), "router waits for " + host);
        }
        deps.values().forEach(d -> assertTrue(DEPENDS_CONDITIONS.contains(d.get("condition"))));
    }

    /**
     * Two routers: the same workers, cache tier and secret (so they share one expert placement and the KV blocks),
     * each on its own host ports.
     */
    @Test
    @SuppressWarnings("unchecked")
    void compose_twoRouters_shareWorkersCacheAndSecret_ownHostPorts() throws IOException {
        Map<String, Map<String, Object>> services = services();
        List<String> routers = services.entrySet().stream()
                .filter(e -> ((List<String>) e.getValue().get("command")).getFirst().equals("serve"))
                .map(Map.Entry::getKey).toList();
        assertEquals(List.of("router", "router-1"), routers);
        Map<String, Object> a = services.get("router");
        Map<String, Object> b = services.get("router-1");
        assertEquals(a.get("environment"), b.get("environment"));
        assertEquals(a.get("secrets"), b.get("secrets"));
        assertEquals(a.get("depends_on"), b.get("depends_on"));
        List<String> hostPorts = new ArrayList<>();
        for (Map<String, Object> r : List.of(a, b)) {
            for (String p : (List<String>) r.get("ports")) {
                hostPorts.add(p.substring(0, p.lastIndexOf(':')));
            }
        }
        assertEquals(hostPorts.size(), hostPorts.stream().distinct().count(), "no host port twice: " + hostPorts);
        Map<String, Map<String, Object>> tls = services(COMPOSE_TLS);
        assertEquals(tls.get("router").get("environment"), tls.get("router-1").get("environment"),
                "both routers get TLS alike");
    }

    /** cache-0 is on the compose network, not loopback: the router signs its blocks with a compose secret. */
    @Test
    @SuppressWarnings("unchecked")
    void compose_router_kvSecretFileIsAComposeSecretOfAnIgnoredFile() throws IOException {
        Map<String, Object> router = services().get("router");
        String file = ((Map<String, String>) router.get("environment")).get("EXPERTMESH_KV_SECRET_FILE");
        assertNotNull(file, "a router of a networked KV tier needs EXPERTMESH_KV_SECRET_FILE");
        String name = file.substring("/run/secrets/".length());
        assertEquals("/run/secrets/" + name, file);
        assertTrue(((List<String>) router.get("secrets")).contains(name), "the router mounts secret " + name);
        Map<String, Map<String, String>> secrets = (Map<String, Map<String, String>>) load(COMPOSE).get("secrets");
        String source = secrets.get(name).get("file");
        String ignored = Files.readString(DeployFiles.ROOT.resolve("../.gitignore"));
        assertTrue(ignored.contains("/deploy/compose/" + source.replaceFirst("^\\./", "")),
                source + " is git-ignored: no secret is committed");
    }
}
