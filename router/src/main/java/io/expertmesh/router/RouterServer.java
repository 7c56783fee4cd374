package io.expertmesh.router;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.kvcache.KvBlockStore;
import io.expertmesh.kvcache.KvStores;
import io.expertmesh.proto.inference.v1.InferenceServiceGrpc;
import io.expertmesh.router.engine.Engine;
import io.expertmesh.router.service.InferenceService;
import io.expertmesh.router.service.Utf8CheckedService;
import io.expertmesh.router.telemetry.RouterTelemetry;
import io.expertmesh.telemetry.Telemetry;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import java.io.IOException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Owns a router's lifecycle: the gRPC server (inference API, {@code grpc.health.v1}, reflection), loading the
 * model in the background (health NOT_SERVING and UNAVAILABLE until it is loaded), and the drain that ends it.
 */
public final class RouterServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(RouterServer.class);
    /** Largest request accepted: long prompts as token ids, with room to spare. */
    static final int MAX_INBOUND_BYTES = 16 << 20;
    private static final String SERVICE = InferenceServiceGrpc.SERVICE_NAME;

    private final RouterConfig config;
    private final RouterTelemetry telemetry;
    private final InferenceService inference;
    private final HealthStatusManager health = new HealthStatusManager();
    private final Server server;
    private final CompletableFuture<Engine> loaded = new CompletableFuture<>();
    private volatile LoadedModel model;
    private volatile KvBlockStore kvStore;
    private volatile Engine engine;

    /** A router on a real socket ({@code config.port()}), without telemetry. */
    public RouterServer(RouterConfig config) {
        this(config, Telemetry.noop());
    }

    /** A router on a real socket ({@code config.port()}) reporting to {@code telemetry} (which the caller closes). */
    public RouterServer(RouterConfig config, Telemetry telemetry) {
        this(config, NettyServerBuilder.forPort(config.port()).maxInboundMessageSize(MAX_INBOUND_BYTES), telemetry);
    }

    /** A router on the given transport (tests use in-process servers), without telemetry. */
    public RouterServer(RouterConfig config, ServerBuilder<?> builder) {
        this(config, builder, Telemetry.noop());
    }

    /** A router on the given transport reporting to {@code telemetry} (which the caller closes). */
    public RouterServer(RouterConfig config, ServerBuilder<?> builder, Telemetry telemetry) {
        this.config = config;
        this.telemetry = new RouterTelemetry(telemetry);
        this.inference = new InferenceService(config.maxBufferedTokens(), this.telemetry);
        telemetry.configureServer(builder);
        this.server = builder.addService(Utf8CheckedService.bind(inference)).addService(health.getHealthService())
                .addService(ProtoReflectionServiceV1.newInstance()).build();
        health.setStatus("", ServingStatus.NOT_SERVING);
        health.setStatus(SERVICE, ServingStatus.NOT_SERVING);
    }

    /**
     * Starts listening, then on a background thread starts the distributed KV store (an embedded member joins
     * its cluster, a client connects) and loads the model with {@code loader}. A store that cannot start (its
     * port is taken) fails the load like a model that cannot be read.
     */
    public RouterServer start(Supplier<LoadedModel> loader) throws IOException {
        server.start();
        LOG.info("Router listening on port {}; loading the model from {}", port(), config.modelDir());
        Thread.ofPlatform().name("expertmesh-model-loader").daemon().start(() -> {
            try {
                KvBlockStore store = KvStores.create(config.kvStore());
                kvStore = store;
                LoadedModel m = loader.get();
                Engine e = new Engine(m, config.engine(), store, telemetry.stepObserver());
                telemetry.bind(e);
                model = m;
                engine = e;
                inference.serve(m, e);
                health.setStatus("", ServingStatus.SERVING);
                health.setStatus(SERVICE, ServingStatus.SERVING);
                LOG.info("Router serving {} on port {}", m.dir(), port());
                loaded.complete(e);
            } catch (RuntimeException | Error e) {
                LOG.error("Loading the model failed", e);
                loaded.completeExceptionally(e);
            }
        });
        return this;
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
     * Graceful drain: NOT_SERVING and no new generations, running ones get {@code config.drainGrace()} to
     * finish, the rest are ended as cancelled; then the server stops and the distributed KV store is closed
     * (blocks still queued for publishing get a short grace period; an embedded member leaves its cluster).
     */
    public void drain() throws InterruptedException {
        LOG.info("Draining: no new requests; {} s for running ones", config.drainGrace().toSeconds());
        health.setStatus("", ServingStatus.NOT_SERVING);
        health.setStatus(SERVICE, ServingStatus.NOT_SERVING);
        inference.startDrain();
        Engine e = engine;
        if (e != null && !e.awaitIdle(config.drainGrace().toMillis(), TimeUnit.MILLISECONDS)) {
            LOG.warn("Drain grace period over; cancelling the remaining requests");
            e.cancelAll();
            e.awaitIdle(5, TimeUnit.SECONDS);
        }
        server.shutdown();
        if (!server.awaitTermination(5, TimeUnit.SECONDS)) {
            server.shutdownNow();
        }
        KvBlockStore store = kvStore;
        if (store != null) {
            store.close();
        }
        telemetry.close();
    }

    public void awaitTermination() throws InterruptedException {
        server.awaitTermination();
    }

    @Override
    public void close() {
        server.shutdownNow();
        Engine e = engine;
        if (e != null) {
            e.close();
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
