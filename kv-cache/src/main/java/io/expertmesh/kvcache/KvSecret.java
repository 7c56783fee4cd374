package io.expertmesh.kvcache;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.Objects;

/**
 * The key routers sign and check KV blocks with (see {@link BlockAuthenticator}). Every router of one tier must
 * hold the same secret; cache nodes never need it (they store bytes, they do not judge them).
 *
 * <p>Read from a file whose contents, surrounding white space removed, are the secret: at least
 * {@value #MIN_LENGTH} characters, e.g. {@code openssl rand -hex 32 > kv-secret}. {@link #toString()} names the
 * file, never the secret, so a logged configuration cannot leak it.
 */
public final class KvSecret {
    /** 32 characters: 128 bits of entropy as hex, the least a keyed MAC should get. */
    public static final int MIN_LENGTH = 32;

    private final byte[] key;
    private final String source;

    private KvSecret(byte[] key, String source) {
        this.key = key;
        this.source = source;
    }

    /** The secret in {@code file}; errors name the file and what is wrong, never the contents. */
    public static KvSecret read(Path file) {
        Objects.requireNonNull(file, "file");
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8).strip();
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read the KV secret file " + file + ": " + e.getMessage(), e);
        }
        if (text.length() < MIN_LENGTH) {
            throw new IllegalArgumentException("the KV secret in " + file + " has " + text.length()
                    + " characters; it needs at least " + MIN_LENGTH + " (e.g. openssl rand -hex 32)");
        }
        return new KvSecret(text.getBytes(StandardCharsets.UTF_8), file.toString());
    }

    /** A fresh random secret (64 hex characters), for a tier that lives as long as one process tree. */
    public static String randomText() {
        byte[] b = new byte[32];
        new SecureRandom().nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

    /**
     * HMAC-SHA256 under this secret of {@code label} then {@code data}: for other state the routers of one tier
     * share through it (the expert placement), each kind with its own label so one cannot pass for another.
     */
    public byte[] hmac(byte[] label, byte[] data) {
        try {
            javax.crypto.Mac m = javax.crypto.Mac.getInstance("HmacSHA256");
            m.init(new javax.crypto.spec.SecretKeySpec(key, "HmacSHA256"));
            m.update(label);
            return m.doFinal(data);
        } catch (java.security.GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is required of every JVM", e);
        }
    }

    /** A copy of the key bytes (for the MAC). */
    byte[] keyBytes() {
        return key.clone();
    }

    @Override
    public String toString() {
        return "KvSecret[from " + source + ", " + key.length + " bytes]";
    }
}
