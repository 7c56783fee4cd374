package io.expertmesh.kvcache;

/**
 * The identity of a KV block in the distributed tier: the block's 128-bit chained hash (the router's
 * {@code BlockHash}: SHA-256 of parent hash, model seed and the block's token ids, first 16 bytes). Because
 * the hash chains over the parent, one key names a whole prefix, not just the block's own tokens.
 *
 * <p>A plain record so that the router can build keys without depending on anything in this module but the
 * interface; serialized in the store as compact type {@code expertmesh.kv.BlockKey}.
 */
public record BlockKey(long hi, long lo) {
    @Override
    public String toString() {
        return String.format("%016x%016x", hi, lo);
    }
}
