package io.expertmesh.security;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Date;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A certificate authority made at test time (EC P-256, BouncyCastle), writing PEM files into a directory: no
 * private key is committed. Shared with the services' tests through the test-jar.
 */
public final class TestCa {
    private static final AtomicLong SERIAL = new AtomicLong(System.nanoTime());

    /** A certificate and its key as PEM files. */
    public record Issued(Path cert, Path key, X509Certificate certificate) {
    }

    private final Path dir;
    private final String name;
    private final KeyPair keys;
    private final X509Certificate cert;
    private final Path certFile;

    private TestCa(Path dir, String name) {
        this.dir = dir;
        this.name = name;
        this.keys = newKeyPair();
        X500Name subject = new X500Name("CN=" + name);
        Instant now = Instant.now();
        try {
            X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(subject, serial(),
                    Date.from(now.minus(Duration.ofHours(1))), Date.from(now.plus(Duration.ofDays(1))), subject,
                    keys.getPublic());
            b.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
            b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
            b.addExtension(Extension.subjectKeyIdentifier, false,
                    new JcaX509ExtensionUtils().createSubjectKeyIdentifier(keys.getPublic()));
            this.cert = sign(b, keys);
        } catch (IOException | GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
        this.certFile = dir.resolve(name + "-ca.pem");
        write(certFile, pem("CERTIFICATE", encoded(cert)));
    }

    /** A new CA named {@code name}; its certificate is written to {@code dir/NAME-ca.pem}. */
    public static TestCa create(Path dir, String name) {
        return new TestCa(dir, name);
    }

    /** The CA certificate (trust roots) file. */
    public Path certFile() {
        return certFile;
    }

    /** A server certificate for localhost and 127.0.0.1. */
    public Issued server(String cn) {
        return issue(cn, List.of("localhost"), List.of("127.0.0.1"), KeyPurposeId.id_kp_serverAuth,
                Duration.ofDays(1));
    }

    /**
     * A certificate for localhost and 127.0.0.1 usable both to serve and as a client certificate (a router: it
     * serves clients and calls mutual-TLS workers).
     */
    public Issued serverAndClient(String cn) {
        return issue(cn, List.of("localhost"), List.of("127.0.0.1"), List.of(KeyPurposeId.id_kp_serverAuth,
                KeyPurposeId.id_kp_clientAuth), Duration.ofDays(1));
    }

    /** A client certificate with {@code cn} as its only name. */
    public Issued client(String cn) {
        return issue(cn, List.of(), List.of(), KeyPurposeId.id_kp_clientAuth, Duration.ofDays(1));
    }

    /** A server certificate for localhost that expired an hour ago. */
    public Issued expiredServer(String cn) {
        return issue(cn, List.of("localhost"), List.of("127.0.0.1"), KeyPurposeId.id_kp_serverAuth,
                Duration.ofHours(-1));
    }

    private Issued issue(String cn, List<String> dns, List<String> ips, KeyPurposeId purpose, Duration validFor) {
        return issue(cn, dns, ips, List.of(purpose), validFor);
    }

    private Issued issue(String cn, List<String> dns, List<String> ips, List<KeyPurposeId> purposes,
                         Duration validFor) {
        KeyPair leafKeys = newKeyPair();
        Instant now = Instant.now();
        Instant from = validFor.isNegative() ? now.minus(Duration.ofDays(2)) : now.minus(Duration.ofHours(1));
        try {
            X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(cert, serial(), Date.from(from),
                    Date.from(now.plus(validFor)), new X500Name("CN=" + cn), leafKeys.getPublic());
            b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
            b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature));
            b.addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(purposes.toArray(KeyPurposeId[]::new)));
            b.addExtension(Extension.authorityKeyIdentifier, false,
                    new JcaX509ExtensionUtils().createAuthorityKeyIdentifier(cert));
            List<GeneralName> sans = new ArrayList<>();
            dns.forEach(d -> sans.add(new GeneralName(GeneralName.dNSName, d)));
            ips.forEach(ip -> sans.add(new GeneralName(GeneralName.iPAddress, ip)));
            if (!sans.isEmpty()) {
                b.addExtension(Extension.subjectAlternativeName, false,
                        new GeneralNames(sans.toArray(GeneralName[]::new)));
            }
            X509Certificate leaf = sign(b, keys);
            String base = name + "-" + cn + "-" + SERIAL.incrementAndGet();
            Path certPath = dir.resolve(base + ".crt.pem");
            Path keyPath = dir.resolve(base + ".key.pem");
            write(certPath, pem("CERTIFICATE", encoded(leaf)));
            write(keyPath, pem("PRIVATE KEY", leafKeys.getPrivate().getEncoded()));
            return new Issued(certPath, keyPath, leaf);
        } catch (IOException | GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    private static X509Certificate sign(X509v3CertificateBuilder b, KeyPair signer) throws GeneralSecurityException {
        try {
            return new JcaX509CertificateConverter().getCertificate(
                    b.build(new JcaContentSignerBuilder("SHA256withECDSA").build(signer.getPrivate())));
        } catch (OperatorCreationException e) {
            throw new GeneralSecurityException(e);
        }
    }

    private static KeyPair newKeyPair() {
        try {
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
            g.initialize(new ECGenParameterSpec("secp256r1"));
            return g.generateKeyPair();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    private static BigInteger serial() {
        return BigInteger.valueOf(SERIAL.incrementAndGet());
    }

    private static byte[] encoded(X509Certificate c) {
        try {
            return c.getEncoded();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** PEM text of one block. */
    public static String pem(String type, byte[] der) {
        return "-----BEGIN " + type + "-----\n" + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der)
                + "\n-----END " + type + "-----\n";
    }

    private static void write(Path file, String text) {
        try {
            Files.writeString(file, text, StandardCharsets.US_ASCII);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
