package io.expertmesh.security;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The PEM files of one end of a TLS link. Paths only: {@link TlsCredentials} reads and checks them.
 *
 * <ul>
 *   <li>a server: {@code certChain} + {@code privateKey} (its identity); with {@code trustRoots} and
 *       {@code requireClientAuth}, mutual TLS: only clients with a certificate those roots signed connect;</li>
 *   <li>a client: {@code trustRoots} to check the server with ({@code null}: the JDK's default roots), and
 *       optionally {@code certChain} + {@code privateKey}, its certificate for mutual TLS.</li>
 * </ul>
 *
 * @param certChain         PEM certificate chain, leaf first, or {@code null}
 * @param privateKey        PEM PKCS#8 private key of the leaf (unencrypted), or {@code null}
 * @param trustRoots        PEM CA certificates that sign the other end, or {@code null}
 * @param requireClientAuth server only: refuse clients without a certificate signed by {@code trustRoots}
 */
public record TlsFiles(Path certChain, Path privateKey, Path trustRoots, boolean requireClientAuth) {

    public TlsFiles {
        if ((certChain == null) != (privateKey == null)) {
            throw new TlsConfigException(certChain == null
                    ? "a TLS private key needs its certificate chain"
                    : "a TLS certificate chain needs its private key");
        }
        if (requireClientAuth && trustRoots == null) {
            throw new TlsConfigException("mutual TLS needs the CA certificates that sign the clients");
        }
        if (requireClientAuth && certChain == null) {
            throw new TlsConfigException("mutual TLS is a server setting; the server needs its certificate and key");
        }
    }

    /** A TLS server without client certificates. */
    public static TlsFiles server(Path certChain, Path privateKey) {
        return new TlsFiles(req(certChain, "certificate chain"), req(privateKey, "private key"), null, false);
    }

    /** A mutual-TLS server: clients must present a certificate signed by {@code clientCa}. */
    public static TlsFiles mutualServer(Path certChain, Path privateKey, Path clientCa) {
        return new TlsFiles(req(certChain, "certificate chain"), req(privateKey, "private key"),
                req(clientCa, "client CA"), true);
    }

    /** A TLS client checking the server with {@code trustRoots} ({@code null}: the JDK's default roots). */
    public static TlsFiles client(Path trustRoots) {
        return new TlsFiles(null, null, trustRoots, false);
    }

    /** A mutual-TLS client: it checks the server with {@code trustRoots} and presents its own certificate. */
    public static TlsFiles client(Path trustRoots, Path certChain, Path privateKey) {
        return new TlsFiles(req(certChain, "certificate chain"), req(privateKey, "private key"), trustRoots, false);
    }

    /** Whether this end presents a certificate of its own. */
    public boolean hasKeyPair() {
        return certChain != null;
    }

    /** One line for start-up logs: paths, never contents. */
    public String describe() {
        List<String> parts = new ArrayList<>();
        if (certChain != null) {
            parts.add("cert " + certChain + ", key " + privateKey);
        }
        if (trustRoots != null) {
            parts.add((requireClientAuth ? "mutual TLS, client CA " : "trust roots ") + trustRoots);
        } else if (certChain == null) {
            parts.add("default trust roots");
        }
        return String.join(", ", parts);
    }

    private static Path req(Path p, String what) {
        if (p == null) {
            throw new TlsConfigException("the TLS " + what + " file is required");
        }
        return p;
    }
}
