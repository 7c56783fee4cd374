package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.expertmesh.router.engine.EngineConfig;
import io.expertmesh.security.BearerTokens;
import io.expertmesh.security.ServerSecurity;
import io.expertmesh.telemetry.Telemetry;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The HTTP API of a router whose gRPC socket is built outside it, as the command line builds it for {@code --host}:
 * {@code http(host, port, security)} gives the HTTP API the same tokens and the same address, not plaintext on
 * every interface.
 */
class OpenAiHttpOnBuiltTransportTest {
    static final String TOKEN = "generate-token-0123456789abcdef";

    @TempDir
    Path dir;

    @Test
    void http_onARouterWithABuiltTransport_checksTheSameTokensOnTheSameHost() throws Exception {
        Path tokens = Files.write(dir.resolve("tokens"), List.of(TOKEN + " generate"));
        ServerSecurity security = new ServerSecurity(null, BearerTokens.load(tokens), null);
        RouterConfig config = new RouterConfig(0, TestModels.FIXTURE, new EngineConfig(4, 4L << 20, 64, 8, 8, true),
                1024, Duration.ofSeconds(1));
        try (RouterServer server = new RouterServer(config,
                RouterServer.transport(new InetSocketAddress("127.0.0.1", 0), security), Telemetry.noop(),
                security.interceptors(RouterServer.AUTH_SCOPES)).http("127.0.0.1", 0, security)) {
            server.start(() -> TestModels.load(TestModels.FIXTURE));
            server.awaitLoaded();
            OpenAiClient anonymous = new OpenAiClient(server.httpPort());
            assertEquals(401, anonymous.get("/v1/models").status(), "no token, no API");
            assertEquals(200, anonymous.withToken(TOKEN).get("/v1/models").status());
            // bound to loopback only: another local address of this host finds nothing there
            InetAddress other = firstNonLoopbackAddress();
            if (other != null) {
                assertThrows(ConnectException.class, () -> new Socket(other, server.httpPort()).close());
            }
        }
    }

    private static InetAddress firstNonLoopbackAddress() throws Exception {
        for (var nic : java.util.Collections.list(java.net.NetworkInterface.getNetworkInterfaces())) {
            for (InetAddress a : java.util.Collections.list(nic.getInetAddresses())) {
                if (!a.isLoopbackAddress() && a instanceof java.net.Inet4Address && nic.isUp()) {
                    return a;
                }
            }
        }
        return null;
    }
}
