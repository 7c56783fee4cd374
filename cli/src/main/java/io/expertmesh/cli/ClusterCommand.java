package io.expertmesh.cli;

import io.expertmesh.cli.cluster.ChildExit;
import io.expertmesh.cli.cluster.ChildSpec;
import io.expertmesh.cli.cluster.ClusterPlan;
import io.expertmesh.cli.cluster.ClusterTls;
import io.expertmesh.cli.cluster.JavaCommand;
import io.expertmesh.cli.cluster.ManagedChild;
import io.expertmesh.cli.cluster.Readiness;
import io.expertmesh.cli.cluster.RestartPolicy;
import io.expertmesh.cli.cluster.SupervisedChild;
import io.expertmesh.cli.cluster.Supervisor;
import io.expertmesh.kvcache.KvSecret;
import io.expertmesh.security.BearerTokens;
import io.grpc.ChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code expertmesh cluster}: a whole cluster on this machine, as child processes of this one: cache nodes,
 * workers holding no experts, and one router (or several, sharing one placement through the cache tier) that
 * assigns the routed experts to them. Forwards every child's
 * output with a prefix, restarts a child that dies (with a growing wait; the router takes a restarted worker back
 * and gives it experts again), and stops them all (router first, so it drains while the workers still answer) on
 * SIGINT/SIGTERM or when a child keeps crashing.
 */
@Command(name = "cluster", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Run a router (or several sharing one expert placement), N expert workers and the KV cache "
                + "tier on this machine as child processes; prints the routers' endpoints, restarts a child that "
                + "dies, and stops every child on Ctrl-C or when one keeps crashing.",
            "Child output is forwarded to stderr as [router] ..., [worker-0] ..., [cache-0] ...."},
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {"1:a child process kept crashing (more than --max-restarts exits within "
                + "--restart-window-seconds), or did not become ready",
            "2:bad arguments",
            "130/143:stopped by SIGINT/SIGTERM (every child stopped)"})
final class ClusterCommand implements Callable<Integer> {
    static final int CHILD_FAILED = 1;

    // Loopback by default: without --tls-dir nothing here authenticates a caller, so the router, the workers and
    // the cache tier must not be reachable from other machines unless asked for.
    @Option(names = "--host", paramLabel = "ADDRESS",
            description = "The address every child binds and the others reach it at (default 127.0.0.1: this "
                    + "machine only). Another address exposes the router, the workers and the cache tier to the "
                    + "network: use --tls-dir and --auth-tokens then.")
    String host = "127.0.0.1";

    @Option(names = "--model", paramLabel = "DIR",
            description = "Hugging Face model directory. Default: the built-in model (trained, English).")
    Path model;

    @Option(names = "--random-model",
            description = "Instead of --model: the random-weight model with the real DeepSeek-V3 tokenizer.")
    boolean randomModel;

    @Option(names = "--workers", paramLabel = "N", description = "Expert worker processes (default 2).")
    int workers = 2;

    @Option(names = "--port", paramLabel = "P", description = "The router's gRPC port (default 50051; 0 = a free port).")
    int port = 50051;

    // Data-parallel attention: every router runs the whole model but the routed experts, and they share one
    // expert placement (and the KV blocks) through the cache tier, so a client spreads its calls over them.
    @Option(names = "--routers", paramLabel = "N",
            description = "Router processes sharing the workers and one expert placement through the cache tier "
                    + "(default 1). The first listens on --port, the others on free ports; the ready line names "
                    + "them all. Needs --cache-nodes >= 1.")
    int routers = 1;

    // Default 1: a standalone member that the router reaches as a Hazelcast client is the topology of the
    // compose and Kubernetes deployments, so the default local run exercises the same path, and the tier (its
    // blocks, its heap) lives outside the router's JVM. 0 keeps the tier in the router (serve's embedded member).
    @Option(names = "--cache-nodes", paramLabel = "K",
            description = "KV cache tier members (default 1; 0 = the router's embedded member).")
    int cacheNodes = 1;

    @Option(names = "--redundant-experts", paramLabel = "R",
            description = "Passed to the router: extra replicas of routed experts (default: the router's).")
    Integer redundantExperts;

    // All the processes share this machine's cores: each takes an equal part by default instead of all of them.
    @Option(names = "--threads", paramLabel = "N",
            description = "Compute threads of each process (default: cores / (workers + 1), at least 1).")
    Integer threads;

    @Option(names = "--quantize", paramLabel = "none|int8|int4",
            description = "Passed to the router and the workers: how projection weights are stored (default none).")
    String quantize = "none";

    @Option(names = "--drain-grace-seconds", paramLabel = "S",
            description = "On stop, how long the router's running requests may finish (default 30).")
    long drainGraceSeconds = 30;

    @Option(names = "--startup-timeout-seconds", paramLabel = "S",
            description = "How long each process may take to become ready (default 600).")
    long startupTimeoutSeconds = 600;

    // A supervisor's usual answer to a dead child: the router already survives a worker or the cache tier going
    // away, so restarting the child turns the fault into a short degradation instead of an outage.
    @Option(names = "--max-restarts", paramLabel = "N",
            description = "Restarts of one child within --restart-window-seconds (after 1 s, 2 s, 4 s, ... up to "
                    + "30 s) before the cluster gives up, stops everything and exits 1 (default 5; 0 = give up "
                    + "at the first death).")
    int maxRestarts = 5;

    @Option(names = "--restart-window-seconds", paramLabel = "S",
            description = "How far back a child's crashes count towards --max-restarts (default 120).")
    long restartWindowSeconds = 120;

    // One directory instead of seven flags: the cluster needs one CA, one router certificate (which is also the
    // client certificate of its worker links) and one worker certificate shared by its workers.
    @Option(names = "--tls-dir", paramLabel = "DIR",
            description = {"TLS everywhere gRPC goes: the router serves TLS, router-worker links use mutual TLS and "
                    + "the workers let in only the router's certificate. DIR holds ca.pem, router.pem, "
                    + "router-key.pem, worker.pem, worker-key.pem (PEM, PKCS#8 keys; both certificates must name "
                    + "IP 127.0.0.1; router.pem needs serverAuth and clientAuth). Clients then pass "
                    + "--tls-ca DIR/ca.pem. The KV cache tier stays plaintext on 127.0.0.1 (its blocks are signed "
                    + "with a secret generated for each run)."})
    Path tlsDir;

    @Option(names = "--auth-tokens", paramLabel = "FILE",
            description = "Passed to the router: bearer tokens its public API accepts ('TOKEN SCOPE[,SCOPE]' lines).")
    Path authTokens;

    @Option(names = "--http-port", paramLabel = "P",
            description = "Passed to the router: also serve the OpenAI-compatible HTTP API on this port (default: "
                    + "off; 0 = a free port).")
    Integer httpPort;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        validate();
        ClusterTls tls = tlsDir == null ? null : ClusterTls.fromDirectory(tlsDir, host);
        if (authTokens != null) {
            BearerTokens.load(authTokens); // a bad file is exit 2 here, not a router that dies at start-up
        }
        Path dir = ModelOptions.resolve(model, randomModel);
        ClusterPlan plan = new ClusterPlan(dir.toAbsolutePath(), host, port == 0 ? freePort(host) : port,
                freePorts(host, workers), freePorts(host, cacheNodes), redundantExperts, threads != null ? threads
                : Math.max(1, Runtime.getRuntime().availableProcessors() / (workers + 1)), drainGraceSeconds,
                tls, authTokens == null ? null : authTokens.toAbsolutePath(), kvSecretFile(),
                freePorts(host, routers - 1));
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        Supervisor supervisor = new Supervisor(line -> {
            err.println(line);
            err.flush();
        }, notice -> {
            err.println("expertmesh cluster: " + notice);
            err.flush();
        }, maxRestarts == 0 ? RestartPolicy.never()
                : RestartPolicy.of(maxRestarts, Duration.ofSeconds(restartWindowSeconds)));
        Thread hook = Thread.ofPlatform().unstarted(() -> {
            if (supervisor.children().stream().anyMatch(ManagedChild::isAlive)) {
                err.println("expertmesh cluster: stopping (router first, then workers and cache nodes)");
                err.flush();
            }
            try {
                supervisor.stopAll();
                err.println("expertmesh cluster: stopped " + supervisor.children().stream()
                        .map(c -> c.name() + " (exit " + (c.exit().isDone() ? c.exit().join().exitCode() : "?") + ")")
                        .collect(java.util.stream.Collectors.joining(", ")));
                err.flush();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            run(plan, supervisor, out, err);
            ChildExit died = supervisor.gaveUp().join();
            err.println("expertmesh cluster: " + died.name() + " exited unexpectedly (exit code " + died.exitCode()
                    + (maxRestarts == 0 ? "" : ", after " + maxRestarts + " restarts within " + restartWindowSeconds
                    + " s") + "); stopping the others");
            err.flush();
            return CHILD_FAILED;
        } catch (Readiness.NotReadyException e) {
            ChildExit died = supervisor.gaveUp().getNow(null);
            err.println("expertmesh cluster: " + (died == null ? e.getMessage() : died.name()
                    + " exited during start-up (exit code " + died.exitCode() + ")") + "; stopping the others");
            err.flush();
            return CHILD_FAILED;
        } finally {
            supervisor.stopAll();
        }
    }

    /**
     * A fresh KV secret for this run, in an owner-only file deleted when the cluster exits. The tier is on
     * 127.0.0.1 and lives as long as this process, so no secret needs to outlast it; signing anyway keeps other
     * users of this host (who can reach 127.0.0.1) from feeding the router blocks, and runs the MAC path in
     * every local cluster.
     */
    static Path kvSecretFile() throws IOException {
        Path dir = Files.createTempDirectory("expertmesh-cluster-"); // owner-only on POSIX file systems
        Path file = dir.resolve("kv-secret");
        boolean posix = file.getFileSystem().supportedFileAttributeViews().contains("posix");
        if (posix) {
            Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        }
        Files.writeString(file, KvSecret.randomText() + "\n");
        dir.toFile().deleteOnExit();
        file.toFile().deleteOnExit(); // registered last, deleted first
        return file;
    }

    private void validate() {
        if (workers < 1) {
            throw new IllegalArgumentException("--workers must be >= 1, got " + workers);
        }
        if (cacheNodes < 0) {
            throw new IllegalArgumentException("--cache-nodes must be >= 0, got " + cacheNodes);
        }
        if (routers < 1) {
            throw new IllegalArgumentException("--routers must be >= 1, got " + routers);
        }
        if (routers > 1 && cacheNodes == 0) {
            throw new IllegalArgumentException("--routers " + routers + " share the expert placement through the "
                    + "cache tier: --cache-nodes must be >= 1");
        }
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("--port must be in 0..65535, got " + port);
        }
        if (httpPort != null && (httpPort < 0 || httpPort > 65535)) {
            throw new IllegalArgumentException("--http-port must be in 0..65535, got " + httpPort);
        }
        if (threads != null && threads < 1) {
            throw new IllegalArgumentException("--threads must be >= 1, got " + threads);
        }
        ModelOptions.parseQuantize(quantize);  // before any child starts: each would refuse it on its own
        if (redundantExperts != null && redundantExperts < 0) {
            throw new IllegalArgumentException("--redundant-experts must be >= 0, got " + redundantExperts);
        }
        if (drainGraceSeconds < 0 || startupTimeoutSeconds < 1) {
            throw new IllegalArgumentException("--drain-grace-seconds must be >= 0 and --startup-timeout-seconds >= 1");
        }
        if (maxRestarts < 0 || restartWindowSeconds < 1) {
            throw new IllegalArgumentException("--max-restarts must be >= 0 and --restart-window-seconds >= 1");
        }
        if (host.isBlank()) {
            throw new IllegalArgumentException("--host must be an address");
        }
        if (model != null && !model.toFile().isDirectory()) {
            throw new IllegalArgumentException("--model " + model + " is not a directory");
        }
    }

    /** Starts the children in order and waits for each to be ready; returns once the router is SERVING. */
    private void run(ClusterPlan plan, Supervisor supervisor, PrintWriter out, PrintWriter err)
            throws IOException, InterruptedException, Readiness.NotReadyException {
        Duration startup = Duration.ofSeconds(startupTimeoutSeconds);
        Map<String, String> env = Map.of(SupervisedChild.PARENT_PID_ENV, String.valueOf(ProcessHandle.current().pid()));
        Set<String> unset = childUnsetEnv();
        // A child given up on ends every wait: the cluster is not going to come up. (One that is restarted is
        // waited for on the same port.)
        java.util.function.BooleanSupplier died = () -> supervisor.gaveUp().isDone();
        // Stop stages: the router first (it drains while the workers still answer), then the rest together.
        List<ManagedChild> caches = new ArrayList<>();
        for (int i = 0; i < plan.cachePorts().size(); i++) {
            caches.add(supervisor.start(new ChildSpec("cache-" + i, JavaCommand.of(Main.class.getName(),
                    plan.cacheNodeArgs(i)), env, unset, 1, Duration.ofSeconds(20))));
        }
        List<ManagedChild> workerChildren = new ArrayList<>();
        for (int i = 0; i < plan.workerPorts().size(); i++) {
            workerChildren.add(supervisor.start(new ChildSpec("worker-" + i, JavaCommand.of(Main.class.getName(),
                    quantized(plan.workerArgs(i))), env, unset, 1, Duration.ofSeconds(10))));
        }
        for (int i = 0; i < caches.size(); i++) {
            ManagedChild c = caches.get(i);
            Readiness.awaitTcp(c.name(), host, plan.cachePorts().get(i), startup, died);
        }
        // With TLS the checks speak TLS too; workers want a client certificate of the CA, so they get the router's.
        ChannelCredentials toWorkers = plan.tls() == null ? InsecureChannelCredentials.create()
                : plan.tls().workerClientCredentials();
        ChannelCredentials toRouter = plan.tls() == null ? InsecureChannelCredentials.create()
                : plan.tls().routerClientCredentials();
        for (int i = 0; i < workerChildren.size(); i++) {
            ManagedChild w = workerChildren.get(i);
            Readiness.awaitGrpcServing(w.name(), host, plan.workerPorts().get(i), toWorkers, startup, died);
        }
        List<Integer> ports = plan.routerPorts();
        List<Integer> https = new ArrayList<>();
        List<ManagedChild> routerChildren = new ArrayList<>();
        for (int i = 0; i < ports.size(); i++) {
            int http = httpPort == null ? -1 : httpPort == 0 || i > 0 ? freePort(host) : httpPort;
            https.add(http);
            routerChildren.add(supervisor.start(new ChildSpec(ports.size() == 1 ? "router" : "router-" + i,
                    JavaCommand.of(Main.class.getName(), withHttpPort(quantized(plan.routerArgs(i)), http)), env,
                    unset, 0, Duration.ofSeconds(drainGraceSeconds + 10))));
        }
        for (int i = 0; i < ports.size(); i++) {
            Readiness.awaitGrpcServing(routerChildren.get(i).name(), host, ports.get(i), toRouter, startup, died);
        }
        out.println("expertmesh cluster serving " + plan.model().getFileName() + " on " + plan.routerTargets() + " ("
                + plan.workerPorts().size() + " workers" + (ports.size() == 1 ? "" : ", " + ports.size() + " routers")
                + ")");
        for (int http : https) {
            if (http >= 0) {
                out.println("expertmesh cluster: OpenAI-compatible HTTP API on "
                        + (plan.tls() != null ? "https" : "http") + "://" + host + ":" + http + "/v1");
            }
        }
        if (plan.tls() != null || plan.authTokens() != null) {
            out.println("expertmesh cluster: clients connect with --target " + plan.routerTargets()
                    + (plan.tls() != null ? " --tls-ca " + plan.tls().ca() : "")
                    + (plan.authTokens() != null ? " --token-file FILE (a token of " + plan.authTokens() + ")" : ""));
        }
        out.flush();
    }

    /** The router's arguments, serving the OpenAI-compatible HTTP API on {@code httpPort} too (-1: not). */
    static List<String> withHttpPort(List<String> routerArgs, int httpPort) {
        List<String> args = new ArrayList<>(routerArgs);
        if (httpPort >= 0) {
            args.addAll(List.of("--http-port", String.valueOf(httpPort)));
        }
        return args;
    }

    /**
     * The {@code EXPERTMESH_<OPTION>} variables the children must not inherit: the cluster's flags configure them,
     * and {@code EXPERTMESH_PORT=…} meant for the cluster must not also move every worker.
     */
    private Set<String> childUnsetEnv() {
        Set<String> names = new HashSet<>();
        CommandLine root = spec.commandLine().getParent();
        for (String cmd : Main.ENV_CONFIGURED) {
            names.addAll(EnvironmentDefaults.variables(root.getSubcommands().get(cmd).getCommandSpec()));
        }
        return names;
    }

    private static List<Integer> freePorts(String host, int n) {
        // Held open together so the n ports are distinct; the moment between closing and the child binding is
        // a race with other programs, which a child that cannot bind reports as its death.
        List<ServerSocket> held = new ArrayList<>();
        try {
            List<Integer> ports = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                ServerSocket s = new ServerSocket();
                held.add(s);
                s.bind(new InetSocketAddress(InetAddress.getByName(host), 0));
                ports.add(s.getLocalPort());
            }
            return ports;
        } catch (IOException e) {
            throw new UncheckedIOException("no free port on " + host, e);
        } finally {
            for (ServerSocket s : held) {
                try {
                    s.close();
                } catch (IOException ignored) {
                    // closing a probe socket
                }
            }
        }
    }

    private static int freePort(String host) {
        return freePorts(host, 1).getFirst();
    }

    /** A child's arguments with {@code --quantize} when it is not the default. */
    private List<String> quantized(List<String> args) {
        if (quantize.equals("none")) {
            return args;
        }
        List<String> out = new ArrayList<>(args);
        out.addAll(List.of("--quantize", quantize));
        return out;
    }
}
