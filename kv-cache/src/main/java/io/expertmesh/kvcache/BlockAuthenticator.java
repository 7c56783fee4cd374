package io.expertmesh.kvcache;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.Objects;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * Signs and checks KV blocks with HMAC-SHA256 under a {@link KvSecret}, so that a block is adopted only when a
 * holder of the secret (a router of this tier) wrote it. The CRC32C checksum catches accidents; anyone who can
 * reach the Hazelcast port can recompute it, so it says nothing about who wrote the block.
 *
 * <p>The MAC covers a version label, then exactly the bytes the checksum covers: the key (so a block cannot be
 * moved to another key), the geometry, the token ids and every float's bits. Costs about one SHA-256 pass over
 * the block (a few ms for a 2.2 MB DeepSeek-V3 block), paid on the publisher thread and at lookup, never on the
 * engine's step loop.
 *
 * <p>Thread-safe: each thread gets its own {@link Mac} (a {@code Mac} is not).
 */
final class BlockAuthenticator {
    private static final String ALGORITHM = "HmacSHA256";
    private static final byte[] LABEL = "expertmesh-kv-block-mac-v1\0".getBytes(StandardCharsets.US_ASCII);

    private final ThreadLocal<Mac> macs;

    BlockAuthenticator(KvSecret secret) {
        Objects.requireNonNull(secret, "secret");
        SecretKeySpec key = new SecretKeySpec(secret.keyBytes(), ALGORITHM);
        this.macs = ThreadLocal.withInitial(() -> {
            try {
                Mac m = Mac.getInstance(ALGORITHM);
                m.init(key);
                return m;
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException("HmacSHA256 is required of every JVM", e);
            }
        });
        macs.get(); // fail here, not at the first block, if the JVM lacks it
    }

    /** The block's MAC (32 bytes). */
    byte[] sign(KvBlock block) {
        Mac m = macs.get();
        m.reset();
        m.update(LABEL);
        block.writeCovered(m::update);
        return m.doFinal();
    }

    /** The block with its MAC set. */
    KvBlock signed(KvBlock block) {
        return block.withMac(sign(block));
    }

    /** Whether the block carries the MAC its contents call for (compared in constant time). */
    boolean verify(KvBlock block) {
        byte[] mac = block.mac();
        return mac != null && MessageDigest.isEqual(mac, sign(block));
    }
}
