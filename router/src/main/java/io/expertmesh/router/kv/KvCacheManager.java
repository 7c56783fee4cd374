package io.expertmesh.router.kv;

import io.expertmesh.kvcache.KvBlock;
import java.util.Arrays;
import java.util.List;

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
 * <p><b>Distributed tier.</b> Blocks found in the distributed KV store ({@code kv-cache}) are adopted between
 * the two admission calls by {@link #adoptRemoteBlocks}: they are imported into the local prefix cache and
 * become pending hits like local ones. Full prompt blocks computed here are reported to a
 * {@link ComputedBlockListener} (the publisher) from {@link #cacheFullBlocks}.
 *
 * <p>Not thread-safe: the engine's step thread is the only caller, except {@link #prefixHashes}.
 */
public final class KvCacheManager {
    /** Told about each full prompt block this manager saw computed locally (not a prefix hit, not adopted). */
    @FunctionalInterface
    public interface ComputedBlockListener {
        /**
         * Called on the engine thread from {@link #cacheFullBlocks}, right after the step that filled the block.
         *
         * @param index   the block's index in the sequence (covers tokens {@code [index·blockSize, +blockSize)})
         * @param blockId where its rows are in {@link #storage()}
         * @param hash    its chained hash
         */
        void onComputed(KvSequence seq, int index, int blockId, BlockHash hash);
    }

    private final PagedKvStorage storage;
    private final BlockPool pool;
    private final BlockHasher hasher;
    private final boolean prefixCaching;
    private final int blockSize;
    private final int[] scratch;
    private long prefixQueryTokens;
    private long prefixHitTokens;
    private long adoptedBlocks;
    private ComputedBlockListener computedListener;

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

    /** Sets (or clears, with null) the listener told about locally computed full prompt blocks. */
    public void setComputedBlockListener(ComputedBlockListener listener) {
        this.computedListener = listener;
    }

    /** Blocks imported from the distributed tier by {@link #adoptRemoteBlocks} since start. */
    public long adoptedBlocks() {
        return adoptedBlocks;
    }

    /**
     * The full blocks of a sequence of {@code numTokens} tokens that a prefix hit may cover:
     * {@code floor((numTokens-1)/blockSize)} (the block holding the last token is always computed).
     */
    public int maxReusableBlocks(int numTokens) {
        return numTokens <= 0 ? 0 : (numTokens - 1) / blockSize;
    }

    /**
     * The chained hashes of the first {@code numBlocks} full blocks of {@code tokens}, exactly as
     * {@link #allocatePrefix} and {@link #cacheFullBlocks} compute them (same seed, same hasher). Thread-safe
     * (uses a hasher of its own), so the engine can call it on a gRPC thread to look the prefix up in the
     * distributed tier before admission.
     */
    public BlockHash[] prefixHashes(int[] tokens, int numBlocks) {
        if (numBlocks < 0 || (long) numBlocks * blockSize > tokens.length) {
            throw new IllegalArgumentException(numBlocks + " blocks of " + blockSize + " need more than "
                    + tokens.length + " tokens");
        }
        BlockHasher h = hasher.copy();
        BlockHash[] out = new BlockHash[numBlocks];
        BlockHash parent = BlockHash.ROOT;
        for (int i = 0; i < numBlocks; i++) {
            parent = h.hash(parent, tokens, i * blockSize, blockSize);
            out[i] = parent;
        }
        return out;
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
    public boolean canEverFit(KvSequence seq) {
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
    public int allocatePrefix(KvSequence seq) {
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
     * Admission's prefix step: {@link #allocatePrefix} (the local prefix cache), then {@link #adoptRemoteBlocks}
     * with the distributed tier's hits found for the sequence at submit. Returns the tokens now cached.
     */
    public int admit(KvSequence seq) {
        int cached = allocatePrefix(seq);
        RemoteKvTier.Hits remote = seq.takeRemoteHits();
        if (!remote.blocks().isEmpty()) {
            adoptRemoteBlocks(seq, remote.first(), remote.blocks());
            cached = seq.numComputedTokens();
        }
        return cached;
    }

    /**
     * How many of {@code hashes}, from the first, the local prefix cache holds now (any thread; a hint that may
     * be stale, see {@link BlockPool#probablyCached}).
     */
    public int locallyCachedPrefix(BlockHash[] hashes) {
        int n = 0;
        while (n < hashes.length && pool.probablyCached(hashes[n])) {
            n++;
        }
        return n;
    }

    /** {@link #adoptRemoteBlocks(KvSequence, int, List)} with the remote blocks starting at block 0. */
    public int adoptRemoteBlocks(KvSequence seq, List<KvBlock> remote) {
        return adoptRemoteBlocks(seq, 0, remote);
    }

    /**
     * Between {@link #allocatePrefix} and {@link #allocateSlots}: imports the blocks of the distributed tier
     * that follow the local hit into the local prefix cache, so they become pending hits like local ones, and
     * raises {@code seq}'s computed and cached counts by them. {@code remote.get(i)} is block {@code first + i}
     * of the sequence (what a lookup of its prefix returned); those before the local hit are skipped, nothing is
     * adopted when the local hit ends before {@code first} (a gap: the lookup skipped blocks that were cached
     * locally then but have been evicted since), and adoption
     * stops at the first block that does not fit: other geometry, another hash or other token ids than the
     * sequence's (never wrong output), a hash held locally by a block with other tokens, or no free block.
     *
     * <p>Each imported block takes a free block (evicting the least recently used cached one, as computing it
     * would), gets the rows copied in and its hash registered, and is then released to the free queue as a
     * cached block; the pending local hits and the imported blocks are held while importing, so importing
     * never evicts them. A remote block whose hash is already cached locally (its predecessor had been
     * evicted) is reused without copying. If {@link #allocateSlots} then fails, nothing leaks: the imported
     * blocks stay in the local cache, where the next {@link #allocatePrefix} finds them.
     *
     * @return blocks adopted (0 when prefix caching is off or nothing follows the local hit)
     */
    public int adoptRemoteBlocks(KvSequence seq, int first, List<KvBlock> remote) {
        if (!prefixCaching || remote.isEmpty()) {
            return 0;
        }
        BlockTable table = tableOf(seq);
        if (table.size != 0) {
            throw new IllegalStateException(seq.requestId() + " already holds " + table.size + " blocks");
        }
        int start = table.pending;
        int max = Math.min(first + remote.size(), maxReusableBlocks(seq.numTokens()));
        if (start < first || start >= max) {
            return 0;
        }
        for (int i = 0; i < start; i++) {
            pool.touch(table.ids[i]);
        }
        int n = start;
        for (int i = start; i < max; i++) {
            KvBlock rb = remote.get(i - first);
            if (!rb.hasGeometry(storage.numLayers(), storage.rowWidth(), blockSize)) {
                break;
            }
            BlockHash h = hashOfBlock(seq, table, i);
            if (rb.key().hi() != h.hi() || rb.key().lo() != h.lo()) {
                break;
            }
            seq.copyTokens(i * blockSize, blockSize, scratch, 0);
            if (!Arrays.equals(scratch, rb.tokenIds())) {
                break;
            }
            int b = pool.lookup(h);
            if (b != BlockPool.NO_BLOCK) {
                if (!pool.tokensMatch(b, scratch, 0)) {
                    break;
                }
                pool.touch(b);
            } else {
                if (!pool.allocate(1, table.ids, i)) {
                    break;
                }
                b = table.ids[i];
                for (int l = 0; l < storage.numLayers(); l++) {
                    rb.copyLayerInto(l, storage.block(b, l));
                }
                storage.hostWrote(b);
                if (!pool.cache(b, h, scratch, 0)) {
                    pool.free(b);
                    break;
                }
            }
            table.ids[i] = b;
            n++;
        }
        for (int i = n - 1; i >= 0; i--) {
            pool.free(table.ids[i]);
        }
        table.pending = n;
        int cachedTokens = n * blockSize;
        seq.setNumComputedTokens(cachedTokens);
        seq.setNumCachedTokens(cachedTokens);
        adoptedBlocks += n - start;
        return n - start;
    }

    /**
     * Makes room for tokens up to {@code computed + numNewTokens}: takes the pending prefix hits (if any) and
     * enough new blocks. Returns false, taking nothing, when the pool cannot supply them; pending prefix hits
     * are then dropped and the sequence's computed and cached counts reset to 0 (call {@link #allocatePrefix}
     * again at the next attempt).
     *
     * @throws IllegalArgumentException when the tokens would exceed the sequence's {@code maxTotalTokens}
     */
    public boolean allocateSlots(KvSequence seq, int numNewTokens) {
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
     * already holds are skipped. Each newly full block that lies wholly in the prompt and was computed here
     * (prefix hits and adopted blocks are registered at admission, so they never come by) goes to the
     * {@link ComputedBlockListener}, if one is set.
     */
    public void cacheFullBlocks(KvSequence seq) {
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
            if (computedListener != null && (i + 1) * blockSize <= seq.numPromptTokens()) {
                computedListener.onComputed(seq, i, b, h);
            }
        }
        table.numRegistered = Math.max(table.numRegistered, full);
    }

    /**
     * Releases {@code seq}'s blocks, last block first so that, of a freed cached chain, the tail is evicted
     * before the head (a prefix stays useful longest). Drops pending prefix hits. Does not touch the
     * sequence's counters; the scheduler resets them on preemption.
     */
    public void free(KvSequence seq) {
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

    private BlockTable tableOf(KvSequence seq) {
        BlockTable table = seq.blockTable();
        if (table == null) {
            table = new BlockTable(storage, blocksFor(seq.maxTotalTokens()));
            seq.attachBlockTable(table);
        }
        return table;
    }

    /** The chained hash of full block {@code i}, computing (once) the hashes up to it. */
    private BlockHash hashOfBlock(KvSequence seq, BlockTable table, int i) {
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
