package io.expertmesh.worker;

import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.model.ExpertRunner;
import io.expertmesh.proto.expert.v1.ExpertServiceGrpc;
import io.expertmesh.proto.wire.RunExpertsWire;
import io.expertmesh.security.MethodScopes;
import io.expertmesh.security.ServerSecurity;
import io.expertmesh.telemetry.Telemetry;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.ServerInterceptor;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Owns an expert worker's lifecycle: the gRPC server ({@code ExpertService} and {@code grpc.health.v1}), mapping
 * the configured experts in the background (health NOT_SERVING and calls UNAVAILABLE until then), and shutdown.
 */
public final class ExpertWorkerServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ExpertWorkerServer.class);
    /** Largest request accepted: a prefill chunk of thousands of tokens of a wide model in F32, with room. */
    static final int MAX_INBOUND_BYTES = 256 << 20;
    private static final String SERVICE = ExpertServiceGrpc.SERVICE_NAME;

    private final WorkerConfig config;
    private final Kernels kernels;
    private final ExpertServiceImpl service;
    private final HealthStatusManager health = new HealthStatusManager();
    private final Server server;
    private final CompletableFuture<ExpertExecutor> loaded = new CompletableFuture<>();
    private ExpertRunner.Factory expertRunners = ExpertRunner.Factory.CPU;

    /** A plaintext worker on a real socket ({@code config.port()}), without telemetry. */
    public ExpertWorkerServer(WorkerConfig config, Kernels kernels) {
        this(config, kernels, Telemetry.noop());
    }

    /** A plaintext worker on a real socket reporting to {@code telemetry} (the caller closes it). */
    public ExpertWorkerServer(WorkerConfig config, Kernels kernels, Telemetry telemetry) {
        this(config, kernels, ServerSecurity.plaintext(), telemetry);
    }

    /** A worker on a real socket protected as {@code security} says, without telemetry. */
    public ExpertWorkerServer(WorkerConfig config, Kernels kernels, ServerSecurity security) {
        this(config, kernels, security, Telemetry.noop());
    }

    /**
     * A worker on a real socket with TLS as {@code security} says, reporting to {@code telemetry}. With mutual TLS
     * only callers with a certificate the client CA signed connect, and of those only the allowed names may call
     * {@code ExpertService} (PERMISSION_DENIED otherwise); health stays open to any certificate of the CA.
     */
    public ExpertWorkerServer(WorkerConfig config, Kernels kernels, ServerSecurity security, Telemetry telemetry) {
        this(config, kernels, transport(new InetSocketAddress(config.port()), security), telemetry,
                security.interceptors(MethodScopes.builder().build()));
        LOG.info("Expert worker security: {}", security);
        security.warnings().forEach(w -> LOG.warn("Expert worker security: {}", w));
    }

    /**
     * HTTP/2 flow-control window of worker connections, both ways: a step's hidden states or outputs (hundreds of
     * KiB to MiBs) go out without waiting a round trip for a WINDOW_UPDATE, which costs most when the network
     * has latency.
     */
    public static final int FLOW_CONTROL_WINDOW = 16 << 20;

    /**
     * The socket transport of every real worker, on {@code address} with {@code security}'s credentials: the
     * inbound limit for a step's hidden states, and keepalive pings permitted as often as routers send them
     * (every 30 s, WorkerChannels; grpc's default minimum of 5 min would answer them with GOAWAY and drop the
     * router's connection). Handlers run on the transport thread: the service hands a RunExperts call to its
     * compute thread once the whole call has arrived (one hand-off, where grpc's default executor would take one
     * for the call's headers and often another for its message) and everything else that may block to threads of
     * its own; health checks answer on the transport thread. TCP_NODELAY is Netty's default. The command line
     * binds it to {@code --host} with this.
     */
    public static NettyServerBuilder transport(InetSocketAddress address, ServerSecurity security) {
        return NettyServerBuilder.forAddress(address, security.credentials()).maxInboundMessageSize(MAX_INBOUND_BYTES)
                .permitKeepAliveTime(10, TimeUnit.SECONDS).permitKeepAliveWithoutCalls(true)
                .flowControlWindow(FLOW_CONTROL_WINDOW).directExecutor();
    }

    /** A worker on the given transport (tests use in-process servers), without telemetry. */
    public ExpertWorkerServer(WorkerConfig config, Kernels kernels, ServerBuilder<?> builder) {
        this(config, kernels, builder, Telemetry.noop());
    }

    /** A worker on the given transport reporting to {@code telemetry}, with no interceptors of its own. */
    public ExpertWorkerServer(WorkerConfig config, Kernels kernels, ServerBuilder<?> builder, Telemetry telemetry) {
        this(config, kernels, builder, telemetry, List.of());
    }

    /**
     * A worker on the given transport reporting to {@code telemetry}: a server span per call (a child of the
     * caller's trace context), gRPC's standard server metrics and the worker's own ({@link WorkerTelemetry});
     * {@code interceptors} (the client-certificate check) run around every service.
     */
    public ExpertWorkerServer(WorkerConfig config, Kernels kernels, ServerBuilder<?> builder, Telemetry telemetry,
                              List<ServerInterceptor> interceptors) {
        this.config = config;
        this.kernels = kernels;
        this.service = new ExpertServiceImpl(new WorkerTelemetry(telemetry));
        telemetry.configureServer(builder);
        // added after telemetry's: interceptors added last run first, so a refused call stops here
        interceptors.forEach(builder::intercept);
        // RunExperts requests parsed without copying their hidden states (RunExpertsWire).
        this.server = builder.addService(RunExpertsWire.serverDefinition(service))
                .addService(health.getHealthService()).build();
        health.setStatus("", ServingStatus.NOT_SERVING);
        health.setStatus(SERVICE, ServingStatus.NOT_SERVING);
    }

    /**
     * Where the experts run ({@link ExpertRunner.Factory#CPU} unless set: the kernels given at construction;
     * module cuda's {@code DeviceExperts} on a GPU); set before {@link #start}.
     */
    public ExpertWorkerServer expertRunners(ExpertRunner.Factory factory) {
        this.expertRunners = java.util.Objects.requireNonNull(factory, "factory");
        return this;
    }

    /** Starts listening, then maps the configured experts of every MoE layer on a background thread. */
    public ExpertWorkerServer start() throws IOException {
        server.start();
        LOG.info("Expert worker listening on port {}; loading experts {} of {}", port(), config.experts(),
                config.modelDir());
        Thread.ofPlatform().name("expertmesh-expert-loader").daemon().start(() -> {
            try {
                ExpertShard shard = ExpertShard.open(config.modelDir(), expertRunners);
                ExpertExecutor ex = new ExpertExecutor(shard, kernels);
                int[] ids = config.experts().resolve(shard.config().numRoutedExperts());
                int[] layers = shard.moeLayers();
                for (int layer : layers) {
                    ex.load(layer, ids);
                }
                service.serve(ex);
                health.setStatus("", ServingStatus.SERVING);
                health.setStatus(SERVICE, ServingStatus.SERVING);
                LOG.info("Expert worker serving {} experts × {} MoE layers of {} on port {}", ids.length,
                        layers.length, config.modelDir(), port());
                loaded.complete(ex);
            } catch (RuntimeException | Error e) {
                LOG.error("Loading the experts failed", e);
                loaded.completeExceptionally(e);
            }
        });
        return this;
    }

    /** Waits for the experts; rethrows a loading failure. */
    public ExpertExecutor awaitLoaded() throws InterruptedException {
        try {
            return loaded.get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException re) {
                throw re;
            }
            throw new IllegalStateException(e.getCause());
        }
    }

    public int port() {
        return server.getPort();
    }

    /** NOT_SERVING, then a graceful stop: running calls get a few seconds. */
    public void shutdown() throws InterruptedException {
        health.enterTerminalState();
        server.shutdown();
        if (!server.awaitTermination(5, TimeUnit.SECONDS)) {
            server.shutdownNow();
        }
        closeExecutor();
    }

    public void awaitTermination() throws InterruptedException {
        server.awaitTermination();
    }

    @Override
    public void close() {
        server.shutdownNow();
        try {
            server.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        closeExecutor();
    }

    private void closeExecutor() {
        service.close();
        ExpertExecutor ex = loaded.getNow(null);
        if (ex != null) {
            ex.close();
        }
    }
}
