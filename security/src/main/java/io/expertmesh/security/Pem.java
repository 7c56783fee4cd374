package io.expertmesh.security;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads certificates and private keys from PEM files, with errors that name the file and say how to fix it.
 * Pure parsing (no gRPC): what {@link TlsCredentials} validates here is exactly what it hands to grpc, re-encoded.
 */
final class Pem {
    private static final Pattern BLOCK = Pattern.compile(
            "-----BEGIN ([A-Z0-9 ]+)-----\\s*([A-Za-z0-9+/=\\s]*?)\\s*-----END \\1-----");
    /** Algorithms a PKCS#8 key may use; the JDK's KeyFactory tells which one by accepting it. */
    private static final String[] KEY_ALGORITHMS = {"RSA", "EC", "Ed25519", "Ed448", "RSASSA-PSS"};

    private Pem() {
    }

    /** One BEGIN/END block: its type ("CERTIFICATE", "PRIVATE KEY", ...) and its DER bytes. */
    record Block(String type, byte[] der) {
    }

    /** Every PEM block of the file; text around them (openssl's human-readable dumps) is ignored. */
    static List<Block> blocks(Path file, String role) {
        String text = read(file, role);
        List<Block> out = new ArrayList<>();
        Matcher m = BLOCK.matcher(text);
        while (m.find()) {
            try {
                out.add(new Block(m.group(1), Base64.getMimeDecoder().decode(m.group(2))));
            } catch (IllegalArgumentException e) {
                throw new TlsConfigException(role + " " + file + ": a " + m.group(1) + " block is not valid base64");
            }
        }
        if (out.isEmpty()) {
            throw new TlsConfigException(role + " " + file + ": no PEM block (-----BEGIN ...-----) found");
        }
        return out;
    }

    /** The certificates of the file, in file order (leaf first for a chain); at least one. */
    static List<X509Certificate> certificates(Path file, String role) {
        List<X509Certificate> certs = new ArrayList<>();
        CertificateFactory factory;
        try {
            factory = CertificateFactory.getInstance("X.509");
        } catch (CertificateException e) {
            throw new IllegalStateException("the JDK has no X.509 certificate factory", e);
        }
        for (Block b : blocks(file, role)) {
            if (!b.type().equals("CERTIFICATE")) {
                continue;
            }
            try {
                certs.add((X509Certificate) factory.generateCertificate(new ByteArrayInputStream(b.der())));
            } catch (CertificateException e) {
                throw new TlsConfigException(role + " " + file + ": certificate " + (certs.size() + 1)
                        + " cannot be parsed: " + e.getMessage(), e);
            }
        }
        if (certs.isEmpty()) {
            throw new TlsConfigException(role + " " + file + ": no CERTIFICATE block found");
        }
        return certs;
    }

    /** The one unencrypted PKCS#8 private key of the file. */
    static PrivateKey privateKey(Path file, String role) {
        PrivateKey key = null;
        for (Block b : blocks(file, role)) {
            switch (b.type()) {
                case "PRIVATE KEY" -> {
                    if (key != null) {
                        throw new TlsConfigException(role + " " + file + ": more than one private key");
                    }
                    key = pkcs8(b.der(), file, role);
                }
                case "RSA PRIVATE KEY", "EC PRIVATE KEY" -> throw new TlsConfigException(role + " " + file
                        + ": a " + b.type() + " (PKCS#1/SEC1) block; convert it to PKCS#8 with "
                        + "'openssl pkcs8 -topk8 -nocrypt -in " + file + " -out key.pem'");
                case "ENCRYPTED PRIVATE KEY" -> throw new TlsConfigException(role + " " + file
                        + ": the key is encrypted; decrypt it with 'openssl pkcs8 -in " + file + " -out key.pem' "
                        + "and protect the file with its permissions instead");
                default -> {
                    // certificates or parameters next to the key: not ours to read here
                }
            }
        }
        if (key == null) {
            throw new TlsConfigException(role + " " + file + ": no PRIVATE KEY block found");
        }
        return key;
    }

    private static PrivateKey pkcs8(byte[] der, Path file, String role) {
        PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(der);
        for (String alg : KEY_ALGORITHMS) {
            try {
                return KeyFactory.getInstance(alg).generatePrivate(spec);
            } catch (GeneralSecurityException | ClassCastException notThisOne) {
                // try the next algorithm
            }
        }
        throw new TlsConfigException(role + " " + file + ": the PRIVATE KEY block is not an RSA, EC or EdDSA key");
    }

    /** PEM text of certificates, as grpc's key and trust managers read it. */
    static byte[] encodeCertificates(List<X509Certificate> certs) {
        StringBuilder sb = new StringBuilder();
        for (X509Certificate c : certs) {
            try {
                sb.append(encode("CERTIFICATE", c.getEncoded()));
            } catch (java.security.cert.CertificateEncodingException e) {
                throw new IllegalStateException("a parsed certificate cannot be re-encoded", e);
            }
        }
        return sb.toString().getBytes(StandardCharsets.US_ASCII);
    }

    /** PEM text of a PKCS#8 private key. */
    static byte[] encodePrivateKey(PrivateKey key) {
        return encode("PRIVATE KEY", key.getEncoded()).getBytes(StandardCharsets.US_ASCII);
    }

    private static String encode(String type, byte[] der) {
        return "-----BEGIN " + type + "-----\n"
                + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der)
                + "\n-----END " + type + "-----\n";
    }

    private static String read(Path file, String role) {
        try {
            return Files.readString(file, StandardCharsets.ISO_8859_1);
        } catch (NoSuchFileException e) {
            throw new TlsConfigException(role + " " + file + ": file not found");
        } catch (AccessDeniedException e) {
            throw new TlsConfigException(role + " " + file + ": permission denied");
        } catch (IOException e) {
            throw new TlsConfigException(role + " " + file + ": cannot be read: " + e.getMessage(), e);
        }
    }
}
