package io.expertmesh.router.kv;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.model.KvCache;
import io.expertmesh.router.scheduler.SequenceState;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class KvCacheManagerTest {
    private static final int BS = 4;
    private static final int LAYERS = 2;
    private static final int ROW = 3;

    private static KvCacheManager manager(int blocks, boolean prefixCaching) {
        return new KvCacheManager(new PagedKvStorage(LAYERS, ROW, BS, blocks), 7L, prefixCaching);
    }

    private static int[] range(int from, int n) {
        return IntStream.range(from, from + n).toArray();
    }

    private static SequenceState seq(String id, int[] prompt) {
        return new SequenceState(id, prompt, prompt.length + 8, 0);
    }

    /** Admits and "computes" the whole prompt, as one prefill step would. */
    private static SequenceState runPrompt(KvCacheManager kv, SequenceState s) {
        kv.allocatePrefix(s);
        assertTrue(kv.allocateSlots(s, s.numTokens() - s.numComputedTokens()));
        s.setNumComputedTokens(s.numTokens());
        kv.cacheFullBlocks(s);
        return s;
    }

    @Test
    void allocatePrefix_secondSequenceSharingTwoBlocks_reusesThem() {
        KvCacheManager kv = manager(16, true);
        int[] shared = range(100, 2 * BS);
        int[] a = IntStream.concat(IntStream.of(shared), IntStream.of(1, 2, 3)).toArray();
        int[] b = IntStream.concat(IntStream.of(shared), IntStream.of(7, 8, 9, 10, 11)).toArray();
        SequenceState sa = runPrompt(kv, seq("a", a));
        SequenceState sb = seq("b", b);

        assertEquals(2 * BS, kv.allocatePrefix(sb));
        assertEquals(2 * BS, sb.numComputedTokens());
        assertEquals(2 * BS, sb.numCachedTokens());
        assertTrue(kv.allocateSlots(sb, b.length - 2 * BS));
        BlockTable ta = sa.blockTable();
        BlockTable tb = sb.blockTable();
        assertEquals(ta.blockId(0), tb.blockId(0));
        assertEquals(ta.blockId(1), tb.blockId(1));
        assertNotEquals(ta.blockId(2), tb.blockId(2));
        assertEquals(2, kv.pool().refCount(ta.blockId(0)));
        assertEquals(4, tb.numBlocks());
    }

    @Test
    void allocatePrefix_promptOfExactlyTwoBlocks_reusesOnlyOneSoTheLastTokenIsComputed() {
        KvCacheManager kv = manager(16, true);
        int[] p = range(50, 2 * BS);
        runPrompt(kv, seq("a", p));
        SequenceState b = seq("b", p);
        assertEquals(BS, kv.allocatePrefix(b), "at most floor((L-1)/bs) blocks");
        assertTrue(kv.allocateSlots(b, BS));
        assertEquals(2, b.blockTable().numBlocks());

        SequenceState c = seq("c", range(50, 2 * BS + 1));
        assertEquals(2 * BS, kv.allocatePrefix(c), "one token past two blocks may reuse both");
    }

    @Test
    void allocatePrefix_forcedHashCollision_isAMiss() {
        PagedKvStorage storage = new PagedKvStorage(LAYERS, ROW, BS, 16);
        KvCacheManager kv = new KvCacheManager(storage, new BlockPool(16, BS), new BlockHasher(0, 0), true);
        runPrompt(kv, seq("a", range(10, 2 * BS + 1)));
        SequenceState b = seq("b", range(20, 2 * BS + 1));
        assertEquals(0, kv.allocatePrefix(b), "same (zero) hash, different tokens: miss");
        SequenceState c = seq("c", range(10, 2 * BS + 1));
        assertEquals(BS, kv.allocatePrefix(c),
                "with every hash equal only one block is registered, and it is the first");
    }

    @Test
    void allocatePrefix_prefixCachingOff_neverHits() {
        KvCacheManager kv = manager(16, false);
        runPrompt(kv, seq("a", range(10, 3 * BS)));
        assertEquals(0, kv.allocatePrefix(seq("b", range(10, 3 * BS))));
        assertEquals(0, kv.stats().cachedBlocks());
    }

    @Test
    void stats_afterHitAndMiss_countQueriedAndHitTokensOncePerAdmission() {
        KvCacheManager kv = manager(16, true);
        runPrompt(kv, seq("a", range(10, 2 * BS + 2)));        // 10 queried, 0 hit
        SequenceState b = seq("b", range(10, 2 * BS + 3));      // 11 queried, 8 hit
        kv.allocatePrefix(b);
        kv.allocatePrefix(b);                                  // a re-lookup before commit counts once
        assertTrue(kv.allocateSlots(b, 3));
        KvCacheStats st = kv.stats();
        assertEquals(21, st.prefixQueryTokens());
        assertEquals(8, st.prefixHitTokens());
        assertEquals(2, st.cachedBlocks());
        assertEquals(16 - 3 - 1, st.freeBlocks(), "a: 3 blocks, b: 2 shared + 1 new");
        assertEquals(BS, st.blockSize());
        assertEquals(16, st.totalBlocks());
    }

    @Test
    void allocateSlots_notEnoughBlocks_returnsFalseAndTakesNothing() {
        KvCacheManager kv = manager(4, true);
        SequenceState a = runPrompt(kv, seq("a", range(10, 2 * BS + 1)));   // 3 blocks, 2 cached
        kv.free(a);
        SequenceState big = new SequenceState("big", range(10, 4 * BS), 4 * BS, 1);
        SequenceState hog = runPrompt(kv, new SequenceState("hog", range(90, 2), 4, 2)); // takes 1 block
        assertEquals(2 * BS, kv.allocatePrefix(big));
        assertFalse(kv.allocateSlots(big, 2 * BS), "needs 2 hit + 2 new blocks, 3 free");
        assertEquals(0, big.numComputedTokens(), "the dropped hit is not computed");
        assertEquals(3, kv.stats().freeBlocks());
        assertEquals(2, kv.stats().cachedBlocks(), "the hit blocks were not evicted by the failed attempt");
        assertEquals(0, big.blockTable().numBlocks());
        assertEquals(0, kv.stats().prefixHitTokens());
        kv.free(hog);
        assertEquals(2 * BS, kv.allocatePrefix(big));
        assertTrue(kv.allocateSlots(big, 2 * BS));
        assertEquals(0, kv.stats().freeBlocks());
    }

    @Test
    void free_sequence_returnsEveryBlockAndKeepsCachedOnesReusable() {
        KvCacheManager kv = manager(8, true);
        SequenceState a = runPrompt(kv, seq("a", range(10, 2 * BS + 1)));
        SequenceState b = seq("b", range(10, 2 * BS + 1));
        kv.allocatePrefix(b);
        assertTrue(kv.allocateSlots(b, 1));
        kv.free(a);
        kv.free(b);
        assertEquals(8, kv.stats().freeBlocks());
        assertEquals(2, kv.stats().cachedBlocks());
        assertEquals(0, b.kvCache().capacity());
        assertEquals(2 * BS, kv.allocatePrefix(seq("c", range(10, 2 * BS + 1))));
    }

    @Test
    void kvCache_writeThroughView_landsInTheRightBlockRow() {
        KvCacheManager kv = manager(8, false);
        SequenceState filler = seq("filler", range(0, 1));
        kv.allocatePrefix(filler);
        assertTrue(kv.allocateSlots(filler, 1));      // so the sequence's blocks are not simply 0, 1, 2
        SequenceState s = seq("s", range(0, 2 * BS + 2));
        kv.allocatePrefix(s);
        assertTrue(kv.allocateSlots(s, s.numTokens()));
        KvCache cache = s.kvCache();
        assertSame(s.blockTable(), cache);
        assertEquals(3 * BS, cache.capacity());
        for (int layer = 0; layer < LAYERS; layer++) {
            for (int pos = 0; pos < s.numTokens(); pos++) {
                float[] arr = cache.array(layer, pos);
                for (int c = 0; c < ROW; c++) {
                    arr[cache.offset(pos) + c] = layer * 1000 + pos * 10 + c;
                }
            }
        }
        PagedKvStorage storage = kv.storage();
        for (int layer = 0; layer < LAYERS; layer++) {
            for (int pos = 0; pos < s.numTokens(); pos++) {
                float[] block = storage.block(s.blockTable().blockId(pos / BS), layer);
                for (int c = 0; c < ROW; c++) {
                    assertEquals(layer * 1000 + pos * 10 + c, block[(pos % BS) * ROW + c], "layer " + layer
                            + " pos " + pos);
                }
            }
        }
        float[] fillerBlock = storage.block(filler.blockTable().blockId(0), 0);
        for (float f : fillerBlock) {
            assertEquals(0f, f, "another sequence's block is untouched");
        }
    }

    @Test
    void allocateSlots_beyondTheSequenceLimit_throws() {
        KvCacheManager kv = manager(8, false);
        SequenceState s = new SequenceState("s", range(0, 3), 5, 0);
        assertThrows(IllegalArgumentException.class, () -> kv.allocateSlots(s, 6));
    }

    @Test
    void canEverFit_limitLargerThanThePool_isFalse() {
        KvCacheManager kv = manager(4, true);
        assertTrue(kv.canEverFit(new SequenceState("s", range(0, 3), 4 * BS, 0)));
        assertFalse(kv.canEverFit(new SequenceState("s", range(0, 3), 4 * BS + 1, 0)));
    }
}
