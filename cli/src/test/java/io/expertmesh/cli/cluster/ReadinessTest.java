package io.expertmesh.cli.cluster;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Server;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** {@link Readiness} against a real gRPC server with a health service, on port 0. */
class ReadinessTest {
    private final HealthStatusManager health = new HealthStatusManager();
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();
    private Server server;

    private int start(ServingStatus initial) throws Exception {
        health.setStatus("", initial);
        server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(health.getHealthService()).build().start();
        return server.getPort();
    }

    @AfterEach
    void tearDown() {
        timer.shutdownNow();
        if (server != null) {
            server.shutdownNow();
        }
    }

    @Test
    void awaitGrpcServing_notServingThenServing_returnsOnceServing() throws Exception {
        int port = start(ServingStatus.NOT_SERVING);
        timer.schedule(() -> health.setStatus("", ServingStatus.SERVING), 400, TimeUnit.MILLISECONDS);
        long start = System.nanoTime();
        Readiness.awaitGrpcServing("worker-0", "127.0.0.1", port, Duration.ofSeconds(20), () -> false);
        assertTrue(System.nanoTime() - start >= TimeUnit.MILLISECONDS.toNanos(350), "waited for SERVING");
    }

    @Test
    void awaitGrpcServing_neverServing_timesOutNamingTheLastStatus() throws Exception {
        int port = start(ServingStatus.NOT_SERVING);
        Readiness.NotReadyException e = assertThrows(Readiness.NotReadyException.class, () ->
                Readiness.awaitGrpcServing("worker-0", "127.0.0.1", port, Duration.ofMillis(600), () -> false));
        assertTrue(e.getMessage().contains("worker-0") && e.getMessage().contains("NOT_SERVING"), e.getMessage());
    }

    @Test
    void awaitGrpcServing_childGaveUp_endsTheWait() throws Exception {
        int port = freePort(); // nothing listens: the child died before binding
        Readiness.NotReadyException e = assertThrows(Readiness.NotReadyException.class, () ->
                Readiness.awaitGrpcServing("router", "127.0.0.1", port, Duration.ofSeconds(30), () -> true));
        assertTrue(e.getMessage().contains("router ended"), e.getMessage());
    }

    @Test
    void awaitTcp_listening_returns_closedPortTimesOut() throws Exception {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            Readiness.awaitTcp("cache-0", "127.0.0.1", s.getLocalPort(), Duration.ofSeconds(5), () -> false);
        }
        int closed = freePort();
        Readiness.NotReadyException e = assertThrows(Readiness.NotReadyException.class, () ->
                Readiness.awaitTcp("cache-0", "127.0.0.1", closed, Duration.ofMillis(500), () -> false));
        assertTrue(e.getMessage().contains("cache-0"), e.getMessage());
    }

    private static int freePort() throws Exception {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
