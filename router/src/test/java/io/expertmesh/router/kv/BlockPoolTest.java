package io.expertmesh.router.kv;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class BlockPoolTest {
    private static final int BS = 2;

    private static BlockHash h(long v) {
        return new BlockHash(v, v);
    }

    private static int[] toks(int a) {
        return new int[]{a, a + 1};
    }

    private static int take(BlockPool pool) {
        int[] out = new int[1];
        assertTrue(pool.allocate(1, out, 0));
        return out[0];
    }

    @Test
    void allocate_thenFree_countsAndRefcounts() {
        BlockPool pool = new BlockPool(4, BS);
        int[] out = new int[3];
        assertTrue(pool.allocate(3, out, 0));
        assertArrayEquals(new int[]{0, 1, 2}, out);
        assertEquals(1, pool.numFreeBlocks());
        assertEquals(1, pool.refCount(1));
        pool.touch(1);
        assertEquals(2, pool.refCount(1));
        pool.free(1);
        assertEquals(1, pool.numFreeBlocks(), "still held once");
        pool.free(1);
        assertEquals(2, pool.numFreeBlocks());
        assertThrows(IllegalStateException.class, () -> pool.free(1));
    }

    @Test
    void allocate_moreThanFree_returnsFalseAndTakesNothing() {
        BlockPool pool = new BlockPool(3, BS);
        int[] out = {-7, -7, -7, -7};
        assertFalse(pool.allocate(4, out, 0));
        assertArrayEquals(new int[]{-7, -7, -7, -7}, out);
        assertEquals(3, pool.numFreeBlocks());
        assertTrue(pool.allocate(3, out, 0));
        assertFalse(pool.allocate(1, out, 0), "exhausted");
        assertEquals(0, pool.numFreeBlocks());
    }

    @Test
    void free_cachedBlocks_areEvictedLeastRecentlyUsedFirstAndLoseTheirHash() {
        BlockPool pool = new BlockPool(3, BS);
        int a = take(pool);
        int b = take(pool);
        int c = take(pool);
        pool.cache(a, h(1), toks(10), 0);
        pool.cache(b, h(2), toks(20), 0);
        pool.cache(c, h(3), toks(30), 0);
        pool.free(b);
        pool.free(a);
        pool.free(c);
        assertArrayEquals(new int[]{b, a, c}, pool.freeQueueOrder());
        assertEquals(3, pool.numCachedBlocks(), "free cached blocks stay reusable until evicted");

        assertEquals(b, take(pool), "least recently freed goes first");
        assertEquals(BlockPool.NO_BLOCK, pool.lookup(h(2)), "evicting removes the hash");
        assertNull(pool.hashOf(b));
        assertEquals(a, pool.lookup(h(1)));
        assertEquals(2, pool.numCachedBlocks());
        assertEquals(a, take(pool));
        assertEquals(c, take(pool));
        assertEquals(0, pool.numCachedBlocks());
    }

    @Test
    void free_uncachedBlock_goesBeforeCachedOnes() {
        BlockPool pool = new BlockPool(3, BS);
        int a = take(pool);
        int b = take(pool);
        int c = take(pool);
        pool.cache(a, h(1), toks(10), 0);
        pool.free(a);
        pool.free(b);   // uncached: head
        pool.free(c);   // uncached: head
        assertArrayEquals(new int[]{c, b, a}, pool.freeQueueOrder());
        take(pool);
        take(pool);
        assertEquals(a, pool.lookup(h(1)), "the cached block survives while uncached ones are available");
    }

    @Test
    void touch_cachedFreeBlock_leavesFreeQueueFromTheMiddle() {
        BlockPool pool = new BlockPool(3, BS);
        int a = take(pool);
        int b = take(pool);
        int c = take(pool);
        pool.cache(a, h(1), toks(10), 0);
        pool.cache(b, h(2), toks(20), 0);
        pool.cache(c, h(3), toks(30), 0);
        pool.free(a);
        pool.free(b);
        pool.free(c);
        pool.touch(pool.lookup(h(2)));
        assertArrayEquals(new int[]{a, c}, pool.freeQueueOrder());
        assertEquals(2, pool.numFreeBlocks());
        assertEquals(1, pool.refCount(b));
        pool.free(b);
        assertArrayEquals(new int[]{a, c, b}, pool.freeQueueOrder(), "reuse made it most recently used");
    }

    @Test
    void cache_hashAlreadyHeld_keepsTheFirstBlock() {
        BlockPool pool = new BlockPool(2, BS);
        int a = take(pool);
        int b = take(pool);
        assertTrue(pool.cache(a, h(1), toks(10), 0));
        assertFalse(pool.cache(b, h(1), toks(10), 0));
        assertFalse(pool.isCached(b));
        assertEquals(a, pool.lookup(h(1)));
    }

    @Test
    void tokensMatch_comparesTheRegisteredIds() {
        BlockPool pool = new BlockPool(1, BS);
        int a = take(pool);
        pool.cache(a, h(1), new int[]{9, 5, 6, 9}, 1);
        assertTrue(pool.tokensMatch(a, new int[]{5, 6}, 0));
        assertFalse(pool.tokensMatch(a, new int[]{5, 7}, 0));
    }

    @Test
    void operations_largePool_takeConstantTime() {
        // 200k blocks: any per-operation scan of the free queue would make this loop quadratic (minutes).
        int n = 200_000;
        BlockPool pool = new BlockPool(n, 1);
        int[] ids = new int[n];
        assertTrue(pool.allocate(n, ids, 0));
        int[] one = new int[1];
        for (int i = 0; i < n; i++) {
            pool.cache(ids[i], new BlockHash(0, i), one, 0);
            pool.free(ids[i]);
        }
        for (int i = n - 1; i >= 0; i -= 2) {
            pool.touch(pool.lookup(new BlockHash(0, i)));
        }
        assertEquals(n / 2, pool.numFreeBlocks());
        assertTrue(pool.allocate(n / 2, ids, 0));
        assertEquals(0, ids[0], "the oldest free cached block is evicted first");
        assertEquals(n / 2, pool.numCachedBlocks());
    }
}
