package io.expertmesh.security;

import io.grpc.ChannelCredentials;
import io.grpc.ServerCredentials;
import io.grpc.TlsChannelCredentials;
import io.grpc.TlsServerCredentials;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.X509Certificate;
import java.util.List;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;

/**
 * grpc credentials from {@link TlsFiles}: {@link TlsServerCredentials} and {@link TlsChannelCredentials}, the
 * transport-neutral API (Netty turns them into an SslContext). Every file is read and checked here first, so a
 * wrong path or a key that does not belong to its certificate fails at start-up with a sentence, not at the first
 * handshake with an SSL stack trace.
 */
public final class TlsCredentials {
    private static final byte[] PROBE =
            "expertmesh key/certificate match".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

    private TlsCredentials() {
    }

    /** Server credentials: its certificate and key; with {@code requireClientAuth}, mutual TLS. */
    public static ServerCredentials server(TlsFiles files) {
        if (!files.hasKeyPair()) {
            throw new TlsConfigException("a TLS server needs its certificate chain and private key");
        }
        KeyPair pair = keyPair(files.certChain(), files.privateKey());
        TlsServerCredentials.Builder b = TlsServerCredentials.newBuilder();
        try {
            b.keyManager(new ByteArrayInputStream(pair.chainPem()), new ByteArrayInputStream(pair.keyPem()));
            if (files.trustRoots() != null) {
                b.trustManager(new ByteArrayInputStream(trustRootsPem(files.trustRoots(), "TLS client CA")));
                b.clientAuth(files.requireClientAuth() ? TlsServerCredentials.ClientAuth.REQUIRE
                        : TlsServerCredentials.ClientAuth.OPTIONAL);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e); // in-memory streams: does not happen
        }
        return b.build();
    }

    /** Channel credentials: trust roots (or the JDK's), and a client certificate when the files have one. */
    public static ChannelCredentials channel(TlsFiles files) {
        TlsChannelCredentials.Builder b = TlsChannelCredentials.newBuilder();
        try {
            if (files.trustRoots() != null) {
                b.trustManager(new ByteArrayInputStream(trustRootsPem(files.trustRoots(), "TLS trust roots")));
            }
            if (files.hasKeyPair()) {
                KeyPair pair = keyPair(files.certChain(), files.privateKey());
                b.keyManager(new ByteArrayInputStream(pair.chainPem()), new ByteArrayInputStream(pair.keyPem()));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return b.build();
    }

    /**
     * A JDK {@link SSLContext} for an HTTPS client: it checks the server with the trust roots (or the JDK's
     * default roots) and presents the client certificate when the files have one. For clients other than grpc's,
     * such as {@link java.net.http.HttpClient}; the files are checked as for {@link #channel}.
     */
    public static SSLContext clientSslContext(TlsFiles files) {
        try {
            KeyManager[] keys = null;
            if (files.hasKeyPair()) {
                KeyPair pair = keyPair(files.certChain(), files.privateKey());
                KeyStore store = KeyStore.getInstance("PKCS12");
                store.load(null, null);
                char[] none = new char[0];
                store.setKeyEntry("client", pair.key(), none, pair.chain().toArray(new X509Certificate[0]));
                KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
                kmf.init(store, none);
                keys = kmf.getKeyManagers();
            }
            TrustManager[] trust = null; // the JDK's default roots
            if (files.trustRoots() != null) {
                KeyStore roots = KeyStore.getInstance("PKCS12");
                roots.load(null, null);
                int i = 0;
                for (X509Certificate c : Pem.certificates(files.trustRoots(), "TLS trust roots")) {
                    roots.setCertificateEntry("root-" + i++, c);
                }
                TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
                tmf.init(roots);
                trust = tmf.getTrustManagers();
            }
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(keys, trust, null);
            return context;
        } catch (GeneralSecurityException e) {
            throw new TlsConfigException("cannot set up TLS from " + files.describe() + ": " + e.getMessage(), e);
        } catch (IOException e) {
            throw new UncheckedIOException(e); // an empty in-memory key store: does not happen
        }
    }

    /** A checked certificate chain and its key, as PEM. */
    record KeyPair(List<X509Certificate> chain, PrivateKey key) {
        byte[] chainPem() {
            return Pem.encodeCertificates(chain);
        }

        byte[] keyPem() {
            return Pem.encodePrivateKey(key);
        }
    }

    /** Reads a certificate chain and its key and checks that they belong together and the leaf is valid now. */
    static KeyPair keyPair(Path certChain, Path privateKey) {
        List<X509Certificate> chain = Pem.certificates(certChain, "TLS certificate chain");
        PrivateKey key = Pem.privateKey(privateKey, "TLS private key");
        X509Certificate leaf = chain.getFirst();
        try {
            leaf.checkValidity();
        } catch (CertificateExpiredException e) {
            throw new TlsConfigException("TLS certificate chain " + certChain + ": the certificate expired on "
                    + leaf.getNotAfter().toInstant());
        } catch (CertificateNotYetValidException e) {
            throw new TlsConfigException("TLS certificate chain " + certChain + ": the certificate is valid only from "
                    + leaf.getNotBefore().toInstant());
        }
        if (!matches(key, leaf)) {
            throw new TlsConfigException("TLS private key " + privateKey + " does not belong to the certificate in "
                    + certChain + " (" + leaf.getSubjectX500Principal().getName() + ")");
        }
        return new KeyPair(chain, key);
    }

    private static byte[] trustRootsPem(Path file, String role) {
        return Pem.encodeCertificates(Pem.certificates(file, role));
    }

    /** Signs a probe with the key and verifies it with the certificate's public key. */
    static boolean matches(PrivateKey key, X509Certificate cert) {
        if (!key.getAlgorithm().equals(cert.getPublicKey().getAlgorithm())) {
            return false;
        }
        String alg = switch (key.getAlgorithm()) {
            case "RSA" -> "SHA256withRSA";
            case "EC" -> "SHA256withECDSA";
            case "Ed25519", "Ed448", "EdDSA" -> key.getAlgorithm();
            default -> null;
        };
        if (alg == null) {
            return true; // an algorithm we cannot probe (RSASSA-PSS): the handshake will tell
        }
        try {
            Signature signer = Signature.getInstance(alg);
            signer.initSign(key);
            signer.update(PROBE);
            byte[] sig = signer.sign();
            Signature verifier = Signature.getInstance(alg);
            verifier.initVerify(cert.getPublicKey());
            verifier.update(PROBE);
            return verifier.verify(sig);
        } catch (GeneralSecurityException e) {
            return false;
        }
    }
}
