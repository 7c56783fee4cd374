package io.expertmesh.security;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad TLS files fail at start-up with a sentence naming the file and the problem. */
class TlsCredentialsTest {
    @TempDir
    static Path dir;
    static TestCa ca;
    static TestCa.Issued a;
    static TestCa.Issued b;

    @BeforeAll
    static void certificates() {
        ca = TestCa.create(dir, "ca");
        a = ca.server("a");
        b = ca.server("b");
    }

    static String serverError(Path cert, Path key) {
        return assertThrows(TlsConfigException.class, () -> TlsCredentials.server(TlsFiles.server(cert, key)))
                .getMessage();
    }

    @Test
    void server_goodFiles_buildCredentials() {
        TlsCredentials.server(TlsFiles.server(a.cert(), a.key()));
        TlsCredentials.server(TlsFiles.mutualServer(a.cert(), a.key(), ca.certFile()));
        TlsCredentials.channel(TlsFiles.client(ca.certFile(), b.cert(), b.key()));
        TlsCredentials.channel(TlsFiles.client(null));
    }

    @Test
    void server_missingFile_saysNotFound() {
        String m = serverError(dir.resolve("missing.pem"), a.key());
        assertTrue(m.contains("missing.pem") && m.contains("not found"), m);
        m = assertThrows(TlsConfigException.class, () -> TlsCredentials.channel(
                TlsFiles.client(dir.resolve("no-ca.pem")))).getMessage();
        assertTrue(m.contains("trust roots") && m.contains("no-ca.pem"), m);
    }

    @Test
    void server_keyOfAnotherCertificate_saysItDoesNotBelong() {
        String m = serverError(a.cert(), b.key());
        assertTrue(m.contains("does not belong") && m.contains(b.key().toString()), m);
    }

    @Test
    void server_fileWithoutPem_saysSo() throws Exception {
        Path junk = Files.writeString(dir.resolve("junk.pem"), "not a certificate");
        assertTrue(serverError(junk, a.key()).contains("no PEM block"));
        // a key file given as the certificate, and the reverse
        assertTrue(serverError(a.key(), a.key()).contains("no CERTIFICATE block"));
        assertTrue(serverError(a.cert(), a.cert()).contains("no PRIVATE KEY block"));
        assertTrue(serverError(dir, a.key()).contains("cannot be read"));
    }

    @Test
    void server_pkcs1OrEncryptedKey_saysHowToConvert() throws Exception {
        Path pkcs1 = Files.writeString(dir.resolve("rsa.pem"), TestCa.pem("RSA PRIVATE KEY", new byte[] {1, 2, 3}));
        assertTrue(serverError(a.cert(), pkcs1).contains("openssl pkcs8 -topk8"));
        Path enc = Files.writeString(dir.resolve("enc.pem"), TestCa.pem("ENCRYPTED PRIVATE KEY", new byte[] {1}));
        assertTrue(serverError(a.cert(), enc).contains("encrypted"));
    }

    @Test
    void server_expiredCertificate_saysWhen() {
        TestCa.Issued old = ca.expiredServer("old");
        assertTrue(serverError(old.cert(), old.key()).contains("expired"));
    }

    @Test
    void tlsFiles_halfAKeyPairOrMtlsWithoutCa_isRejected() {
        assertThrows(TlsConfigException.class, () -> new TlsFiles(a.cert(), null, null, false));
        assertThrows(TlsConfigException.class, () -> new TlsFiles(a.cert(), a.key(), null, true));
        assertThrows(IllegalArgumentException.class, () -> new ServerSecurity(TlsFiles.server(a.cert(), a.key()),
                null, AllowedClients.parse("router")));
    }

    @Test
    void certificateIdentity_listsCnAndSans() {
        assertEquals(List.of("a", "localhost", "127.0.0.1"), List.copyOf(CertificateIdentity.names(a.certificate())));
        assertTrue(AllowedClients.parse("LOCALHOST").permits(a.certificate()));
        assertTrue(!AllowedClients.parse("router,worker").permits(a.certificate()));
        assertTrue(AllowedClients.parse(" ").permits(a.certificate()));
    }
}
