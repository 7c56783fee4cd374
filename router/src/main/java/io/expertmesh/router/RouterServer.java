package io.expertmesh.router;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.model.ForwardBackend;
import io.expertmesh.kvcache.HazelcastKvBlockStore;
import io.expertmesh.kvcache.KvBlockStore;
import io.expertmesh.kvcache.KvStoreStartException;
import io.expertmesh.kvcache.KvStores;
import io.expertmesh.proto.inference.v1.InferenceServiceGrpc;
import io.expertmesh.router.engine.Engine;
import io.expertmesh.router.engine.EngineOptions;
import io.expertmesh.core.model.ModelBuilder;
import io.expertmesh.router.experts.DispatchObserver;
import io.expertmesh.router.experts.ExpertCluster;
import io.expertmesh.router.experts.HazelcastPlacementStore;
import io.expertmesh.router.experts.PlacementStore;
import io.expertmesh.router.experts.WorkerChannels;
import io.expertmesh.router.http.OpenAiHttpConfig;
import io.expertmesh.router.http.OpenAiHttpServer;
import io.expertmesh.router.http.RouterState;
import io.expertmesh.router.service.ClusterServiceImpl;
import io.expertmesh.router.service.InferenceService;
import io.expertmesh.router.service.MetadataSizeLimit;
import io.expertmesh.router.service.UnparsableRequests;
import io.expertmesh.security.MethodScopes;
import io.expertmesh.security.Scope;
import io.expertmesh.security.ServerSecurity;
import io.expertmesh.router.telemetry.RouterTelemetry;
import io.expertmesh.telemetry.Telemetry;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.ServerInterceptor;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Owns a router's lifecycle: the gRPC server (inference API, {@code grpc.health.v1}, reflection), loading the
 * model in the background (health NOT_SERVING and UNAVAILABLE until it is loaded), and the drain that ends it.
 */
public final class RouterServer implements AutoCloseable {
    private ForwardBackend.Factory forwardBackend = ForwardBackend.CPU;
    private static final Logger LOG = LoggerFactory.getLogger(RouterServer.class);
    /** Largest request accepted: long prompts as token ids, with room to spare. */
    static final int MAX_INBOUND_BYTES = 16 << 20;
    /**
     * Largest request metadata a call may carry (gRPC's usual default): a larger one is refused alone,
     * RESOURCE_EXHAUSTED ({@link MetadataSizeLimit}).
     */
    public static final int MAX_METADATA_BYTES = 8 << 10;
    /**
     * The transport's header list limit (advertised to clients in SETTINGS_MAX_HEADER_LIST_SIZE), well above
     * {@link #MAX_METADATA_BYTES} so that oversized metadata reaches {@link MetadataSizeLimit} and fails its own
     * call only. Past it the transport resets the stream (HTTP 431), and past a quarter more it closes the
     * connection: only a client that ignores the advertised limit gets there, and it loses its own connection.
     */
    static final int MAX_TRANSPORT_METADATA_BYTES = 64 << 10;
    private static final String SERVICE = InferenceServiceGrpc.SERVICE_NAME;
    /**
     * What a bearer token needs per service: the inference API {@code generate}; health and reflection open; any
     * other service (admin and cluster calls, present or future) {@code admin}.
     */
    public static final MethodScopes AUTH_SCOPES = MethodScopes.builder().service(SERVICE, Scope.GENERATE).build();

    private final RouterConfig config;
    private final RouterTelemetry telemetry;
    private final InferenceService inference;
    private final HealthStatusManager health = new HealthStatusManager();
    private final Server server;
    private final CompletableFuture<Engine> loaded = new CompletableFuture<>();
    private final AtomicBoolean drainStarted = new AtomicBoolean();
    /** Completes when the drain has finished: true when no request had to be cancelled. */
    private final CompletableFuture<Boolean> drained = new CompletableFuture<>();
    private volatile LoadedModel model;
    private volatile KvBlockStore kvStore;
    private volatile Engine engine;
    private volatile ExpertCluster experts;
    private volatile boolean draining;
    private WorkerChannels workerChannels = WorkerChannels.plaintext();
    private DispatchObserver dispatchObserver = DispatchObserver.NONE;
    // The OpenAI-compatible HTTP API: off unless http(...) or httpPort(P) is called; same security as gRPC.
    private ServerSecurity security = ServerSecurity.plaintext();
    private String httpHost = "0.0.0.0";
    private Integer httpPort;
    private volatile OpenAiHttpServer http;

    /** Opens the model, with its routed experts made by {@code experts} (null: in process). */
    @FunctionalInterface
    public interface ModelLoader {
        LoadedModel load(ModelBuilder.RoutedExpertsFactory experts);
    }

    /** A plaintext router on a real socket ({@code config.port()}), without telemetry. */
    public RouterServer(RouterConfig config) {
        this(config, Telemetry.noop());
    }

    /** A plaintext router on a real socket reporting to {@code telemetry} (which the caller closes). */
    public RouterServer(RouterConfig config, Telemetry telemetry) {
        this(config, ServerSecurity.plaintext(), telemetry);
    }

    /** A router on a real socket protected as {@code security} says, without telemetry. */
    public RouterServer(RouterConfig config, ServerSecurity security) {
        this(config, security, Telemetry.noop());
    }

    /**
     * A router on a real socket ({@code config.port()}) with TLS, mutual TLS and bearer tokens as {@code security}
     * says (its PEM files are read and checked here: a {@link io.expertmesh.security.TlsConfigException} if bad),
     * reporting to {@code telemetry} (which the caller closes).
     */
    public RouterServer(RouterConfig config, ServerSecurity security, Telemetry telemetry) {
        this(config, transport(new InetSocketAddress(config.port()), security), telemetry,
                security.interceptors(AUTH_SCOPES));
        this.security = security;
        LOG.info("Router security: {}", security);
        security.warnings().forEach(w -> LOG.warn("Router security: {}", w));
    }

    /**
     * The socket transport of every real router, on {@code address} with {@code security}'s credentials: message
     * and metadata limits as the router's checks expect them. The command line binds it to {@code --host} with
     * this; nothing else should build a router's Netty server.
     */
    public static NettyServerBuilder transport(InetSocketAddress address, ServerSecurity security) {
        return NettyServerBuilder.forAddress(address, security.credentials()).maxInboundMessageSize(MAX_INBOUND_BYTES)
                .maxInboundMetadataSize(MAX_TRANSPORT_METADATA_BYTES);
    }

    /** A router on the given transport (tests use in-process servers), without telemetry. */
    public RouterServer(RouterConfig config, ServerBuilder<?> builder) {
        this(config, builder, Telemetry.noop());
    }

    /** A router on the given transport reporting to {@code telemetry}, with no interceptors of its own. */
    public RouterServer(RouterConfig config, ServerBuilder<?> builder, Telemetry telemetry) {
        this(config, builder, telemetry, List.of());
    }

    /**
     * A router on the given transport reporting to {@code telemetry} (which the caller closes): request spans
     * and serving metrics, and on the channels to expert workers, dispatch spans, trace context and RPC metrics;
     * {@code interceptors} (the token and client-certificate checks) run around every service.
     */
    public RouterServer(RouterConfig config, ServerBuilder<?> builder, Telemetry telemetry,
                        List<ServerInterceptor> interceptors) {
        this.config = config;
        this.telemetry = new RouterTelemetry(telemetry);
        this.inference = new InferenceService(config.maxBufferedTokens(), this.telemetry);
        telemetry.configureServer(builder);
        // added after telemetry's: interceptors added last run first, so a refused call stops here
        interceptors.forEach(builder::intercept);
        // last, so first: oversized metadata is refused before anything reads it
        builder.intercept(new MetadataSizeLimit(MAX_METADATA_BYTES));
        // Every method answers a request that does not parse INVALID_ARGUMENT (gRPC's own answer is UNKNOWN).
        this.server = builder.addService(UnparsableRequests.invalidArgument(inference.bindService()))
                .addService(UnparsableRequests.invalidArgument(health.getHealthService().bindService()))
                .addService(UnparsableRequests.invalidArgument(new ClusterServiceImpl(() -> experts).bindService()))
                .addService(UnparsableRequests.invalidArgument(ProtoReflectionServiceV1.newInstance().bindService()))
                .build();
        health.setStatus("", ServingStatus.NOT_SERVING);
        health.setStatus(SERVICE, ServingStatus.NOT_SERVING);
    }

    /**
     * Starts listening, then on a background thread starts the distributed KV store (an embedded member joins
     * its cluster, a client connects) and loads the model with {@code loader}. A store that cannot start (its
     * port is taken) fails the load like a model that cannot be read.
     */
    public RouterServer start(Supplier<LoadedModel> loader) throws IOException {
        if (config.experts() != null) {
            throw new IllegalStateException("a router with expert workers needs a ModelLoader");
        }
        return start(experts -> loader.get());
    }

    /**
     * As {@link #start(Supplier)}; with expert workers configured, first connects to them and places the experts
     * (a worker serving another model fails the load), then loads the model without its routed experts.
     */
    public RouterServer start(ModelLoader loader) throws IOException {
        server.start();
        if (httpPort != null) {
            http = OpenAiHttpServer.start(new OpenAiHttpConfig(httpHost, httpPort, security, AUTH_SCOPES,
                    config.maxBufferedTokens()), RouterState.of(() -> model, () -> engine, () -> draining,
                    () -> engine != null && !draining && (experts == null || experts.servable())), telemetry);
        }
        LOG.info("Router listening on port {}; loading the model from {}", port(), config.modelDir());
        Thread.ofPlatform().name("expertmesh-model-loader").daemon().start(() -> {
            try {
                KvBlockStore store = KvStores.create(config.kvStore());
                kvStore = store;
                ExpertCluster cluster = null;
                LoadedModel m;
                try {
                    if (config.experts() != null) {
                        cluster = new ExpertCluster(io.expertmesh.core.config.ModelConfig.load(config.modelDir()),
                                config.experts(), telemetry.workerChannels(workerChannels),
                                dispatchObserver, telemetry.telemetry().histograms(), placementStore(store));
                        cluster.start();
                    }
                    m = loader.load(cluster == null ? null : cluster.routedExperts());
                } catch (RuntimeException | IOException | InterruptedException e) {
                    if (cluster != null) {
                        cluster.close();
                    }
                    throw e;
                }
                Engine.MicroBatching micro = cluster == null || config.experts().microBatches() == 1
                        ? null : new Engine.MicroBatching(cluster.computeLock());
                Engine e = new Engine(m, config.engine(), EngineOptions.DEFAULT.withStore(store)
                        .withMicroBatching(micro).withStepObserver(telemetry.stepObserver())
                        .withBackend(forwardBackend));
                telemetry.bind(e);
                experts = cluster;
                model = m;
                engine = e;
                inference.serve(m, e);
                if (cluster != null) {
                    // SERVING only while every routed expert has a live holder (and not draining)
                    ExpertCluster c = cluster;
                    inference.expertsServable(c::servable);
                    c.onServableChange(this::setServing);
                } else {
                    setServing(true);
                }
                LOG.info("Router serving {} on port {}", m.dir(), port());
                loaded.complete(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                loaded.completeExceptionally(e);
            } catch (IOException e) {
                LOG.error("Loading the model failed", e);
                loaded.completeExceptionally(new java.io.UncheckedIOException(e));
            } catch (KvStoreStartException e) {
                // The operator's to fix (e.g. every port of --kv-port's range taken): one line, no stack trace.
                LOG.error("{}", e.getMessage());
                loaded.completeExceptionally(e);
            } catch (RuntimeException | Error e) {
                LOG.error("Loading the model failed", e);
                loaded.completeExceptionally(e);
            }
        });
        return this;
    }

    /**
     * With a distributed KV tier, the expert placement is shared with every router of that tier (and namespace):
     * one plan, changed by one router at a time. Without one, the router places experts on its own.
     */
    private PlacementStore placementStore(KvBlockStore store) {
        if (store instanceof HazelcastKvBlockStore hz) {
            LOG.info("Expert placement shared through the KV tier (map {})",
                    HazelcastPlacementStore.mapName(config.kvStore().namespace()));
            return new HazelcastPlacementStore(hz.hazelcast(), config.kvStore().namespace(),
                    HazelcastPlacementStore.reportTtl(config.experts().healthInterval()),
                    config.kvStore().secret());
        }
        return PlacementStore.local();
    }

    /** The health status: SERVING when {@code serving} and not draining; a drain is never undone. */
    private synchronized void setServing(boolean serving) {
        ServingStatus status = serving && !draining ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
        health.setStatus("", status);
        health.setStatus(SERVICE, status);
    }

    /** Waits for the model; rethrows a loading failure. */
    public Engine awaitLoaded() throws InterruptedException {
        try {
            return loaded.get();
        } catch (java.util.concurrent.ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof RuntimeException re) {
                throw re;
            }
            throw new IllegalStateException(cause);
        }
    }

    public int port() {
        return server.getPort();
    }

    public Engine engine() {
        return engine;
    }

    /**
     * Also serves the OpenAI-compatible HTTP API on {@code port} (0 = any free port), with this server's TLS
     * and bearer tokens; set before {@link #start}.
     */
    public RouterServer httpPort(int port) {
        this.httpPort = port;
        return this;
    }

    /**
     * Also serves the OpenAI-compatible HTTP API on {@code host:port} (0 = any free port) with {@code security}'s
     * TLS files and bearer tokens, which must be what the gRPC socket uses (the command line builds that socket
     * itself, so it passes them here); set before {@link #start}.
     */
    public RouterServer http(String host, int port, ServerSecurity security) {
        this.httpHost = java.util.Objects.requireNonNull(host, "host");
        this.security = java.util.Objects.requireNonNull(security, "security");
        this.httpPort = port;
        return this;
    }

    /** The HTTP API's port, or -1 when it is off. */
    public int httpPort() {
        OpenAiHttpServer h = http;
        return h == null ? -1 : h.port();
    }

    /** The expert workers, once started; null when the experts run in process. */
    public ExpertCluster experts() {
        return experts;
    }

    /**
     * Where the engine's forward steps run ({@link ForwardBackend#CPU} unless set; module cuda's
     * {@code DeviceForward.factory} on a GPU); set before {@link #start}.
     */
    public RouterServer forwardBackend(ForwardBackend.Factory factory) {
        this.forwardBackend = java.util.Objects.requireNonNull(factory, "factory");
        return this;
    }

    /** How channels to expert workers are made (TLS, interceptors); set before {@link #start}. */
    public RouterServer workerChannels(WorkerChannels channels) {
        this.workerChannels = channels;
        return this;
    }

    /** Sees every expert dispatch (besides the dispatch metrics, recorded anyway); set before {@link #start}. */
    public RouterServer dispatchObserver(DispatchObserver observer) {
        this.dispatchObserver = observer;
        return this;
    }

    /**
     * Graceful drain: no new generations and NOT_SERVING ({@code GetStatus} says draining from the first moment),
     * running ones get {@code config.drainGrace()} to finish, the rest are ended as cancelled; then the server
     * stops and the distributed KV store is closed (blocks still queued for publishing get a short grace period;
     * an embedded member leaves its cluster). Runs once: a second call (a signal handler and a shutdown hook)
     * waits for the first and returns its answer.
     *
     * @return true when every request finished within the grace period, false when some had to be cancelled
     */
    public boolean drain() throws InterruptedException {
        if (!drainStarted.compareAndSet(false, true)) {
            try {
                return drained.get();
            } catch (java.util.concurrent.ExecutionException impossible) {
                return false; // completed only with a value
            }
        }
        try {
            boolean clean = drainOnce();
            drained.complete(clean);
            return clean;
        } catch (InterruptedException | RuntimeException | Error e) {
            drained.complete(false);
            throw e;
        }
    }

    private boolean drainOnce() throws InterruptedException {
        LOG.info("Draining: no new requests; {} s for running ones", config.drainGrace().toSeconds());
        // First, so that no status read after this point says "not serving" without also saying "draining".
        inference.startDrain();
        draining = true;
        setServing(false);
        Engine e = engine;
        boolean clean = true;
        if (e != null && !e.awaitIdle(config.drainGrace().toMillis(), TimeUnit.MILLISECONDS)) {
            LOG.warn("Drain grace period over; cancelling the remaining requests");
            clean = false;
            e.cancelAll();
            e.awaitIdle(5, TimeUnit.SECONDS);
        }
        OpenAiHttpServer h = http;
        if (h != null) {
            h.shutdown(java.time.Duration.ofSeconds(5));
        }
        server.shutdown();
        if (!server.awaitTermination(5, TimeUnit.SECONDS)) {
            server.shutdownNow();
        }
        ExpertCluster cluster = experts;
        if (cluster != null) {
            cluster.close();
        }
        KvBlockStore store = kvStore;
        if (store != null) {
            store.close();
        }
        telemetry.close();
        LOG.info("Drained{}", clean ? "" : " (requests still running at the end of the grace period were cancelled)");
        return clean;
    }

    /** Waits until the gRPC server has stopped (by a drain or {@link #close}). */
    public void awaitTermination() throws InterruptedException {
        server.awaitTermination();
    }

    private void closeHttp() {
        OpenAiHttpServer h = http;
        if (h != null) {
            h.close();
        }
    }

    @Override
    public void close() {
        closeHttp();
        server.shutdownNow();
        Engine e = engine;
        if (e != null) {
            e.close();
        }
        ExpertCluster cluster = experts;
        if (cluster != null) {
            cluster.close();
        }
        KvBlockStore store = kvStore;
        if (store != null) {
            store.close();
        }
        LoadedModel m = model;
        if (m != null) {
            m.close();
        }
        telemetry.close();
    }
}
