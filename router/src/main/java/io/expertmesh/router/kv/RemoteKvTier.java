package io.expertmesh.router.kv;

import io.expertmesh.kvcache.BlockKey;
import io.expertmesh.kvcache.KvBlock;
import io.expertmesh.kvcache.KvBlockStore;
import io.expertmesh.kvcache.KvStoreStats;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.LongAdder;

/**
 * The router's side of the distributed KV tier: looks a prompt's prefix up in a {@link KvBlockStore} and
 * publishes the full prompt blocks this router computes. Only {@code io.expertmesh.kvcache} interfaces and
 * records are used; no Hazelcast type.
 *
 * <p><b>Lookup</b> ({@link #lookup}) runs on the submitting (gRPC) thread, never on the step loop: it hashes
 * the prompt's reusable full blocks exactly as {@link KvCacheManager} does and asks the store for the longest
 * cached run, verified by the store (checksum and token ids). The hits travel with the request and are
 * adopted at admission ({@link KvCacheManager#adoptRemoteBlocks}).
 *
 * <p><b>Publishing</b> ({@link #onComputed}) runs on the engine thread from
 * {@link KvCacheManager#cacheFullBlocks}: it copies the block's rows out of the paged storage
 * ({@link KvBlock#fromLayers}, which also checksums) and offers it to the store's bounded queue; the network
 * write happens on the store's thread, and a full queue drops the block (counted by the store). A bounded set
 * of recently published hashes keeps a popular prefix from being published again by every request.
 */
public final class RemoteKvTier implements KvCacheManager.ComputedBlockListener {
    /** Hashes remembered as recently published (about 16 bytes each plus map overhead). */
    public static final int DEFAULT_RECENT_CAPACITY = 65_536;

    private final KvBlockStore store;
    private final KvCacheManager kv;
    private final Map<BlockHash, Boolean> recent;
    private final float[][] layers;
    private final int[] tokens;
    private long published;
    private long skippedRecent;
    private final LongAdder localSkips = new LongAdder();

    /** A tier publishing {@code kv}'s computed blocks; registers itself as {@code kv}'s listener. */
    public RemoteKvTier(KvBlockStore store, KvCacheManager kv, int recentCapacity) {
        this.store = Objects.requireNonNull(store, "store");
        this.kv = Objects.requireNonNull(kv, "kv");
        if (recentCapacity < 1) {
            throw new IllegalArgumentException("recentCapacity must be positive, got " + recentCapacity);
        }
        this.recent = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<BlockHash, Boolean> eldest) {
                return size() > recentCapacity;
            }
        };
        this.layers = new float[kv.storage().numLayers()][];
        this.tokens = new int[kv.blockSize()];
        kv.setComputedBlockListener(this);
    }

    /**
     * Blocks of a prompt found in the store: {@code blocks.get(i)} is the prompt's block {@code first + i}.
     *
     * @param first the first block asked for (the ones before it were in the local cache at lookup time)
     */
    public record Hits(int first, List<KvBlock> blocks) {
        public static final Hits NONE = new Hits(0, List.of());

        public Hits {
            blocks = List.copyOf(blocks);
        }
    }

    /**
     * The prompt's reusable full blocks held by the store (any thread): at most
     * {@link KvCacheManager#maxReusableBlocks} of them, starting after those the local prefix cache holds now
     * (those are not fetched again), stopping at the first miss; none when the prompt has no full reusable
     * block, the local cache holds them all, or the store misses or fails.
     */
    public Hits lookup(int[] prompt) {
        int n = kv.maxReusableBlocks(prompt.length);
        if (n == 0) {
            return Hits.NONE;
        }
        BlockHash[] hashes = kv.prefixHashes(prompt, n);
        int first = kv.locallyCachedPrefix(hashes);
        if (first == n) {
            localSkips.increment();
            return Hits.NONE;
        }
        int bs = kv.blockSize();
        List<BlockKey> keys = new ArrayList<>(n - first);
        List<int[]> expected = new ArrayList<>(n - first);
        for (int i = first; i < n; i++) {
            keys.add(new BlockKey(hashes[i].hi(), hashes[i].lo()));
            expected.add(Arrays.copyOfRange(prompt, i * bs, (i + 1) * bs));
        }
        try {
            List<KvBlock> blocks = store.getPrefix(keys, expected);
            return blocks.isEmpty() ? Hits.NONE : new Hits(first, blocks);
        } catch (RuntimeException e) {
            return Hits.NONE;   // the contract says a store never throws; a misbehaving one costs a miss
        }
    }

    /** Lookups not sent to the store because the local cache held every reusable block (any thread). */
    public long localSkips() {
        return localSkips.sum();
    }

    @Override
    public void onComputed(KvSequence seq, int index, int blockId, BlockHash hash) {
        if (recent.get(hash) != null) {
            skippedRecent++;
            return;
        }
        recent.put(hash, Boolean.TRUE);
        PagedKvStorage storage = kv.storage();
        for (int l = 0; l < layers.length; l++) {
            layers[l] = storage.block(blockId, l);
        }
        seq.copyTokens(index * kv.blockSize(), kv.blockSize(), tokens, 0);
        if (store.publish(KvBlock.fromLayers(new BlockKey(hash.hi(), hash.lo()), tokens, layers,
                storage.rowWidth()))) {
            published++;
        } else {
            recent.remove(hash);    // dropped: a later request may try again
        }
    }

    /** The store's counters. */
    public KvStoreStats storeStats() {
        return store.stats();
    }

    /** Blocks this router offered to the store and the store queued (engine thread's view). */
    public long publishedBlocks() {
        return published;
    }

    /** Computed blocks not published because they were published recently. */
    public long skippedRecent() {
        return skippedRecent;
    }
}
