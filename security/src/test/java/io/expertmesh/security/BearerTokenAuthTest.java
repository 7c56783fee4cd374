package io.expertmesh.security;

import static io.expertmesh.security.TestServers.ECHO;
import static io.expertmesh.security.TestServers.RESET;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.stub.MetadataUtils;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bearer tokens over a real TLS socket: the right token passes, the wrong ones get the right status. */
class BearerTokenAuthTest {
    static final String GENERATE_TOKEN = "gen-0123456789abcdef0123456789abcdef";
    static final String ADMIN_TOKEN = "adm-fedcba9876543210fedcba9876543210";
    static final String UNKNOWN_TOKEN = "unk-00000000000000000000000000000000";

    @TempDir
    static Path dir;
    static TestCa ca;
    static BearerTokens tokens;
    static Server server;
    static ManagedChannel channel;

    @BeforeAll
    static void start() throws Exception {
        ca = TestCa.create(dir, "cluster");
        TestCa.Issued cert = ca.server("router");
        Path file = dir.resolve("tokens");
        Files.write(file, List.of("# test tokens", "", GENERATE_TOKEN + " generate", ADMIN_TOKEN + "  generate,admin"));
        BearerTokenAuthTest.tokens = BearerTokens.load(file);
        ServerSecurity security = new ServerSecurity(TlsFiles.server(cert.cert(), cert.key()),
                BearerTokenAuthTest.tokens, null);
        server = TestServers.start(security, MethodScopes.builder()
                .service(TestServers.ECHO_SERVICE, Scope.GENERATE).build());
        channel = TestServers.channel(server, TlsCredentials.channel(TlsFiles.client(ca.certFile())));
    }

    @AfterAll
    static void stop() throws Exception {
        TestServers.stop(server, channel);
    }

    static CallOptions bearer(String token) {
        return CallOptions.DEFAULT.withCallCredentials(new BearerTokenCredentials(BearerToken.of(token)));
    }

    @Test
    void call_withoutToken_isUnauthenticated() {
        assertEquals(Status.Code.UNAUTHENTICATED, TestServers.call(channel, ECHO, CallOptions.DEFAULT));
        assertTrue(TestServers.lastError.getStatus().getDescription().contains("missing bearer token"));
    }

    @Test
    void call_withUnknownToken_isUnauthenticated() {
        assertEquals(Status.Code.UNAUTHENTICATED, TestServers.call(channel, ECHO, bearer(UNKNOWN_TOKEN)));
        assertFalse(TestServers.lastError.getStatus().getDescription().contains(UNKNOWN_TOKEN));
    }

    @Test
    void call_withAHeaderThatIsNotBearer_isUnauthenticated() {
        Metadata h = new Metadata();
        h.put(BearerTokenInterceptor.AUTHORIZATION, "Basic dXNlcjpwYXNzd29yZA==");
        ManagedChannel ch = channel;
        assertEquals(Status.Code.UNAUTHENTICATED, TestServers.call(
                io.grpc.ClientInterceptors.intercept(ch, MetadataUtils.newAttachHeadersInterceptor(h)), ECHO,
                CallOptions.DEFAULT));
    }

    @Test
    void call_withTokenLackingTheScope_isPermissionDenied() {
        assertEquals(Status.Code.PERMISSION_DENIED, TestServers.call(channel, RESET, bearer(GENERATE_TOKEN)));
        assertTrue(TestServers.lastError.getStatus().getDescription().contains("'admin'"));
    }

    @Test
    void call_withTheRightToken_succeeds() {
        assertEquals(Status.Code.OK, TestServers.call(channel, ECHO, bearer(GENERATE_TOKEN)));
        assertEquals(Status.Code.OK, TestServers.call(channel, ECHO, bearer(ADMIN_TOKEN)));
        assertEquals(Status.Code.OK, TestServers.call(channel, RESET, bearer(ADMIN_TOKEN)));
    }

    @Test
    void health_withoutToken_isOpen() {
        assertEquals(Status.Code.OK, TestServers.health(channel));
    }

    @Test
    void credentials_overPlaintextToAnotherHost_refuseToSendTheToken() throws Exception {
        // a plaintext server and a channel whose authority is not loopback: the token must not leave the process
        Server plainServer = TestServers.start(new ServerSecurity(null, tokens, null), MethodScopes.builder()
                .service(TestServers.ECHO_SERVICE, Scope.GENERATE).build());
        ManagedChannel plain = io.grpc.Grpc.newChannelBuilderForAddress("localhost", plainServer.getPort(),
                InsecureChannelCredentials.create()).overrideAuthority("router.example.com:443").build();
        ManagedChannel loopback = TestServers.channel(plainServer, InsecureChannelCredentials.create());
        try {
            assertEquals(Status.Code.UNAUTHENTICATED, TestServers.call(plain, ECHO, bearer(GENERATE_TOKEN)));
            assertTrue(TestServers.lastError.getStatus().getDescription().contains("plaintext connection"),
                    TestServers.lastError.getStatus().getDescription());
            // to localhost the token may go in the clear (development), and the server accepts it
            assertEquals(Status.Code.OK, TestServers.call(loopback, ECHO, bearer(GENERATE_TOKEN)));
        } finally {
            TestServers.stop(plainServer, plain, loopback);
        }
    }

    @Test
    void isLoopback_acceptsOnlyThisMachine() {
        assertTrue(BearerTokenCredentials.isLoopback("localhost:50051"));
        assertTrue(BearerTokenCredentials.isLoopback("127.0.0.1:50051"));
        assertTrue(BearerTokenCredentials.isLoopback("[::1]:50051"));
        assertFalse(BearerTokenCredentials.isLoopback("10.0.0.7:50051"));
        assertFalse(BearerTokenCredentials.isLoopback("router.example.com:50051"));
        assertFalse(BearerTokenCredentials.isLoopback("localhost.evil.com:50051"));
        assertFalse(BearerTokenCredentials.isLoopback(null));
    }
}
