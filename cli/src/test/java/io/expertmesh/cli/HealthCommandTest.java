package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Server;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetSocketAddress;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code expertmesh health} against a real gRPC health service on port 0. */
class HealthCommandTest {
    private final HealthStatusManager health = new HealthStatusManager();
    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();
    private Server server;

    @AfterEach
    void tearDown() {
        if (server != null) {
            server.shutdownNow();
        }
    }

    private int run(String... args) {
        CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        return cl.execute(args);
    }

    private int serve(ServingStatus status) throws Exception {
        health.setStatus("", status);
        server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(health.getHealthService()).build().start();
        return server.getPort();
    }

    @Test
    void health_serving_exit0() throws Exception {
        int port = serve(ServingStatus.SERVING);
        assertEquals(0, run("health", "--target", "127.0.0.1:" + port));
        assertTrue(out.toString().contains("SERVING"));
    }

    @Test
    void health_notServing_exit1WithTheStatus() throws Exception {
        int port = serve(ServingStatus.NOT_SERVING);
        assertEquals(1, run("health", "--target", "127.0.0.1:" + port));
        assertTrue(err.toString().contains("NOT_SERVING"), err.toString());
    }

    @Test
    void health_badTarget_usageError() {
        assertEquals(2, run("health", "--target", "localhost"));
        assertTrue(err.toString().contains("HOST:PORT"), err.toString());
    }
}
