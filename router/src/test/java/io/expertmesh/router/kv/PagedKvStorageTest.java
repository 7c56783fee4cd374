package io.expertmesh.router.kv;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class PagedKvStorageTest {

    @Test
    void blocksFor_budget_countsWholeBlocksAcrossLayers() {
        // 3 layers × 40 floats × 4 rows × 4 bytes = 1920 bytes per block
        assertEquals(1920, PagedKvStorage.bytesPerBlock(3, 40, 4));
        assertEquals(2, PagedKvStorage.blocksFor(1920 * 2 + 1919, 3, 40, 4));
        assertEquals(0, PagedKvStorage.blocksFor(1919, 3, 40, 4));
        assertEquals(Integer.MAX_VALUE, PagedKvStorage.blocksFor(Long.MAX_VALUE, 1, 1, 1));
    }

    @Test
    void block_eachBlockAndLayer_ownsItsArray() {
        PagedKvStorage s = new PagedKvStorage(2, 3, 4, 5);
        assertEquals(12, s.block(4, 1).length);
        assertNotSame(s.block(0, 0), s.block(0, 1));
        assertNotSame(s.block(0, 0), s.block(1, 0));
        assertEquals(5, s.numBlocks());
    }

    @Test
    void constructor_nonPositiveSize_throws() {
        assertThrows(IllegalArgumentException.class, () -> new PagedKvStorage(1, 1, 0, 1));
    }
}
