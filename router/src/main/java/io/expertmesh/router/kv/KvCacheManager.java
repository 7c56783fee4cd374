package io.expertmesh.router.kv;

import io.expertmesh.router.scheduler.SequenceState;

/**
 * Gives sequences KV blocks, after vLLM's {@code kv_cache_manager.py}: per-sequence {@link BlockTable}s,
 * allocation that answers false (never throws) when blocks run out so the scheduler can preempt, and prefix
 * reuse of cached full blocks.
 *
 * <p>The admission protocol is two calls, made back to back by the scheduler:
 * <ol>
 *   <li>{@link #allocatePrefix} looks the sequence's full blocks up in the prefix cache and sets its computed
 *       count to the hit; it takes nothing yet (the hits are "pending" in the table);</li>
 *   <li>{@link #allocateSlots} takes the hit blocks and the new ones together, or nothing at all. Taking the
 *       hits first removes them from the free queue, so allocating the new blocks can never evict them.</li>
 * </ol>
 * So a sequence that does not fit leaves the pool exactly as it was, and prefix stats count each admission
 * once, however many steps it waited.
 *
 * <p>Exactness of a hit: the hash is chained ({@link BlockHasher}), and each hit block's stored token ids are
 * compared with the sequence's, so a hash collision inside a block is a miss. The block holding the last
 * known token is never reused: with {@code L} tokens at most {@code floor((L-1)/blockSize)} blocks hit, so at
 * least one token is computed and its logits give the next token (vLLM does the same).
 *
 * <p>Not thread-safe: the engine's step thread is the only caller.
 */
public final class KvCacheManager {
    private final PagedKvStorage storage;
    private final BlockPool pool;
    private final BlockHasher hasher;
    private final boolean prefixCaching;
    private final int blockSize;
    private final int[] scratch;
    private long prefixQueryTokens;
    private long prefixHitTokens;

    /** A manager whose pool covers every block of {@code storage}. */
    public KvCacheManager(PagedKvStorage storage, long modelSeed, boolean prefixCaching) {
        this(storage, new BlockPool(storage.numBlocks(), storage.blockSize()), modelSeed, prefixCaching);
    }

    /**
     * @param modelSeed see {@link BlockHasher#seedOf}; the storage's block size, layer count and row width are
     *                  folded in here as well, so mismatched layouts never share hashes
     */
    public KvCacheManager(PagedKvStorage storage, BlockPool pool, long modelSeed, boolean prefixCaching) {
        this(storage, pool, new BlockHasher(BlockHasher.mix(modelSeed, storage.blockSize(), storage.numLayers(),
                storage.rowWidth())), prefixCaching);
    }

    KvCacheManager(PagedKvStorage storage, BlockPool pool, BlockHasher hasher, boolean prefixCaching) {
        if (pool.numBlocks() != storage.numBlocks() || pool.blockSize() != storage.blockSize()) {
            throw new IllegalArgumentException("pool of " + pool.numBlocks() + " blocks of " + pool.blockSize()
                    + " does not match storage of " + storage.numBlocks() + " blocks of " + storage.blockSize());
        }
        this.storage = storage;
        this.pool = pool;
        this.hasher = hasher;
        this.prefixCaching = prefixCaching;
        this.blockSize = storage.blockSize();
        this.scratch = new int[blockSize];
    }

    public PagedKvStorage storage() {
        return storage;
    }

    public BlockPool pool() {
        return pool;
    }

    public int blockSize() {
        return blockSize;
    }

    public boolean prefixCaching() {
        return prefixCaching;
    }

    /** Blocks needed to hold {@code tokens} positions. */
    public int blocksFor(int tokens) {
        return (tokens + blockSize - 1) / blockSize;
    }

    /**
     * Whether {@code seq} could ever run to its token limit, i.e. its whole block table fits the pool when
     * nothing else holds blocks. The engine checks this at admission and rejects a request that fails it
     * with INVALID_ARGUMENT (or clamps its output limit first): such a sequence would otherwise be preempted
     * and re-admitted forever. {@link io.expertmesh.router.scheduler.Scheduler#add} refuses it outright.
     */
    public boolean canEverFit(SequenceState seq) {
        return blocksFor(seq.maxTotalTokens()) <= pool.numBlocks();
    }

    /** The most tokens one sequence can hold: the whole pool. */
    public long maxTokensPerSequence() {
        return (long) pool.numBlocks() * blockSize;
    }

    /**
     * On admission: finds the longest run of cached full blocks at the start of {@code seq}'s tokens (the
     * prompt; after a preemption also the outputs it had), verified by token ids, never including the block
     * holding the last token. Sets {@code seq}'s computed and cached counts to the hit and returns it (a
     * multiple of the block size). The blocks are taken by the {@link #allocateSlots} that must follow.
     */
    public int allocatePrefix(SequenceState seq) {
        BlockTable table = tableOf(seq);
        if (table.size != 0) {
            throw new IllegalStateException(seq.requestId() + " already holds " + table.size + " blocks");
        }
        table.pending = 0;
        int hits = 0;
        if (prefixCaching) {
            int maxHits = (seq.numTokens() - 1) / blockSize;
            for (int i = 0; i < maxHits; i++) {
                BlockHash h = hashOfBlock(seq, table, i);
                int b = pool.lookup(h);
                if (b == BlockPool.NO_BLOCK) {
                    break;
                }
                seq.copyTokens(i * blockSize, blockSize, scratch, 0);
                if (!pool.tokensMatch(b, scratch, 0)) {
                    break;
                }
                table.ids[i] = b;
                hits++;
            }
            table.pending = hits;
            table.pendingQueryTokens = seq.numTokens();
        }
        int cachedTokens = hits * blockSize;
        seq.setNumComputedTokens(cachedTokens);
        seq.setNumCachedTokens(cachedTokens);
        return cachedTokens;
    }

    /**
     * Makes room for tokens up to {@code computed + numNewTokens}: takes the pending prefix hits (if any) and
     * enough new blocks. Returns false, taking nothing, when the pool cannot supply them; pending prefix hits
     * are then dropped and the sequence's computed and cached counts reset to 0 (call {@link #allocatePrefix}
     * again at the next attempt).
     *
     * @throws IllegalArgumentException when the tokens would exceed the sequence's {@code maxTotalTokens}
     */
    public boolean allocateSlots(SequenceState seq, int numNewTokens) {
        if (numNewTokens < 0) {
            throw new IllegalArgumentException("numNewTokens must be >= 0, got " + numNewTokens);
        }
        BlockTable table = tableOf(seq);
        int needTokens = seq.numComputedTokens() + numNewTokens;
        int needBlocks = blocksFor(needTokens);
        if (needTokens > seq.maxTotalTokens()) {
            throw new IllegalArgumentException(seq.requestId() + ": " + needTokens + " tokens exceed its limit of "
                    + seq.maxTotalTokens());
        }
        int newBlocks = Math.max(0, needBlocks - table.size - table.pending);
        int pendingFree = 0;
        for (int i = table.size; i < table.size + table.pending; i++) {
            if (pool.refCount(table.ids[i]) == 0) {
                pendingFree++;
            }
        }
        if (newBlocks + pendingFree > pool.numFreeBlocks()) {
            if (table.pending > 0 || table.size == 0) {
                table.pending = 0;
                table.pendingQueryTokens = 0;
                seq.setNumComputedTokens(0);
                seq.setNumCachedTokens(0);
            }
            return false;
        }
        if (table.pending > 0 || table.pendingQueryTokens > 0) {
            for (int i = table.size; i < table.size + table.pending; i++) {
                pool.touch(table.ids[i]);
            }
            prefixQueryTokens += table.pendingQueryTokens;
            prefixHitTokens += (long) table.pending * blockSize;
            table.size += table.pending;
            table.numRegistered = table.size;
            table.pending = 0;
            table.pendingQueryTokens = 0;
        }
        pool.allocate(newBlocks, table.ids, table.size);
        table.size += newBlocks;
        return true;
    }

    /**
     * After a step: registers the hashes of {@code seq}'s blocks that are now full of computed tokens, so later
     * sequences with the same prefix reuse them. Blocks already cached (prefix hits) and hashes another block
     * already holds are skipped.
     */
    public void cacheFullBlocks(SequenceState seq) {
        if (!prefixCaching) {
            return;
        }
        BlockTable table = tableOf(seq);
        int full = Math.min(seq.numComputedTokens() / blockSize, table.size);
        for (int i = table.numRegistered; i < full; i++) {
            int b = table.ids[i];
            BlockHash h = hashOfBlock(seq, table, i);
            if (!pool.isCached(b)) {
                seq.copyTokens(i * blockSize, blockSize, scratch, 0);
                pool.cache(b, h, scratch, 0);
            }
        }
        table.numRegistered = Math.max(table.numRegistered, full);
    }

    /**
     * Releases {@code seq}'s blocks, last block first so that, of a freed cached chain, the tail is evicted
     * before the head (a prefix stays useful longest). Drops pending prefix hits. Does not touch the
     * sequence's counters; the scheduler resets them on preemption.
     */
    public void free(SequenceState seq) {
        BlockTable table = seq.blockTable();
        if (table == null) {
            return;
        }
        for (int i = table.size - 1; i >= 0; i--) {
            pool.free(table.ids[i]);
        }
        table.size = 0;
        table.pending = 0;
        table.pendingQueryTokens = 0;
        table.numRegistered = 0;
    }

    public KvCacheStats stats() {
        return new KvCacheStats(blockSize, pool.numBlocks(), pool.numFreeBlocks(), pool.numCachedBlocks(),
                prefixQueryTokens, prefixHitTokens);
    }

    private BlockTable tableOf(SequenceState seq) {
        BlockTable table = seq.blockTable();
        if (table == null) {
            table = new BlockTable(storage, blocksFor(seq.maxTotalTokens()));
            seq.attachBlockTable(table);
        }
        return table;
    }

    /** The chained hash of full block {@code i}, computing (once) the hashes up to it. */
    private BlockHash hashOfBlock(SequenceState seq, BlockTable table, int i) {
        while (table.numHashed <= i) {
            int j = table.numHashed;
            BlockHash parent = j == 0 ? BlockHash.ROOT : table.hashes[j - 1];
            seq.copyTokens(j * blockSize, blockSize, scratch, 0);
            table.hashes[j] = hasher.hash(parent, scratch, 0, blockSize);
            table.numHashed++;
        }
        return table.hashes[i];
    }
}
