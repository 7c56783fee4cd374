package io.expertmesh.cli;

import io.expertmesh.router.experts.WorkerChannels;
import io.expertmesh.security.TlsCredentials;
import io.expertmesh.security.TlsFiles;
import java.nio.file.Path;
import java.util.List;
import picocli.CommandLine.Option;

/** How {@code serve} reaches its expert workers: plaintext, TLS, or mutual TLS with the router's certificate. */
final class WorkerTlsOptions {
    @Option(names = "--worker-tls-ca", paramLabel = "FILE",
            description = "PEM CA certificate(s) that sign the expert workers' certificates; TLS to the workers.")
    Path ca;

    @Option(names = "--worker-tls-cert", paramLabel = "FILE",
            description = "PEM certificate chain this router presents to workers with mutual TLS (with "
                    + "--worker-tls-key).")
    Path cert;

    @Option(names = "--worker-tls-key", paramLabel = "FILE", description = "PEM PKCS#8 private key of "
            + "--worker-tls-cert.")
    Path key;

    /** The TLS files of the router's side of the worker links, or {@code null} for plaintext. */
    TlsFiles files() {
        if ((cert == null) != (key == null)) {
            throw new IllegalArgumentException("--worker-tls-cert and --worker-tls-key go together");
        }
        if (ca == null && cert == null) {
            return null;
        }
        if (ca == null) {
            throw new IllegalArgumentException("--worker-tls-cert needs --worker-tls-ca (the CA of the workers)");
        }
        return cert == null ? TlsFiles.client(ca) : TlsFiles.client(ca, cert, key);
    }

    /** Channels to the workers with these credentials; the files are read and checked here. */
    WorkerChannels channels() {
        TlsFiles files = files();
        return files == null ? WorkerChannels.plaintext()
                : new WorkerChannels(TlsCredentials.channel(files), List.of());
    }
}
