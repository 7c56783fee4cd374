package io.expertmesh.router.kv;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import org.junit.jupiter.api.Test;

class BlockHasherTest {
    private static final int[] BLOCK = {5, 6, 7, 8};

    @Test
    void hash_sameInputs_isDeterministicAcrossInstances() {
        assertEquals(new BlockHasher(42).hash(BlockHash.ROOT, BLOCK, 0, 4),
                new BlockHasher(42).hash(BlockHash.ROOT, BLOCK, 0, 4));
    }

    @Test
    void hash_sameTokensDifferentParents_differ() {
        BlockHasher hasher = new BlockHasher(42);
        BlockHash p1 = hasher.hash(BlockHash.ROOT, new int[]{1, 2, 3, 4}, 0, 4);
        BlockHash p2 = hasher.hash(BlockHash.ROOT, new int[]{1, 2, 3, 5}, 0, 4);
        assertNotEquals(hasher.hash(p1, BLOCK, 0, 4), hasher.hash(p2, BLOCK, 0, 4));
        assertNotEquals(hasher.hash(BlockHash.ROOT, BLOCK, 0, 4), hasher.hash(p1, BLOCK, 0, 4));
    }

    @Test
    void hash_differentSeed_differs() {
        assertNotEquals(new BlockHasher(1).hash(BlockHash.ROOT, BLOCK, 0, 4),
                new BlockHasher(2).hash(BlockHash.ROOT, BLOCK, 0, 4));
    }

    @Test
    void seedOf_eachField_matters() {
        long base = BlockHasher.seedOf("m", "f32", 16, "mla:32+8x3");
        assertNotEquals(base, BlockHasher.seedOf("m2", "f32", 16, "mla:32+8x3"));
        assertNotEquals(base, BlockHasher.seedOf("m", "bf16", 16, "mla:32+8x3"));
        assertNotEquals(base, BlockHasher.seedOf("m", "f32", 32, "mla:32+8x3"));
        assertNotEquals(base, BlockHasher.seedOf("m", "f32", 16, "gqa:32+8x3"));
        assertNotEquals(BlockHasher.mix(base, 4, 3, 40), BlockHasher.mix(base, 4, 3, 41));
    }

    @Test
    void hash_tokenOrder_matters() {
        BlockHasher hasher = new BlockHasher(0);
        assertNotEquals(hasher.hash(BlockHash.ROOT, new int[]{1, 2}, 0, 2),
                hasher.hash(BlockHash.ROOT, new int[]{2, 1}, 0, 2));
    }

    @Test
    void hash_zeroKeptBits_alwaysCollides() {
        BlockHasher hasher = new BlockHasher(0, 0);
        assertEquals(hasher.hash(BlockHash.ROOT, new int[]{1, 2}, 0, 2),
                hasher.hash(BlockHash.ROOT, new int[]{3, 4}, 0, 2));
    }
}
