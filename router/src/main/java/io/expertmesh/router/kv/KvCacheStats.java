package io.expertmesh.router.kv;

/**
 * A snapshot of the KV cache.
 *
 * @param freeBlocks       blocks an allocation can take now, evictable cached ones included
 * @param cachedBlocks     blocks registered in the prefix cache (in use or free)
 * @param prefixQueryTokens tokens of admitted sequences that were looked up in the prefix cache
 * @param prefixHitTokens  of those, tokens served from cached blocks
 */
public record KvCacheStats(int blockSize, int totalBlocks, int freeBlocks, int cachedBlocks,
                           long prefixQueryTokens, long prefixHitTokens) {

    /** Fraction of blocks in use (0 when everything is free or evictable). */
    public double usage() {
        return totalBlocks == 0 ? 0 : 1.0 - (double) freeBlocks / totalBlocks;
    }

    /** Prefix hit rate over queried tokens (0 before any query). */
    public double prefixHitRate() {
        return prefixQueryTokens == 0 ? 0 : (double) prefixHitTokens / prefixQueryTokens;
    }
}
