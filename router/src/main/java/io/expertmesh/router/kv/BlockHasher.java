package io.expertmesh.router.kv;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * Chained block hashes, as vLLM's {@code hash_block_tokens}: {@code hash(parent, tokens of the block, seed)}.
 * Because the parent's hash is part of the input, a block's hash names its whole prefix, so equal hashes mean
 * "same tokens at the same positions", which is what makes a block's KV reusable (rotary embedding makes a
 * row depend on its position, not just its token).
 *
 * <p><b>128 bits, SHA-256.</b> The hash is the first 16 bytes of SHA-256(parent ‖ seed ‖ tokens as
 * big-endian int32). SHA-256 is stable across JVMs, versions and machines, which the distributed KV tier
 * needs (a hash published by one router is looked up by another), and 128 bits make an accidental collision
 * among even 10¹² cached blocks about 10⁻¹⁵ likely. The local cache still checks the token ids of each hit
 * block (see {@link BlockPool#tokensMatch}) so a collision inside one block costs a miss, never wrong output.
 * Cost: one digest per full block (not per token), about a microsecond for 16 tokens.
 *
 * <p><b>The seed</b> covers everything besides the tokens that decides a block's contents: the model (its
 * {@code ModelIdentity}: config, tensors and a digest of the weights, never the directory's path), the weight
 * dtype, the block size and the KV row layout (layers × row width). Caches of
 * different models or layouts can then share one distributed tier without ever matching. Build it with
 * {@link #seedOf}; {@link KvCacheManager} also folds in its storage's geometry.
 *
 * <p>Not thread-safe: it reuses one digest and one buffer (the engine's step thread owns it).
 */
public final class BlockHasher {
    private final long seed;
    private final int keepBits;
    private final MessageDigest digest;
    private final byte[] out = new byte[32];
    private byte[] buf = new byte[64];

    public BlockHasher(long seed) {
        this(seed, 128);
    }

    /**
     * A hasher that keeps only the low {@code keepBits} bits of each hash. Tests use {@code keepBits = 0} to
     * force every block to collide and prove that a colliding block is a miss, not a hit.
     */
    BlockHasher(long seed, int keepBits) {
        if (keepBits < 0 || keepBits > 128) {
            throw new IllegalArgumentException("keepBits must be in [0, 128], got " + keepBits);
        }
        this.seed = seed;
        this.keepBits = keepBits;
        try {
            this.digest = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required of every JVM", e);
        }
    }

    /**
     * The seed of a model's block hashes: SHA-256 of the fields, folded to 64 bits.
     *
     * @param modelId  what identifies the weights (the engine passes {@code LoadedModel.identity()}); never a
     *                 path, which says nothing about what the files hold
     * @param dtype    the KV cache element type ("f32", "bf16")
     * @param kvLayout the row layout, e.g. "mla:32+8" or "gqa:8x128", plus the number of layers
     */
    public static long seedOf(String modelId, String dtype, int blockSize, String kvLayout) {
        String s = "expertmesh-kv-v1\0" + modelId + '\0' + dtype + '\0' + blockSize + '\0' + kvLayout;
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
            return readLong(d, 0);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required of every JVM", e);
        }
    }

    /** Folds more layout fields into a seed (a 64-bit mix; order matters). */
    public static long mix(long seed, long... fields) {
        long h = seed;
        for (long f : fields) {
            h = Long.rotateLeft(h ^ f * 0x9E3779B97F4A7C15L, 27) * 0x94D049BB133111EBL;
            h ^= h >>> 31;
        }
        return h;
    }

    public long seed() {
        return seed;
    }

    /** A new hasher with the same seed and width (hashers are not thread-safe; give each thread its own). */
    public BlockHasher copy() {
        return new BlockHasher(seed, keepBits);
    }

    /** Hash of the block holding {@code tokens[off, off+len)} whose predecessor has hash {@code parent}. */
    public BlockHash hash(BlockHash parent, int[] tokens, int off, int len) {
        int n = 24 + 4 * len;
        if (buf.length < n) {
            buf = new byte[n];
        }
        writeLong(buf, 0, parent.hi());
        writeLong(buf, 8, parent.lo());
        writeLong(buf, 16, seed);
        for (int i = 0; i < len; i++) {
            int t = tokens[off + i];
            int p = 24 + 4 * i;
            buf[p] = (byte) (t >>> 24);
            buf[p + 1] = (byte) (t >>> 16);
            buf[p + 2] = (byte) (t >>> 8);
            buf[p + 3] = (byte) t;
        }
        digest.update(buf, 0, n);
        try {
            digest.digest(out, 0, out.length);
        } catch (java.security.DigestException e) {
            throw new IllegalStateException(e);
        }
        long hi = readLong(out, 0);
        long lo = readLong(out, 8);
        if (keepBits < 128) {
            lo = keepBits >= 64 ? lo : lo & ((1L << keepBits) - 1);
            hi = keepBits <= 64 ? 0 : hi & ((1L << (keepBits - 64)) - 1);
        }
        return new BlockHash(hi, lo);
    }

    private static void writeLong(byte[] b, int off, long v) {
        for (int i = 0; i < 8; i++) {
            b[off + i] = (byte) (v >>> (56 - 8 * i));
        }
    }

    private static long readLong(byte[] b, int off) {
        long v = 0;
        for (int i = 0; i < 8; i++) {
            v = (v << 8) | (b[off + i] & 0xFF);
        }
        return v;
    }
}
