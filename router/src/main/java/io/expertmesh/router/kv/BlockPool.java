package io.expertmesh.router.kv;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Ref-counted KV blocks, after vLLM's {@code block_pool.py}.
 *
 * <p>A block is <i>in use</i> while some sequence holds it ({@code refCount > 0}; several sequences share a
 * cached prefix block) and <i>free</i> otherwise. Free blocks sit in one doubly linked queue kept in
 * eviction order, with every operation O(1) (no scanning):
 * <ul>
 *   <li>{@link #allocate} pops from the head; if the popped block is cached, that is an eviction: its hash
 *       leaves the map.</li>
 *   <li>{@link #free} of a <b>cached</b> block appends it to the tail, so cached blocks are evicted least
 *       recently used first; a freed block that holds nothing reusable goes to the <b>head</b>, so it is
 *       handed out before any cached block is evicted (the queue is "uncached free blocks, then cached ones
 *       in LRU order").</li>
 *   <li>{@link #touch} of a cached block that a new sequence reuses takes it out of the queue (from
 *       anywhere, in O(1) through its links) and bumps its reference count.</li>
 * </ul>
 * The hash → block map holds every cached full block, in use or free; a block's token ids are kept beside
 * it so a hit can be verified ({@link #tokensMatch}). One block per hash: when another block with the same
 * hash is registered, the first one stays and the second simply remains uncached (vLLM keeps duplicates; we
 * trade that rare reuse for a simpler map).
 *
 * <p>State lives in parallel int arrays indexed by block id (no objects per block, no allocation after
 * construction except map entries). Not thread-safe: the engine's step thread is the only caller, except
 * {@link #probablyCached}.
 */
public final class BlockPool {
    /** Returned by lookups that find nothing. */
    public static final int NO_BLOCK = -1;

    private final int numBlocks;
    private final int blockSize;
    private final int[] refCount;
    // Free queue: a circular doubly linked list through prev/next with sentinel index numBlocks.
    private final int[] prev;
    private final int[] next;
    private final int sentinel;
    private int numFree;
    private final BlockHash[] hashOf;
    private final int[] tokens;
    private final HashMap<BlockHash, Integer> cached;
    /** The keys of {@link #cached}, readable from any thread (see {@link #probablyCached}). */
    private final Set<BlockHash> cachedView = ConcurrentHashMap.newKeySet();

    public BlockPool(int numBlocks, int blockSize) {
        if (numBlocks <= 0 || blockSize <= 0) {
            throw new IllegalArgumentException("numBlocks and blockSize must be positive, got " + numBlocks
                    + ", " + blockSize);
        }
        this.numBlocks = numBlocks;
        this.blockSize = blockSize;
        this.refCount = new int[numBlocks];
        this.prev = new int[numBlocks + 1];
        this.next = new int[numBlocks + 1];
        this.sentinel = numBlocks;
        this.hashOf = new BlockHash[numBlocks];
        this.tokens = new int[Math.multiplyExact(numBlocks, blockSize)];
        this.cached = HashMap.newHashMap(numBlocks);
        prev[sentinel] = sentinel;
        next[sentinel] = sentinel;
        for (int b = 0; b < numBlocks; b++) {
            linkBefore(b, sentinel);
        }
    }

    public int numBlocks() {
        return numBlocks;
    }

    public int blockSize() {
        return blockSize;
    }

    /** Free blocks, cached (evictable) ones included: what {@link #allocate} can hand out. */
    public int numFreeBlocks() {
        return numFree;
    }

    /** Blocks whose hash is registered, in use or free. */
    public int numCachedBlocks() {
        return cached.size();
    }

    public int refCount(int block) {
        return refCount[block];
    }

    public boolean isCached(int block) {
        return hashOf[block] != null;
    }

    /** The registered hash of {@code block}, or null. */
    public BlockHash hashOf(int block) {
        return hashOf[block];
    }

    /**
     * Takes {@code n} blocks from the head of the free queue into {@code out[off, off+n)}, each with reference
     * count 1, evicting cached ones as they come. All or nothing: returns false and changes nothing when
     * fewer than {@code n} blocks are free.
     */
    public boolean allocate(int n, int[] out, int off) {
        if (n < 0) {
            throw new IllegalArgumentException("n must be >= 0, got " + n);
        }
        if (n > numFree) {
            return false;
        }
        for (int i = 0; i < n; i++) {
            int b = next[sentinel];
            unlink(b);
            evict(b);
            refCount[b] = 1;
            out[off + i] = b;
        }
        return true;
    }

    /** One more holder of {@code block}; a free (cached) block leaves the free queue. */
    public void touch(int block) {
        if (refCount[block] == 0) {
            unlink(block);
        }
        refCount[block]++;
    }

    /**
     * One holder fewer. At zero the block becomes free: cached blocks join the tail of the queue (most
     * recently used, evicted last), uncached ones the head (reused first).
     */
    public void free(int block) {
        if (refCount[block] <= 0) {
            throw new IllegalStateException("block " + block + " freed more times than it was taken");
        }
        if (--refCount[block] == 0) {
            linkBefore(block, hashOf[block] != null ? sentinel : next[sentinel]);
        }
    }

    /** The cached block registered under {@code hash}, or {@link #NO_BLOCK}. */
    public int lookup(BlockHash hash) {
        Integer b = cached.get(hash);
        return b == null ? NO_BLOCK : b;
    }

    /**
     * Whether a block with {@code hash} is cached now; any thread. The answer may be stale by the time the caller
     * acts on it (the engine thread evicts and registers concurrently), so use it only as a hint, e.g. to skip
     * asking the distributed tier for blocks this router holds.
     */
    public boolean probablyCached(BlockHash hash) {
        return cachedView.contains(hash);
    }

    /** True when cached {@code block} was registered with token ids {@code ids[off, off+blockSize)}. */
    public boolean tokensMatch(int block, int[] ids, int off) {
        int base = block * blockSize;
        return Arrays.equals(tokens, base, base + blockSize, ids, off, off + blockSize);
    }

    /**
     * Registers in-use, full {@code block} under {@code hash}, remembering its token ids. Returns false (and
     * registers nothing) when the block is already cached or another block holds the hash.
     */
    public boolean cache(int block, BlockHash hash, int[] ids, int off) {
        if (refCount[block] == 0) {
            throw new IllegalStateException("only a block in use can be cached, block " + block + " is free");
        }
        if (hashOf[block] != null || cached.putIfAbsent(hash, block) != null) {
            return false;
        }
        hashOf[block] = hash;
        cachedView.add(hash);
        System.arraycopy(ids, off, tokens, block * blockSize, blockSize);
        return true;
    }

    /** Drops every free block's hash (e.g. after weights change); blocks in use keep theirs. */
    public void resetPrefixCache() {
        for (int b = next[sentinel]; b != sentinel; b = next[b]) {
            evict(b);
        }
    }

    private void evict(int b) {
        BlockHash h = hashOf[b];
        if (h != null) {
            cached.remove(h);
            cachedView.remove(h);
            hashOf[b] = null;
        }
    }

    private void linkBefore(int b, int at) {
        int p = prev[at];
        prev[b] = p;
        next[b] = at;
        next[p] = b;
        prev[at] = b;
        numFree++;
    }

    private void unlink(int b) {
        int p = prev[b];
        int n = next[b];
        next[p] = n;
        prev[n] = p;
        prev[b] = -1;
        next[b] = -1;
        numFree--;
    }

    /** Block ids of the free queue from head (next to go) to tail; for tests and debugging, O(free). */
    int[] freeQueueOrder() {
        int[] order = new int[numFree];
        int i = 0;
        for (int b = next[sentinel]; b != sentinel; b = next[b]) {
            order[i++] = b;
        }
        return order;
    }
}
