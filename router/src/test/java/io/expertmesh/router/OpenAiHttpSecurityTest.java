package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.router.engine.EngineConfig;
import io.expertmesh.security.BearerTokens;
import io.expertmesh.security.ServerSecurity;
import io.expertmesh.security.TestCa;
import io.expertmesh.security.TlsFiles;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.List;
import java.util.stream.IntStream;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The HTTP API under the gRPC server's security: TLS from the same certificate files, the same bearer tokens
 * and scopes; health open, as gRPC health is.
 */
class OpenAiHttpSecurityTest {
    static final String GENERATE = "generate-token-0123456789abcdef";
    static final String ADMIN_ONLY = "admin-only-token-0123456789abcdef";

    @TempDir
    static Path dir;
    static TestCa ca;
    static RouterServer server;
    static SSLContext trustCa;

    @BeforeAll
    static void start() throws Exception {
        ca = TestCa.create(dir, "cluster");
        TestCa.Issued cert = ca.server("router");
        Path tokens = Files.write(dir.resolve("tokens"), List.of(GENERATE + " generate", ADMIN_ONLY + " admin"));
        RouterConfig config = new RouterConfig(0, TestModels.FIXTURE, new EngineConfig(4, 4L << 20, 64, 8, 8, true),
                1024, Duration.ofSeconds(1));
        server = new RouterServer(config, new ServerSecurity(TlsFiles.server(cert.cert(), cert.key()),
                BearerTokens.load(tokens), null)).httpPort(0).start(() -> TestModels.load(TestModels.FIXTURE));
        server.awaitLoaded();
        trustCa = trusting(ca.certFile());
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    static SSLContext trusting(Path caPem) throws Exception {
        KeyStore roots = KeyStore.getInstance(KeyStore.getDefaultType());
        roots.load(null, null);
        try (InputStream in = Files.newInputStream(caPem)) {
            roots.setCertificateEntry("ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(roots);
        SSLContext ssl = SSLContext.getInstance("TLS");
        ssl.init(null, tmf.getTrustManagers(), null);
        return ssl;
    }

    static OpenAiClient client(String token) {
        return OpenAiClient.tls(server.httpPort(), trustCa, token);
    }

    static ObjectNode greedy() {
        ObjectNode b = OpenAiClient.body().put("max_tokens", 3).put("temperature", 0).put("ignore_eos", true)
                .put("logprobs", 0);
        IntStream.of(0, 818, 726, 297, 56, 207, 375, 667).forEach(b.putArray("prompt")::add);
        return b;
    }

    @Test
    void completions_withGenerateToken_overTls_reproducesReferenceTokens() {
        OpenAiClient.Answer a = client(GENERATE).post("/v1/completions", greedy());
        assertEquals(200, a.status(), a.json().toString());
        assertEquals(List.of(765, 164, 924),
                OpenAiClient.ids(a.json().get("choices").get(0).get("logprobs").get("tokens")));
        assertEquals(200, client(GENERATE).get("/v1/models").status());
    }

    @Test
    void completions_withoutToken_is401WithBearerChallenge() throws Exception {
        OpenAiClient.Answer a = client(null).post("/v1/completions", greedy());
        assertEquals(401, a.status());
        assertEquals("invalid_api_key", a.json().get("error").get("code").asText());
        assertTrue(a.message().contains("Authorization: Bearer"), a.message());
        assertEquals(401, client(null).get("/v1/models").status());

        HttpResponse<String> raw = HttpClient.newBuilder().sslContext(trustCa).build().send(HttpRequest.newBuilder(
                URI.create("https://localhost:" + server.httpPort() + "/v1/chat/completions"))
                .POST(HttpRequest.BodyPublishers.ofString("{}")).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(401, raw.statusCode());
        assertEquals("Bearer", raw.headers().firstValue("WWW-Authenticate").orElse(""));
    }

    @Test
    void completions_withUnknownToken_is401() {
        OpenAiClient.Answer a = client("not-a-known-token-0123456789").post("/v1/completions", greedy());
        assertEquals(401, a.status());
        assertEquals("unknown bearer token", a.message());
    }

    @Test
    void completions_withTokenWithoutGenerateScope_is403() {
        OpenAiClient.Answer a = client(ADMIN_ONLY).post("/v1/chat/completions", greedy());
        assertEquals(403, a.status());
        assertEquals("permission_error", a.json().get("error").get("type").asText());
        assertTrue(a.message().contains("'generate'"), a.message());
    }

    @Test
    void health_withoutToken_isOpen() {
        OpenAiClient.Answer a = client(null).get("/health");
        assertEquals(200, a.status());
        assertEquals("serving", a.json().get("status").asText());
    }

    @Test
    void plaintextClient_toTlsPort_getsNoAnswer() {
        OpenAiClient plain = new OpenAiClient(server.httpPort());
        assertThrows(RuntimeException.class, () -> plain.get("/health"));
    }

    @Test
    void client_notTrustingTheCa_failsTheHandshake() throws Exception {
        HttpClient untrusting = HttpClient.newBuilder().sslContext(SSLContext.getDefault()).build();
        assertThrows(IOException.class, () -> untrusting.send(HttpRequest.newBuilder(URI.create("https://localhost:"
                + server.httpPort() + "/health")).build(), HttpResponse.BodyHandlers.ofString()));
    }
}
