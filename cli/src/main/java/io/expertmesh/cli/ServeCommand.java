package io.expertmesh.cli;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.model.ForwardBackend;
import io.expertmesh.kvcache.KvSecret;
import io.expertmesh.kvcache.KvStoreConfig;
import io.expertmesh.router.RouterConfig;
import io.expertmesh.router.RouterServer;
import io.expertmesh.router.engine.EngineConfig;
import io.expertmesh.router.experts.ExpertClusterConfig;
import io.expertmesh.router.experts.WireFormat;
import io.expertmesh.router.kv.KvHeapBudget;
import io.expertmesh.security.BearerTokens;
import io.expertmesh.security.ServerSecurity;
import io.expertmesh.telemetry.Telemetry;
import io.expertmesh.telemetry.TelemetryConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code expertmesh serve}: the router on a gRPC port, its routed experts in process or on expert workers. */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve a model over gRPC (expertmesh.inference.v1.InferenceService, health, reflection).")
final class ServeCommand implements Callable<Integer> {
    private static final Logger LOG = LoggerFactory.getLogger(ServeCommand.class);

    @Mixin
    ModelOptions model = new ModelOptions();

    @Mixin
    MetricsOptions metrics = new MetricsOptions();

    @Option(names = "--port", paramLabel = "P", description = "gRPC port (default 50051; 0 = any free port).")
    int port = 50051;

    @Option(names = "--http-port", paramLabel = "P",
            description = "Also serve the OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, "
                    + "/v1/models, /health) on this port, with the gRPC port's TLS and tokens (default: off; "
                    + "0 = any free port).")
    Integer httpPort;

    @Mixin
    ListenOptions listen = new ListenOptions();

    @Mixin
    ServerTlsOptions tls = new ServerTlsOptions();

    @Mixin
    WorkerTlsOptions workerTls = new WorkerTlsOptions();

    @Option(names = "--auth-tokens", paramLabel = "FILE",
            description = "Bearer tokens the public API accepts, one 'TOKEN SCOPE[,SCOPE]' per line (scopes: "
                    + "generate, admin; # comments). Without it no token is needed.")
    Path authTokens;

    @Option(names = "--kv-block-size", paramLabel = "N", description = "Tokens per KV block (default 16).")
    int blockSize = 16;

    @Option(names = "--kv-cache-mb", paramLabel = "MB",
            description = "KV cache memory in MiB (default 1024); on the Java heap, so it must fit there (refused at "
                    + "start otherwise).")
    long kvCacheMb = 1024;

    @Option(names = "--max-batched-tokens", paramLabel = "N", description = "Token budget per step (default 512).")
    int maxBatchedTokens = 512;

    @Option(names = "--max-running", paramLabel = "N", description = "Sequences per step at most (default 64).")
    int maxRunning = 64;

    @Option(names = "--max-waiting", paramLabel = "N",
            description = "Waiting requests before RESOURCE_EXHAUSTED (default 256).")
    int maxWaiting = 256;

    @Option(names = "--no-prefix-caching", description = "Do not reuse KV blocks of shared prompt prefixes.")
    boolean noPrefixCaching;

    @Option(names = "--max-buffered-tokens", paramLabel = "N",
            description = "Unread tokens after which a slow client's stream is cut (default 4096).")
    int maxBufferedTokens = 4096;

    @Option(names = "--drain-grace-seconds", paramLabel = "S",
            description = "On SIGTERM, how long running requests may finish (default 30).")
    long drainGraceSeconds = 30;

    /** The {@code --kv-store} values. */
    enum KvStoreMode {
        embedded(KvStoreConfig.Mode.EMBEDDED), hazelcast_client(KvStoreConfig.Mode.CLIENT), none(KvStoreConfig.Mode.NONE);

        final KvStoreConfig.Mode mode;

        KvStoreMode(KvStoreConfig.Mode mode) {
            this.mode = mode;
        }

        static KvStoreMode parse(String s) {
            return valueOf(s.strip().toLowerCase(java.util.Locale.ROOT).replace('-', '_'));
        }
    }

    // Default embedded: every router carries a Hazelcast member, and routers on one host find each other with no
    // flags: each binds the first free port of --kv-port .. --kv-port + --kv-port-count - 1 (chosen at bind time,
    // so routers started at once do not race for one port) and joins all of them. Across hosts, list the members
    // with --kv-members.
    @Option(names = "--kv-store", paramLabel = "MODE", converter = KvStoreModeConverter.class,
            description = "Distributed KV tier: embedded (a Hazelcast member in this router; default), "
                    + "hazelcast-client (a client of --kv-members), or none.")
    KvStoreMode kvStore = KvStoreMode.embedded;

    @Option(names = "--kv-port-count", paramLabel = "N",
            description = "Embedded member: ports tried from --kv-port on, and (without --kv-members) the local "
                    + "ports joined (default 10).")
    int kvPortCount = 10;

    // The tier's blocks are signed with this secret and only blocks signed with it are adopted: the checksum
    // alone is recomputed by anyone who can reach a member. Required (or --kv-insecure) when the tier is not
    // loopback-only; EXPERTMESH_KV_SECRET_FILE sets it like every other option.
    @Option(names = "--kv-secret-file", paramLabel = "FILE",
            description = "Secret (at least 32 characters, e.g. `openssl rand -hex 32`) every router of the tier "
                    + "shares: blocks are signed with HMAC-SHA256 and unsigned or forged ones are misses. Required "
                    + "when the tier is not loopback-only, unless --kv-insecure.")
    Path kvSecretFile;

    @Option(names = "--kv-insecure",
            description = "Allow a KV tier reachable from other hosts without --kv-secret-file (blocks are then "
                    + "checked by checksum only, which a forger recomputes).")
    boolean kvInsecure;

    @Option(names = "--kv-members", paramLabel = "HOST:PORT,...",
            description = "Hazelcast members, one host:port each: embedded joins them, hazelcast-client connects "
                    + "to them (required for hazelcast-client).")
    String kvMembers = "";

    @Option(names = "--kv-port", paramLabel = "P", description = "Port of the embedded member (default 5801).")
    int kvPort = 5801;

    @Option(names = "--kv-host", paramLabel = "HOST",
            description = "Address the embedded member binds and advertises (default 127.0.0.1).")
    String kvHost = "127.0.0.1";

    @Option(names = "--kv-cluster-name", paramLabel = "NAME",
            description = "Hazelcast cluster name (default expertmesh-kv).")
    String kvClusterName = "expertmesh-kv";

    @Option(names = "--kv-max-heap-mb", paramLabel = "MB",
            description = "Embedded member: heap its blocks may use before LRU eviction (default 1024).")
    int kvMaxHeapMb = 1024;

    // A long prompt finishes many blocks in one step (a 4,096-token prompt: 256 blocks of 16); the store's
    // own default of 32 would drop most of them. 128 blocks of a DeepSeek-V3 block (2.2 MB) is about 280 MB.
    @Option(names = "--kv-publish-queue", paramLabel = "N",
            description = "Blocks waiting to be published before new ones are dropped (default 128).")
    int kvPublishQueue = 128;

    // A 1,024-token prefix is 64 blocks of 16: batches of 32 fetch it in two round trips instead of eight,
    // at the cost of reading up to 31 blocks past a miss.
    @Option(names = "--kv-lookup-batch", paramLabel = "N",
            description = "Blocks requested from the store at once while walking a prefix (default 32).")
    int kvLookupBatch = 32;

    @Option(names = "--workers", paramLabel = "HOST:PORT,...", split = ",",
            description = "Expert workers (`expertmesh worker --experts none`) that run the routed experts; without "
                    + "it they run in this process.")
    java.util.List<String> workers = new java.util.ArrayList<>();

    @Option(names = "--redundant-experts", paramLabel = "R",
            description = "With --workers: extra replicas per MoE layer for the most loaded experts (default 0).")
    int redundantExperts;

    @Option(names = "--expert-wire", paramLabel = "FORMAT",
            description = "With --workers: exact (F32, per-expert outputs; bit-identical to one process; default) "
                    + "or bf16 (half the bytes out, one sum per worker back).")
    WireFormat expertWire = WireFormat.EXACT;

    @Option(names = "--micro-batches", paramLabel = "N",
            description = "With --workers: 2 (default) overlaps one micro-batch's compute with the other's expert "
                    + "calls; 1 runs each step as one batch.")
    int microBatches = 2;

    @Option(names = "--dispatch-timeout-ms", paramLabel = "MS",
            description = "With --workers: deadline of one expert call (default 30000).")
    long dispatchTimeoutMs = 30_000;

    @Option(names = "--rebalance-interval-seconds", paramLabel = "S",
            description = "With --workers: re-place experts by observed load every S seconds (default 0: only on "
                    + "request, `expertmesh admin rebalance`, or when a worker joins).")
    long rebalanceSeconds;

    @Option(names = "--worker-startup-timeout-seconds", paramLabel = "S",
            description = "With --workers: how long to wait for the workers to be SERVING (default 120).")
    long workerStartupSeconds = 120;

    /** The expert cluster settings, or null when the experts run in this process. */
    ExpertClusterConfig expertClusterConfig() {
        if (workers.isEmpty()) {
            if (redundantExperts != 0) {
                throw new IllegalArgumentException("--redundant-experts needs --workers");
            }
            return null;
        }
        WireFormat wire = expertWire;
        if (dispatchTimeoutMs < 1) {
            throw new IllegalArgumentException("--dispatch-timeout-ms must be >= 1, got " + dispatchTimeoutMs);
        }
        return new ExpertClusterConfig(workers.stream().map(String::strip).filter(w -> !w.isEmpty()).toList(),
                redundantExperts, wire, Duration.ofMillis(dispatchTimeoutMs), Duration.ofSeconds(120),
                Duration.ofSeconds(1), Duration.ofSeconds(Math.max(1, workerStartupSeconds)),
                Duration.ofSeconds(Math.max(0, rebalanceSeconds)), microBatches);
    }

    static final class KvStoreModeConverter implements picocli.CommandLine.ITypeConverter<KvStoreMode> {
        @Override
        public KvStoreMode convert(String value) {
            try {
                return KvStoreMode.parse(value);
            } catch (IllegalArgumentException e) {
                throw new picocli.CommandLine.TypeConversionException(
                        "expected embedded, hazelcast-client or none, got '" + value + "'");
            }
        }
    }

    KvStoreConfig kvStoreConfig() {
        String members = kvMembers;
        int portCount = 1;
        if (kvStore == KvStoreMode.embedded) {
            if (kvPortCount < 1 || kvPort + kvPortCount - 1 > 65535) {
                throw new IllegalArgumentException("--kv-port-count must be >= 1 and keep ports <= 65535");
            }
            portCount = kvPortCount;
            if (members.isBlank()) {
                StringBuilder local = new StringBuilder();
                for (int p = kvPort; p < kvPort + kvPortCount; p++) {
                    local.append(local.isEmpty() ? "" : ",").append(kvHost).append(':').append(p);
                }
                members = local.toString();
            }
        }
        return KvStoreConfig.builder(kvStore.mode).clusterName(kvClusterName).members(members)
                .memberHost(kvHost).memberPort(kvPort).memberPortCount(portCount).maxHeapMbPerMember(kvMaxHeapMb)
                .publishQueueCapacity(kvPublishQueue).lookupBatch(kvLookupBatch)
                .secret(kvStore == KvStoreMode.none || kvSecretFile == null ? null : KvSecret.read(kvSecretFile))
                .insecure(kvInsecure).build();
    }

    /** TLS, mutual TLS and bearer tokens of the public API, from the flags (files are read by the server). */
    ServerSecurity serverSecurity() {
        return new ServerSecurity(tls.files(), authTokens == null ? null : BearerTokens.load(authTokens), null);
    }

    @Override
    public Integer call() throws Exception {
        Path dir = model.resolveModelDir();
        ForwardBackend.Factory backend = model.forwardBackend();  // a bad --device fails here, not in the load
        KvStoreConfig kv = kvStoreConfig();
        kv.requireSecretWhenExposed(); // before the model loads: one line, exit 2
        KvHeapBudget.require(kvCacheMb << 20, "--kv-cache-mb"); // likewise: not an OutOfMemoryError later
        RouterConfig config = new RouterConfig(port, dir, new EngineConfig(blockSize, kvCacheMb << 20,
                maxBatchedTokens, maxRunning, maxWaiting, !noPrefixCaching), maxBufferedTokens,
                Duration.ofSeconds(drainGraceSeconds), kv, expertClusterConfig());
        LOG.info("Effective configuration: {}", config);
        Telemetry telemetry = metrics.start(TelemetryConfig.ROUTER);
        ServerSecurity security = serverSecurity();
        RouterServer server = new RouterServer(config, listen.serverBuilder("Router", port, security,
                RouterServer::transport), telemetry, security.interceptors(RouterServer.AUTH_SCOPES))
                .workerChannels(workerTls.channels()).forwardBackend(backend);
        if (httpPort != null) {
            // the HTTP API listens where gRPC does, with the same TLS files and tokens
            server.http(listen.host.strip(), httpPort, security);
        }
        if (workerTls.files() != null) {
            LOG.info("Expert worker links: TLS ({})", workerTls.files().describe());
        }
        server.start((RouterServer.ModelLoader) experts -> {
            try {
                return LoadedModel.open(dir, model.newCpuKernels(), (done, total) -> { }, experts,
                        model.quantization());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
        // SIGTERM (an orchestrator, `cluster`) drains and then exits 0: a drain is the normal end of a router. Any
        // other end of the JVM (Ctrl-C, System.exit) drains from the shutdown hook. The drain runs once either way.
        AtomicBoolean stopping = new AtomicBoolean();
        CompletableFuture<Void> stopped = new CompletableFuture<>();
        Runnable stop = () -> {
            if (!stopping.compareAndSet(false, true)) {
                return;
            }
            try {
                server.drain();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                telemetry.close(); // flushes spans and metrics still batched for an exporter
                stopped.complete(null);
            }
        };
        Runtime.getRuntime().addShutdownHook(Thread.ofPlatform().unstarted(stop));
        try {
            sun.misc.Signal.handle(new sun.misc.Signal("TERM"),
                    signal -> Thread.ofPlatform().name("expertmesh-drain").start(stop));
        } catch (IllegalArgumentException unsupported) {
            LOG.warn("Cannot handle SIGTERM here ({}); it drains through the shutdown hook", unsupported.getMessage());
        }
        server.awaitLoaded();
        // stdout, as worker and cache-node: the one stream a script reads for "ready" (logs go to stderr)
        System.out.println("expertmesh serving " + dir.getFileName() + " on port " + server.port());
        if (server.httpPort() >= 0) {
            System.out.println("expertmesh OpenAI-compatible HTTP API on port " + server.httpPort());
        }
        System.out.flush();
        server.awaitTermination();
        if (stopping.get()) {
            stopped.join(); // the drain closes the KV store and telemetry after the server has stopped
        }
        return 0;
    }
}
