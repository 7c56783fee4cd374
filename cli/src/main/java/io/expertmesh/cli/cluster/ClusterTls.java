package io.expertmesh.cli.cluster;

import io.expertmesh.security.CertificateIdentity;
import io.expertmesh.security.TlsConfigException;
import io.expertmesh.security.TlsCredentials;
import io.expertmesh.security.TlsFiles;
import io.grpc.ChannelCredentials;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/**
 * The certificates of a TLS {@code expertmesh cluster}, from one directory: the cluster CA ({@code ca.pem}), the
 * router's certificate ({@code router.pem}, {@code router-key.pem}: it serves clients and is the client
 * certificate of the router's mutual-TLS links to the workers) and the workers' one ({@code worker.pem},
 * {@code worker-key.pem}, shared by every worker of the cluster). Workers let in only certificates the CA signed
 * whose CN or SAN is {@link #routerName()}.
 *
 * @param ca         PEM CA certificate(s) signing the router's and the workers' certificates
 * @param routerCert the router's certificate chain
 * @param routerKey  its PKCS#8 key
 * @param workerCert the workers' certificate chain
 * @param workerKey  its PKCS#8 key
 * @param routerName the name the workers allow (the router certificate's CN, else its first SAN)
 */
public record ClusterTls(Path ca, Path routerCert, Path routerKey, Path workerCert, Path workerKey,
                         String routerName) {
    /** The file names {@link #fromDirectory} expects. */
    public static final List<String> FILES = List.of("ca.pem", "router.pem", "router-key.pem", "worker.pem",
            "worker-key.pem");
    private static final String CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
    private static final String SERVER_AUTH = "1.3.6.1.5.5.7.3.1";

    /**
     * Reads and checks the directory's files (each key against its certificate, validity dates, the names
     * the children dial and the router's client-authentication usage), so a wrong file is one line at start-up
     * rather than a child that never becomes ready.
     *
     * @param host the address every child is dialled on: both certificates must name it
     */
    public static ClusterTls fromDirectory(Path dir, String host) {
        if (!Files.isDirectory(dir)) {
            throw new TlsConfigException("--tls-dir " + dir + " is not a directory");
        }
        List<String> missing = FILES.stream().filter(f -> !Files.isReadable(dir.resolve(f))).toList();
        if (!missing.isEmpty()) {
            throw new TlsConfigException("--tls-dir " + dir + " lacks " + String.join(", ", missing)
                    + " (expects " + String.join(", ", FILES) + ")");
        }
        Path abs = dir.toAbsolutePath();
        ClusterTls tls = new ClusterTls(abs.resolve("ca.pem"), abs.resolve("router.pem"),
                abs.resolve("router-key.pem"), abs.resolve("worker.pem"), abs.resolve("worker-key.pem"),
                nameOf(leaf(abs.resolve("router.pem"))));
        // TlsCredentials reads every file and checks keys against certificates and the validity dates.
        TlsCredentials.server(tls.routerServerFiles());
        TlsCredentials.server(tls.workerServerFiles());
        TlsCredentials.channel(tls.routerToWorkerFiles());
        X509Certificate router = leaf(tls.routerCert);
        X509Certificate worker = leaf(tls.workerCert);
        requireName(router, tls.routerCert, host);
        requireName(worker, tls.workerCert, host);
        requireUsage(router, tls.routerCert, SERVER_AUTH, "serverAuth (it serves clients)");
        requireUsage(router, tls.routerCert, CLIENT_AUTH, "clientAuth (the workers check it as a client)");
        requireUsage(worker, tls.workerCert, SERVER_AUTH, "serverAuth");
        return tls;
    }

    /** The router's public endpoint: TLS with its certificate (no client certificates asked for). */
    public TlsFiles routerServerFiles() {
        return TlsFiles.server(routerCert, routerKey);
    }

    /** A worker: mutual TLS, clients signed by the CA. */
    public TlsFiles workerServerFiles() {
        return TlsFiles.mutualServer(workerCert, workerKey, ca);
    }

    /** The router's end of its worker links (and the cluster's readiness checks of the workers). */
    public TlsFiles routerToWorkerFiles() {
        return TlsFiles.client(ca, routerCert, routerKey);
    }

    /** What a client of the router needs: the CA. */
    public ChannelCredentials routerClientCredentials() {
        return TlsCredentials.channel(TlsFiles.client(ca));
    }

    /** What a caller of a worker needs: the CA and a client certificate it signed (the router's). */
    public ChannelCredentials workerClientCredentials() {
        return TlsCredentials.channel(routerToWorkerFiles());
    }

    private static X509Certificate leaf(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            Collection<? extends java.security.cert.Certificate> certs =
                    CertificateFactory.getInstance("X.509").generateCertificates(in);
            if (certs.isEmpty()) {
                throw new TlsConfigException(file + " holds no certificate");
            }
            return (X509Certificate) certs.iterator().next();
        } catch (IOException | CertificateException e) {
            throw new TlsConfigException(file + " is not a PEM certificate chain: " + e.getMessage());
        }
    }

    private static String nameOf(X509Certificate router) {
        return CertificateIdentity.names(router).stream().findFirst().orElseThrow(() -> new TlsConfigException(
                "router.pem has neither a CN nor a subject alternative name; the workers allow the router by name"));
    }

    private static void requireName(X509Certificate cert, Path file, String host) {
        if (!CertificateIdentity.names(cert).contains(host)) {
            throw new TlsConfigException(file + " does not name " + host + " (a SAN IP:" + host + " is needed: the "
                    + "cluster's processes reach each other there); it names " + CertificateIdentity.names(cert));
        }
    }

    private static void requireUsage(X509Certificate cert, Path file, String oid, String what) {
        List<String> usages;
        try {
            usages = cert.getExtendedKeyUsage();
        } catch (CertificateParsingException e) {
            throw new TlsConfigException(file + ": unreadable extended key usage: " + e.getMessage());
        }
        // no extension at all: any usage
        if (usages != null && !usages.contains(oid)) {
            throw new TlsConfigException(file + " needs the extended key usage " + what + "; it has "
                    + new ArrayList<>(usages));
        }
    }
}
