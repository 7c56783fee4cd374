package io.expertmesh.router.kv;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.kvcache.BlockKey;
import io.expertmesh.kvcache.KvBlock;
import io.expertmesh.kvcache.KvBlockStore;
import io.expertmesh.kvcache.KvStoreStats;
import io.expertmesh.router.scheduler.SequenceState;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** Adopting blocks of the distributed tier into the local cache, and publishing computed ones. */
class RemoteKvAdoptionTest {
    private static final int BS = 4;
    private static final int LAYERS = 2;
    private static final int ROW = 3;

    /** An in-memory store with the real store's lookup rules (stop at the first miss, verify, token ids). */
    static final class MapStore implements KvBlockStore {
        final Map<BlockKey, KvBlock> map = new ConcurrentHashMap<>();
        int publishes;
        int keysAsked;

        @Override
        public List<KvBlock> getPrefix(List<BlockKey> keys, List<int[]> expectedTokens) {
            List<KvBlock> hits = new ArrayList<>();
            keysAsked += keys.size();
            for (int i = 0; i < keys.size(); i++) {
                KvBlock b = map.get(keys.get(i));
                if (b == null || !b.verify() || !b.key().equals(keys.get(i))
                        || (expectedTokens != null && !Arrays.equals(expectedTokens.get(i), b.tokenIds()))) {
                    break;
                }
                hits.add(b);
            }
            return hits;
        }

        @Override
        public boolean publish(KvBlock block) {
            publishes++;
            map.put(block.key(), block);
            return true;
        }

        @Override
        public KvStoreStats stats() {
            return new KvStoreStats(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, publishes, publishes, 0, 0, 0, 0, 0, 0, 0, 0);
        }

        @Override
        public void close() {
        }
    }

    private static KvCacheManager manager(int blocks) {
        return new KvCacheManager(new PagedKvStorage(LAYERS, ROW, BS, blocks), 7L, true);
    }

    private static int[] range(int from, int n) {
        return IntStream.range(from, from + n).toArray();
    }

    private static SequenceState seq(String id, int[] prompt) {
        return new SequenceState(id, prompt, prompt.length + 8, 0);
    }

    /** The row values a "forward pass" writes for a token: distinct per token, layer and column. */
    private static float value(int token, int layer, int col) {
        return token * 100f + layer * 10f + col;
    }

    /** Admits and "computes" the whole prompt (writing each row's values), as one prefill step would. */
    private static SequenceState runPrompt(KvCacheManager kv, SequenceState s) {
        kv.allocatePrefix(s);
        assertTrue(kv.allocateSlots(s, s.numTokens() - s.numComputedTokens()));
        for (int pos = s.numComputedTokens(); pos < s.numTokens(); pos++) {
            int id = s.blockTable().blockId(pos / BS);
            for (int l = 0; l < LAYERS; l++) {
                for (int c = 0; c < ROW; c++) {
                    kv.storage().block(id, l)[(pos % BS) * ROW + c] = value(s.tokenAt(pos), l, c);
                }
            }
        }
        s.setNumComputedTokens(s.numTokens());
        kv.cacheFullBlocks(s);
        return s;
    }

    private static void assertRowsOf(KvCacheManager kv, SequenceState s, int blocks) {
        for (int pos = 0; pos < blocks * BS; pos++) {
            int id = s.blockTable().blockId(pos / BS);
            for (int l = 0; l < LAYERS; l++) {
                for (int c = 0; c < ROW; c++) {
                    assertEquals(value(s.tokenAt(pos), l, c), kv.storage().block(id, l)[(pos % BS) * ROW + c],
                            "position " + pos + " layer " + l);
                }
            }
        }
    }

    @Test
    void prefixHashes_sameAsTheManagersOwn() {
        KvCacheManager kv = manager(16);
        int[] p = range(10, 3 * BS + 1);
        SequenceState s = runPrompt(kv, seq("a", p));
        BlockHash[] h = kv.prefixHashes(p, 3);
        for (int i = 0; i < 3; i++) {
            assertEquals(s.blockTable().blockId(i), kv.pool().lookup(h[i]), "block " + i);
        }
        assertEquals(3, kv.maxReusableBlocks(3 * BS + 1));
        assertEquals(2, kv.maxReusableBlocks(3 * BS));
    }

    @Test
    void publish_computedPromptBlocks_publishedOnceAndLookedUpByAnotherManager() {
        MapStore store = new MapStore();
        KvCacheManager a = manager(16);
        RemoteKvTier tierA = new RemoteKvTier(store, a, 100);
        int[] p = range(10, 3 * BS + 2);
        runPrompt(a, seq("a", p));
        assertEquals(3, store.publishes, "the three full prompt blocks");
        assertEquals(3, tierA.publishedBlocks());

        SequenceState again = seq("a2", p);
        a.allocatePrefix(again);
        a.allocateSlots(again, again.numTokens() - again.numComputedTokens());
        again.setNumComputedTokens(again.numTokens());
        a.cacheFullBlocks(again);
        assertEquals(3, store.publishes, "prefix hits are not published again");

        KvCacheManager b = manager(16);
        RemoteKvTier tierB = new RemoteKvTier(store, b, 100);
        List<KvBlock> hits = tierB.lookup(p).blocks();
        assertEquals(3, hits.size());
        assertEquals(0, tierB.lookup(range(10, BS)).blocks().size(), "a one-block prompt has no reusable block");
    }

    @Test
    void adoptRemoteBlocks_blocksOfAnotherManager_copiedCountedCachedAndNotRepublished() {
        MapStore store = new MapStore();
        KvCacheManager a = manager(16);
        new RemoteKvTier(store, a, 100);
        int[] p = range(10, 3 * BS + 2);
        runPrompt(a, seq("a", p));

        KvCacheManager b = manager(16);
        RemoteKvTier tierB = new RemoteKvTier(store, b, 100);
        List<KvBlock> hits = tierB.lookup(p).blocks();
        SequenceState s = seq("b", p);
        assertEquals(0, b.allocatePrefix(s));
        assertEquals(3, b.adoptRemoteBlocks(s, hits));
        assertEquals(3 * BS, s.numComputedTokens());
        assertEquals(3 * BS, s.numCachedTokens());
        assertTrue(b.allocateSlots(s, 2));
        assertRowsOf(b, s, 3);
        assertEquals(3 * BS, b.stats().prefixHitTokens());
        assertEquals(3, b.adoptedBlocks());
        for (int i = 0; i < 3; i++) {
            assertEquals(1, b.pool().refCount(s.blockTable().blockId(i)));
        }
        int before = store.publishes;
        s.setNumComputedTokens(s.numTokens());
        b.cacheFullBlocks(s);
        assertEquals(before, store.publishes, "adopted blocks are not published back");

        SequenceState local = seq("c", p);
        assertEquals(3 * BS, b.allocatePrefix(local), "adopted blocks serve later requests locally");
    }

    @Test
    void adoptRemoteBlocks_afterLocalHit_adoptsTheBlocksThatFollowIt() {
        MapStore store = new MapStore();
        KvCacheManager a = manager(16);
        new RemoteKvTier(store, a, 100);
        int[] p = range(10, 3 * BS + 2);
        runPrompt(a, seq("a", p));

        KvCacheManager b = manager(16);
        RemoteKvTier tierB = new RemoteKvTier(store, b, 100);
        SequenceState first = runPrompt(b, seq("b0", range(10, BS + 1)));  // caches block 0 locally
        b.free(first);
        RemoteKvTier.Hits hits = tierB.lookup(p);
        SequenceState s = seq("b", p);
        assertEquals(BS, b.allocatePrefix(s));
        int localBlock0 = s.blockTable().ids[0];
        assertEquals(2, b.adoptRemoteBlocks(s, hits.first(), hits.blocks()));
        assertEquals(3 * BS, s.numComputedTokens());
        assertTrue(b.allocateSlots(s, 2));
        assertEquals(localBlock0, s.blockTable().blockId(0), "the local hit is kept");
        assertRowsOf(b, s, 3);
        assertEquals(2, b.adoptedBlocks());
    }

    @Test
    void adoptRemoteBlocks_fewFreeBlocks_adoptsFewerAndLeaksNothing() {
        MapStore store = new MapStore();
        KvCacheManager a = manager(16);
        new RemoteKvTier(store, a, 100);
        int[] p = range(10, 3 * BS + 2);
        runPrompt(a, seq("a", p));

        KvCacheManager b = manager(6);
        RemoteKvTier tierB = new RemoteKvTier(store, b, 100);
        SequenceState hog = seq("hog", range(500, 4 * BS));
        b.allocatePrefix(hog);
        assertTrue(b.allocateSlots(hog, 4 * BS));   // 4 of 6 blocks held
        SequenceState s = seq("b", p);
        b.allocatePrefix(s);
        assertEquals(2, b.adoptRemoteBlocks(s, tierB.lookup(p).blocks()), "only two blocks are free");
        assertEquals(2 * BS, s.numComputedTokens());
        assertFalse(b.allocateSlots(s, p.length - 2 * BS), "the rest does not fit now");
        assertEquals(0, s.numComputedTokens());
        b.free(hog);
        assertEquals(6, b.pool().numFreeBlocks(), "nothing leaked");
        assertEquals(2 * BS, b.allocatePrefix(s), "the adopted blocks wait in the local cache");
        assertTrue(b.allocateSlots(s, p.length - 2 * BS));
        assertRowsOf(b, s, 2);
    }

    @Test
    void adoptRemoteBlocks_blockWithOtherTokens_stopsBeforeIt() {
        MapStore store = new MapStore();
        KvCacheManager a = manager(16);
        new RemoteKvTier(store, a, 100);
        int[] p = range(10, 3 * BS + 2);
        runPrompt(a, seq("a", p));
        KvCacheManager b = manager(16);
        List<KvBlock> hits = new ArrayList<>(new RemoteKvTier(store, b, 100).lookup(p).blocks());
        KvBlock good = hits.get(1);
        int[] wrong = good.tokenIds().clone();
        wrong[0]++;
        hits.set(1, KvBlock.of(good.key(), wrong, LAYERS, ROW, BS, good.data()));
        SequenceState s = seq("b", p);
        b.allocatePrefix(s);
        assertEquals(1, b.adoptRemoteBlocks(s, hits));
        assertTrue(b.allocateSlots(s, p.length - BS));
        assertRowsOf(b, s, 1);
        assertNotEquals(BlockPool.NO_BLOCK, b.pool().lookup(b.prefixHashes(p, 1)[0]));
    }

    @Test
    void adoptRemoteBlocks_prefixCachingOff_adoptsNothing() {
        MapStore store = new MapStore();
        KvCacheManager a = manager(16);
        new RemoteKvTier(store, a, 100);
        int[] p = range(10, 3 * BS + 2);
        runPrompt(a, seq("a", p));
        KvCacheManager off = new KvCacheManager(new PagedKvStorage(LAYERS, ROW, BS, 16), 7L, false);
        SequenceState s = seq("b", p);
        off.allocatePrefix(s);
        assertEquals(0, off.adoptRemoteBlocks(s, store.getPrefix(
                Arrays.stream(a.prefixHashes(p, 3)).map(h -> new BlockKey(h.hi(), h.lo())).toList())));
    }

    @Test
    void lookup_blocksCachedLocally_askedOnlyForTheOnesAfterThem() {
        MapStore store = new MapStore();
        KvCacheManager a = manager(16);
        new RemoteKvTier(store, a, 100);
        int[] p = range(10, 3 * BS + 2);
        runPrompt(a, seq("a", p));

        KvCacheManager b = manager(16);
        RemoteKvTier tierB = new RemoteKvTier(store, b, 100);
        b.free(runPrompt(b, seq("b0", range(10, BS + 1))));   // block 0 cached locally
        store.keysAsked = 0;
        RemoteKvTier.Hits hits = tierB.lookup(p);
        assertEquals(1, hits.first());
        assertEquals(2, hits.blocks().size());
        assertEquals(2, store.keysAsked, "block 0 is not fetched again");
        SequenceState s = seq("b", p);
        assertEquals(BS, b.allocatePrefix(s));
        assertEquals(2, b.adoptRemoteBlocks(s, hits.first(), hits.blocks()));
        assertTrue(b.allocateSlots(s, 2));
        assertRowsOf(b, s, 3);

        store.keysAsked = 0;
        assertTrue(tierB.lookup(p).blocks().isEmpty(), "all three are local now");
        assertEquals(0, store.keysAsked);
        assertEquals(1, tierB.localSkips());
    }

    @Test
    void adoptRemoteBlocks_localHitEndsBeforeTheRemoteBlocks_adoptsNothing() {
        MapStore store = new MapStore();
        KvCacheManager a = manager(16);
        new RemoteKvTier(store, a, 100);
        int[] p = range(10, 3 * BS + 2);
        runPrompt(a, seq("a", p));
        KvCacheManager b = manager(16);
        List<KvBlock> all = new RemoteKvTier(store, b, 100).lookup(p).blocks();
        SequenceState s = seq("b", p);
        assertEquals(0, b.allocatePrefix(s));
        assertEquals(0, b.adoptRemoteBlocks(s, 1, all.subList(1, 3)), "block 0 was evicted: a gap");
        assertEquals(0, s.numComputedTokens());
        assertTrue(b.allocateSlots(s, p.length));
        assertEquals(16 - 4, b.pool().numFreeBlocks());
    }
}
