package io.expertmesh.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.client.fake.FakeInferenceService;
import io.expertmesh.client.fake.FakeRouter;
import io.expertmesh.security.BearerToken;
import io.expertmesh.security.BearerTokens;
import io.expertmesh.security.ServerSecurity;
import io.expertmesh.security.TestCa;
import io.expertmesh.security.TlsFiles;
import io.grpc.Status;
import io.grpc.TlsChannelCredentials;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The client over TLS and mutual TLS with a bearer token, against a protected fake router on a socket. */
class ExpertMeshClientSecurityTest {
    static final String TOKEN = "client-test-token-0123456789abcdef";

    @TempDir
    static Path dir;
    static TestCa ca;
    static TestCa.Issued server;
    static BearerTokens tokens;

    @BeforeAll
    static void certificates() throws Exception {
        ca = TestCa.create(dir, "cluster");
        server = ca.server("router");
        tokens = BearerTokens.load(Files.write(dir.resolve("tokens"), List.of(TOKEN + " generate")));
    }

    static ClientConfig tls() {
        return ClientConfig.defaults().withTls(TlsFiles.client(ca.certFile()));
    }

    @Test
    void tlsAndToken_generate_succeeds() throws Exception {
        try (FakeRouter router = FakeRouter.onSocket(new FakeInferenceService(), new ServerSecurity(
                TlsFiles.server(server.cert(), server.key()), tokens, null));
             ExpertMeshClient client = router.client(tls().withToken(BearerToken.of(TOKEN)))) {
            assertEquals(3, client.generate(Requests.tokenIds(1, 2).setMaxTokens(3).build()).tokens().size());
            assertEquals(FakeInferenceService.MODEL_ID, client.modelInfo().getModelId());
        }
    }

    @Test
    void tlsWithoutToken_isUnauthenticated() throws Exception {
        try (FakeRouter router = FakeRouter.onSocket(new FakeInferenceService(), new ServerSecurity(
                TlsFiles.server(server.cert(), server.key()), tokens, null));
             ExpertMeshClient client = router.client(tls())) {
            ExpertMeshException e = assertThrows(ExpertMeshException.class, client::modelInfo);
            assertEquals(Status.Code.UNAUTHENTICATED, e.code());
        }
    }

    @Test
    void mutualTls_withClientCertificate_succeeds_withoutOne_fails() throws Exception {
        TestCa.Issued me = ca.client("alice");
        try (FakeRouter router = FakeRouter.onSocket(new FakeInferenceService(), new ServerSecurity(
                TlsFiles.mutualServer(server.cert(), server.key(), ca.certFile()), null, null))) {
            try (ExpertMeshClient client = router.client(ClientConfig.defaults()
                    .withTls(TlsFiles.client(ca.certFile(), me.cert(), me.key())))) {
                assertEquals(FakeInferenceService.MODEL_ID, client.modelInfo().getModelId());
            }
            try (ExpertMeshClient client = router.client(tls())) {
                assertEquals(Status.Code.UNAVAILABLE, assertThrows(ExpertMeshException.class, client::modelInfo)
                        .code());
            }
        }
    }

    @Test
    void config_toString_masksTheToken() {
        ClientConfig c = tls().withToken(BearerToken.of(TOKEN));
        assertFalse(c.toString().contains(TOKEN), c.toString());
        assertTrue(c.toString().contains("****"), c.toString());
    }

    @Test
    void builder_tlsInBothPlaces_isRejected() {
        assertThrows(IllegalArgumentException.class, () -> ExpertMeshClient.builder("localhost:1")
                .credentials(TlsChannelCredentials.create()).config(tls()).build());
    }

    @Test
    void tlsAndToken_twoRouters_eachVerifiedByTheNameItWasGivenBy() throws Exception {
        ServerSecurity security = new ServerSecurity(TlsFiles.server(server.cert(), server.key()), tokens, null);
        try (FakeRouter a = FakeRouter.onSocket(new FakeInferenceService(), security);
             FakeRouter b = FakeRouter.onSocket(new FakeInferenceService(), security);
             // the certificate names localhost and 127.0.0.1: each router is checked against its own
             ExpertMeshClient client = ExpertMeshClient.builder(List.of(a.target(),
                     b.target().replace("localhost", "127.0.0.1"))).config(tls().withToken(BearerToken.of(TOKEN)))
                     .build()) {
            ExpertMeshClientRoutersTest.untilBothServe(client, a, b);
            assertEquals(FakeInferenceService.MODEL_ID, client.modelInfo().getModelId());
        }
    }

    @Test
    void plaintextToken_twoLoopbackRouters_isSentToEach() throws Exception {
        ServerSecurity security = new ServerSecurity(null, tokens, null);
        try (FakeRouter a = FakeRouter.onSocket(new FakeInferenceService(), security);
             FakeRouter b = FakeRouter.onSocket(new FakeInferenceService(), security);
             ExpertMeshClient client = ExpertMeshClient.builder(List.of(a.target(),
                     b.target().replace("localhost", "127.0.0.1")))
                     .config(ClientConfig.defaults().withToken(BearerToken.of(TOKEN))).build()) {
            ExpertMeshClientRoutersTest.untilBothServe(client, a, b);
        }
    }
}
