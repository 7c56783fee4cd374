package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.expertmesh.router.engine.EngineConfig;
import io.expertmesh.security.AllowedClients;
import io.expertmesh.security.ServerSecurity;
import io.expertmesh.security.TestCa;
import io.expertmesh.security.TlsFiles;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The HTTP API behind mutual TLS with named clients, as the gRPC port: no client certificate fails the
 * handshake, a certificate of the CA with another name gets 403 (health stays open to it), the named one gets in.
 */
class OpenAiHttpMutualTlsTest {
    @TempDir
    static Path dir;
    static TestCa ca;
    static RouterServer server;

    @BeforeAll
    static void start() throws Exception {
        ca = TestCa.create(dir, "cluster");
        TestCa.Issued cert = ca.server("router");
        RouterConfig config = new RouterConfig(0, TestModels.FIXTURE, new EngineConfig(4, 4L << 20, 64, 8, 8, true),
                1024, Duration.ofSeconds(1));
        server = new RouterServer(config, new ServerSecurity(TlsFiles.mutualServer(cert.cert(), cert.key(),
                ca.certFile()), null, AllowedClients.named(List.of("good-client")))).httpPort(0)
                .start(() -> TestModels.load(TestModels.FIXTURE));
        server.awaitLoaded();
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    /** Trusts the test CA and, given one, presents {@code client}'s certificate. */
    static SSLContext ssl(TestCa.Issued client) throws Exception {
        Certificate caCert;
        try (java.io.InputStream in = Files.newInputStream(ca.certFile())) {
            caCert = java.security.cert.CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        KeyStore roots = KeyStore.getInstance(KeyStore.getDefaultType());
        roots.load(null, null);
        roots.setCertificateEntry("ca", caCert);
        tmf.init(roots);
        KeyManagerFactory kmf = null;
        if (client != null) {
            String pem = Files.readString(client.key()).replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
            PrivateKey key = KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(
                    Base64.getDecoder().decode(pem)));
            KeyStore mine = KeyStore.getInstance(KeyStore.getDefaultType());
            mine.load(null, null);
            mine.setKeyEntry("me", key, new char[0], new Certificate[] {client.certificate(), caCert});
            kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(mine, new char[0]);
        }
        SSLContext ssl = SSLContext.getInstance("TLS");
        ssl.init(kmf == null ? null : kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        return ssl;
    }

    @Test
    void namedClientCertificate_getsIn() throws Exception {
        OpenAiClient good = OpenAiClient.tls(server.httpPort(), ssl(ca.client("good-client")), null);
        assertEquals(200, good.get("/v1/models").status());
    }

    @Test
    void otherClientOfTheCa_is403_healthOpen() throws Exception {
        OpenAiClient other = OpenAiClient.tls(server.httpPort(), ssl(ca.client("other-client")), null);
        OpenAiClient.Answer a = other.get("/v1/models");
        assertEquals(403, a.status());
        assertEquals("client_not_allowed", a.json().get("error").get("code").asText());
        assertEquals(200, other.get("/health").status());
    }

    @Test
    void noClientCertificate_failsTheHandshake() throws Exception {
        OpenAiClient anonymous = OpenAiClient.tls(server.httpPort(), ssl(null), null);
        assertThrows(UncheckedIOException.class, () -> anonymous.get("/health"));
    }
}
