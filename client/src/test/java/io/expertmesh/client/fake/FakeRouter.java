package io.expertmesh.client.fake;

import io.expertmesh.client.ClientConfig;
import io.expertmesh.client.ExpertMeshClient;
import io.grpc.Grpc;
import io.expertmesh.security.MethodScopes;
import io.expertmesh.security.Scope;
import io.expertmesh.security.ServerSecurity;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.concurrent.TimeUnit;

/**
 * A {@link FakeInferenceService} behind a started server: in-process (with a channel to it), or on a real socket
 * (port 0, with the standard health service reporting SERVING). Closing it shuts everything down and waits — the
 * JUnit 5 replacement for grpc-testing's JUnit 4 {@code GrpcCleanupRule}.
 */
public final class FakeRouter implements AutoCloseable {
    private final FakeInferenceService service;
    private final Server server;
    private final ManagedChannel channel;
    private final HealthStatusManager health;
    private boolean closed;

    private FakeRouter(FakeInferenceService service, Server server, ManagedChannel channel,
                       HealthStatusManager health) {
        this.service = service;
        this.server = server;
        this.channel = channel;
        this.health = health;
    }

    /** The service behind an in-process server with a unique name, and a channel to it. */
    public static FakeRouter inProcess(FakeInferenceService service) {
        String name = InProcessServerBuilder.generateName();
        try {
            Server server = InProcessServerBuilder.forName(name).addService(service).build().start();
            ManagedChannel channel = InProcessChannelBuilder.forName(name).build();
            return new FakeRouter(service, server, channel, null);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The service and the gRPC health service (SERVING) on a real plaintext socket, port 0 on all interfaces. */
    public static FakeRouter onSocket(FakeInferenceService service) {
        return onSocket(service, ServerSecurity.plaintext());
    }

    /**
     * The same on a socket protected as {@code security} says (TLS, mutual TLS, bearer tokens with the router's
     * rules: the inference API needs {@code generate}, health is open).
     */
    public static FakeRouter onSocket(FakeInferenceService service, ServerSecurity security) {
        HealthStatusManager health = new HealthStatusManager();
        try {
            ServerBuilder<?> builder = Grpc.newServerBuilderForPort(0, security.credentials()).addService(service)
                    .addService(health.getHealthService());
            security.interceptors(MethodScopes.builder().service("expertmesh.inference.v1.InferenceService",
                    Scope.GENERATE).build()).forEach(builder::intercept);
            Server server = builder.build().start();
            health.setStatus("", ServingStatus.SERVING);
            health.setStatus("expertmesh.inference.v1.InferenceService", ServingStatus.SERVING);
            return new FakeRouter(service, server, null, health);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public FakeInferenceService service() {
        return service;
    }

    /** The in-process channel (null for a socket server). */
    public ManagedChannel channel() {
        return channel;
    }

    /** A client over the in-process channel, or connected to the socket. */
    public ExpertMeshClient client(ClientConfig config) {
        return channel != null ? ExpertMeshClient.over(channel, config)
                : ExpertMeshClient.builder(target()).config(config).build();
    }

    /** {@code localhost:PORT} of a socket server. */
    public String target() {
        return "localhost:" + server.getPort();
    }

    /** The health service of a socket server (null in-process). */
    public HealthStatusManager health() {
        return health;
    }

    /** Stops the server; again: nothing (a test may stop a router midway and still close it in a finally). */
    @Override
    public synchronized void close() throws InterruptedException {
        if (closed) {
            return;
        }
        closed = true;
        if (channel != null) {
            channel.shutdownNow();
            channel.awaitTermination(5, TimeUnit.SECONDS);
        }
        if (health != null) {
            health.enterTerminalState();
        }
        server.shutdownNow();
        server.awaitTermination(5, TimeUnit.SECONDS);
    }
}
