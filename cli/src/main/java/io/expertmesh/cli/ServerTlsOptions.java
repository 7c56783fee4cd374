package io.expertmesh.cli;

import io.expertmesh.security.TlsFiles;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The TLS flags of a server command ({@code serve}, {@code worker}): its certificate and, for mutual TLS, a CA. */
final class ServerTlsOptions {
    @Option(names = "--tls-cert", paramLabel = "FILE",
            description = "PEM certificate chain of this server, leaf first; with --tls-key turns TLS on.")
    Path cert;

    @Option(names = "--tls-key", paramLabel = "FILE",
            description = "PEM PKCS#8 private key of --tls-cert (unencrypted; protect it with file permissions).")
    Path key;

    @Option(names = "--tls-client-ca", paramLabel = "FILE",
            description = "PEM CA certificate(s): mutual TLS, only clients with a certificate they signed connect.")
    Path clientCa;

    /** The server's TLS files, or {@code null} for plaintext. */
    TlsFiles files() {
        if (cert == null && key == null) {
            if (clientCa != null) {
                throw new IllegalArgumentException("--tls-client-ca needs --tls-cert and --tls-key");
            }
            return null;
        }
        if (cert == null || key == null) {
            throw new IllegalArgumentException("--tls-cert and --tls-key go together");
        }
        return clientCa == null ? TlsFiles.server(cert, key) : TlsFiles.mutualServer(cert, key, clientCa);
    }
}
