package io.expertmesh.cli.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.security.TestCa;
import io.expertmesh.security.TlsConfigException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link ClusterTls#fromDirectory}: the files a TLS cluster needs, checked before any child starts. */
class ClusterTlsTest {
    @TempDir
    Path dir;

    private TestCa ca;

    private Path tlsDir(TestCa.Issued router, TestCa.Issued worker) throws IOException {
        ca = ca != null ? ca : TestCa.create(dir, "cluster");
        Path d = Files.createDirectories(dir.resolve("tls"));
        Files.copy(ca.certFile(), d.resolve("ca.pem"), StandardCopyOption.REPLACE_EXISTING);
        Files.copy(router.cert(), d.resolve("router.pem"), StandardCopyOption.REPLACE_EXISTING);
        Files.copy(router.key(), d.resolve("router-key.pem"), StandardCopyOption.REPLACE_EXISTING);
        Files.copy(worker.cert(), d.resolve("worker.pem"), StandardCopyOption.REPLACE_EXISTING);
        Files.copy(worker.key(), d.resolve("worker-key.pem"), StandardCopyOption.REPLACE_EXISTING);
        return d;
    }

    @Test
    void fromDirectory_goodFiles_routerNamedByItsCn() throws IOException {
        ca = TestCa.create(dir, "cluster");
        Path d = tlsDir(ca.serverAndClient("router-a"), ca.server("worker"));
        ClusterTls tls = ClusterTls.fromDirectory(d, "127.0.0.1");
        assertEquals("router-a", tls.routerName());
        assertEquals(d.toAbsolutePath().resolve("worker-key.pem"), tls.workerKey());
    }

    @Test
    void fromDirectory_missingFiles_namesThem() throws IOException {
        Path d = Files.createDirectories(dir.resolve("empty"));
        Files.writeString(d.resolve("ca.pem"), "x");
        TlsConfigException e = assertThrows(TlsConfigException.class, () -> ClusterTls.fromDirectory(d, "127.0.0.1"));
        assertTrue(e.getMessage().contains("lacks router.pem, router-key.pem, worker.pem, worker-key.pem"),
                e.getMessage());
    }

    @Test
    void fromDirectory_notADirectory_rejected() {
        TlsConfigException e = assertThrows(TlsConfigException.class,
                () -> ClusterTls.fromDirectory(dir.resolve("nope"), "127.0.0.1"));
        assertTrue(e.getMessage().contains("is not a directory"), e.getMessage());
    }

    @Test
    void fromDirectory_routerWithoutClientAuth_rejected() throws IOException {
        ca = TestCa.create(dir, "cluster");
        Path d = tlsDir(ca.server("router"), ca.server("worker"));
        TlsConfigException e = assertThrows(TlsConfigException.class, () -> ClusterTls.fromDirectory(d, "127.0.0.1"));
        assertTrue(e.getMessage().contains("clientAuth"), e.getMessage());
    }

    @Test
    void fromDirectory_workerNotNamingTheHost_rejected() throws IOException {
        ca = TestCa.create(dir, "cluster");
        Path d = tlsDir(ca.serverAndClient("router"), ca.client("worker"));
        TlsConfigException e = assertThrows(TlsConfigException.class, () -> ClusterTls.fromDirectory(d, "127.0.0.1"));
        assertTrue(e.getMessage().contains("worker.pem does not name 127.0.0.1"), e.getMessage());
    }

    @Test
    void fromDirectory_keyOfAnotherCertificate_rejected() throws IOException {
        ca = TestCa.create(dir, "cluster");
        TestCa.Issued router = ca.serverAndClient("router");
        TestCa.Issued other = ca.server("worker");
        Path d = tlsDir(router, new TestCa.Issued(other.cert(), router.key(), other.certificate()));
        TlsConfigException e = assertThrows(TlsConfigException.class, () -> ClusterTls.fromDirectory(d, "127.0.0.1"));
        assertTrue(e.getMessage().contains("does not belong"), e.getMessage());
    }
}
