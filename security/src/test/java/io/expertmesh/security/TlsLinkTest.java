package io.expertmesh.security;

import static io.expertmesh.security.TestServers.ECHO;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** TLS and mutual TLS over real sockets: the right peers connect, the wrong ones are refused. */
class TlsLinkTest {
    @TempDir
    static Path dir;
    static TestCa ca;
    static TestCa otherCa;
    static TestCa.Issued server;
    static TestCa.Issued router;
    static TestCa.Issued rogue;
    static TestCa.Issued foreignRouter;

    @BeforeAll
    static void certificates() {
        ca = TestCa.create(dir, "cluster");
        otherCa = TestCa.create(dir, "other");
        server = ca.server("worker-1");
        router = ca.client("router");
        rogue = ca.client("rogue");
        foreignRouter = otherCa.client("router");
    }

    static ServerSecurity tls() {
        return new ServerSecurity(TlsFiles.server(server.cert(), server.key()), null, null);
    }

    static ServerSecurity mutual(String allowed) {
        return new ServerSecurity(TlsFiles.mutualServer(server.cert(), server.key(), ca.certFile()), null,
                AllowedClients.parse(allowed));
    }

    static Status.Code echo(Server s, TlsFiles client) throws InterruptedException {
        ManagedChannel ch = TestServers.channel(s, TlsCredentials.channel(client));
        try {
            return TestServers.call(ch, ECHO, CallOptions.DEFAULT);
        } finally {
            ch.shutdownNow();
        }
    }

    @Test
    void tls_clientTrustingTheCa_succeeds() throws Exception {
        Server s = TestServers.start(tls(), MethodScopes.builder().build());
        try {
            assertEquals(Status.Code.OK, echo(s, TlsFiles.client(ca.certFile())));
        } finally {
            TestServers.stop(s);
        }
    }

    @Test
    void tls_plaintextClient_fails() throws Exception {
        Server s = TestServers.start(tls(), MethodScopes.builder().build());
        ManagedChannel ch = TestServers.channel(s, InsecureChannelCredentials.create());
        try {
            assertEquals(Status.Code.UNAVAILABLE, TestServers.call(ch, ECHO, CallOptions.DEFAULT));
        } finally {
            TestServers.stop(s, ch);
        }
    }

    @Test
    void tls_clientTrustingAnotherCa_failsTheHandshake() throws Exception {
        Server s = TestServers.start(tls(), MethodScopes.builder().build());
        try {
            assertEquals(Status.Code.UNAVAILABLE, echo(s, TlsFiles.client(otherCa.certFile())));
        } finally {
            TestServers.stop(s);
        }
    }

    @Test
    void mutualTls_allowedRouterCertificate_succeeds() throws Exception {
        Server s = TestServers.start(mutual("router"), MethodScopes.builder().build());
        try {
            assertEquals(Status.Code.OK, echo(s, TlsFiles.client(ca.certFile(), router.cert(), router.key())));
        } finally {
            TestServers.stop(s);
        }
    }

    @Test
    void mutualTls_noClientCertificate_failsTheHandshake() throws Exception {
        Server s = TestServers.start(mutual("router"), MethodScopes.builder().build());
        try {
            assertEquals(Status.Code.UNAVAILABLE, echo(s, TlsFiles.client(ca.certFile())));
        } finally {
            TestServers.stop(s);
        }
    }

    @Test
    void mutualTls_certificateOfAnotherCa_failsTheHandshake() throws Exception {
        Server s = TestServers.start(mutual("router"), MethodScopes.builder().build());
        try {
            assertEquals(Status.Code.UNAVAILABLE,
                    echo(s, TlsFiles.client(ca.certFile(), foreignRouter.cert(), foreignRouter.key())));
        } finally {
            TestServers.stop(s);
        }
    }

    @Test
    void mutualTls_nonRouterCertificate_isPermissionDenied() throws Exception {
        Server s = TestServers.start(mutual("router"), MethodScopes.builder().build());
        try {
            assertEquals(Status.Code.PERMISSION_DENIED,
                    echo(s, TlsFiles.client(ca.certFile(), rogue.cert(), rogue.key())));
            assertTrue(TestServers.lastError.getStatus().getDescription().contains("[rogue]"),
                    TestServers.lastError.getStatus().getDescription());
        } finally {
            TestServers.stop(s);
        }
    }

    @Test
    void mutualTls_nonRouterCertificate_stillSeesHealth() throws Exception {
        Server s = TestServers.start(mutual("router"), MethodScopes.builder().build());
        ManagedChannel ch = TestServers.channel(s, TlsCredentials.channel(
                TlsFiles.client(ca.certFile(), rogue.cert(), rogue.key())));
        try {
            assertEquals(Status.Code.OK, TestServers.health(ch));
        } finally {
            TestServers.stop(s, ch);
        }
    }

    @Test
    void mutualTls_withoutAllowList_acceptsAnyCertificateOfTheCa() throws Exception {
        Server s = TestServers.start(mutual(""), MethodScopes.builder().build());
        try {
            assertEquals(Status.Code.OK, echo(s, TlsFiles.client(ca.certFile(), rogue.cert(), rogue.key())));
        } finally {
            TestServers.stop(s);
        }
    }
}
