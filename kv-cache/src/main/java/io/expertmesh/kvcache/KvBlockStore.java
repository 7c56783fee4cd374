package io.expertmesh.kvcache;

import java.util.List;

/**
 * The distributed KV tier as the router sees it: look up the longest cached run of a prefix's blocks, and
 * publish finished blocks. No Hazelcast type appears here; build one with {@link KvStores#create}.
 *
 * <p>Both operations are best effort by contract. A lookup never throws for a store problem: an unreachable
 * cluster, a timeout, an entry that fails its checksum or carries other tokens all count as a miss, and the
 * router recomputes. Publishing never blocks: blocks go to a bounded queue drained in the background, and a
 * full queue drops the block. Implementations are thread-safe.
 */
public interface KvBlockStore extends AutoCloseable {

    /**
     * The cached blocks of a prefix, in order, stopping at the first key that is absent, unreadable or fails
     * {@link KvBlock#verify()} (or whose block carries another key).
     *
     * @param keys the chained hashes of the prefix's full blocks, first block first
     * @return the hits, {@code result.get(i)} for {@code keys.get(i)}; empty when the first block misses
     */
    default List<KvBlock> getPrefix(List<BlockKey> keys) {
        return getPrefix(keys, null);
    }

    /**
     * As {@link #getPrefix(List)}, and a block whose token ids differ from {@code expectedTokens.get(i)} is a
     * miss too (guards against a hash collision, as the router's local cache does).
     *
     * @param expectedTokens null, or one array of token ids per key (an element may be null: not checked)
     * @throws IllegalArgumentException when {@code expectedTokens} is given with a size other than the keys'
     */
    List<KvBlock> getPrefix(List<BlockKey> keys, List<int[]> expectedTokens);

    /**
     * Queues a block for storing, without blocking. The block must not be changed afterwards.
     *
     * @return true when queued; false when the queue is full or the store is closed (counted as a drop)
     */
    boolean publish(KvBlock block);

    /** A snapshot of the counters since the store was created. */
    KvStoreStats stats();

    /**
     * Stops the publisher (blocks still queued get a short grace period to be stored) and releases the
     * cluster connection or member this store owns. Idempotent; lookups after close miss.
     */
    @Override
    void close();
}
