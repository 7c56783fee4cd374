package io.expertmesh.router.kv;

/**
 * The 128-bit identity of a full block: the first 16 bytes of a SHA-256 over the parent's hash, the hasher's
 * seed and the block's token ids (see {@link BlockHasher}). Two longs instead of a byte array so it is a cheap
 * {@link java.util.HashMap} key with value equality.
 */
public record BlockHash(long hi, long lo) {

    /** The parent of a sequence's first block. */
    public static final BlockHash ROOT = new BlockHash(0, 0);

    @Override
    public int hashCode() {
        return Long.hashCode(hi * 31 + lo);
    }

    @Override
    public String toString() {
        return String.format("%016x%016x", hi, lo);
    }
}
