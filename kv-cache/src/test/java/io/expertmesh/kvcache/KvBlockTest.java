package io.expertmesh.kvcache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class KvBlockTest {

    @Test
    void verify_freshBlock_passes() {
        assertTrue(TestBlocks.tiny(1).verify());
    }

    @Test
    void verify_oneFloatChanged_fails() {
        KvBlock b = TestBlocks.tiny(2);
        b.data()[b.data().length / 2] += 1e-6f;
        assertFalse(b.verify());
    }

    @Test
    void verify_tokenChanged_fails() {
        KvBlock b = TestBlocks.tiny(3);
        b.tokenIds()[0]++;
        assertFalse(b.verify());
    }

    @Test
    void verify_sameContentsUnderOtherKey_fails() {
        KvBlock b = TestBlocks.tiny(4);
        KvBlock moved = new KvBlock(new BlockKey(b.key().hi(), b.key().lo() + 1), b.tokenIds(), b.numLayers(),
                b.rowWidth(), b.blockSize(), b.data(), b.checksum());
        assertFalse(moved.verify());
    }

    @Test
    void checksumOf_blocksOfOtherSeeds_differ() {
        assertNotEquals(TestBlocks.tiny(5).checksum(), TestBlocks.tiny(6).checksum());
    }

    @Test
    void fromLayers_layerArrays_copiesLayerMajorAndBack() {
        int rows = 4;
        int width = 3;
        float[][] layers = new float[2][rows * width];
        for (int l = 0; l < 2; l++) {
            for (int i = 0; i < rows * width; i++) {
                layers[l][i] = l * 100 + i;
            }
        }
        int[] tokens = {7, 8, 9, 10};
        KvBlock b = KvBlock.fromLayers(new BlockKey(1, 2), tokens, layers, width);

        assertEquals(100f, b.data()[rows * width]);
        layers[1][0] = -1;
        tokens[0] = -1;
        float[] back = new float[rows * width];
        b.copyLayerInto(1, back);
        assertEquals(100f, back[0]);
        assertEquals(7, b.tokenIds()[0]);
        assertTrue(b.verify());
        assertTrue(b.hasGeometry(2, width, rows));
    }

    @Test
    void constructor_dataOfWrongLength_throws() {
        assertThrows(IllegalArgumentException.class,
                () -> KvBlock.of(new BlockKey(0, 0), new int[16], 2, 8, 16, new float[2 * 8 * 16 - 1]));
    }

    @Test
    void constructor_tokenCountOtherThanBlockSize_throws() {
        assertThrows(IllegalArgumentException.class,
                () -> KvBlock.of(new BlockKey(0, 0), new int[15], 2, 8, 16, new float[2 * 8 * 16]));
    }

    @Test
    void equals_equalContentsInOtherArrays_areEqual() {
        KvBlock a = TestBlocks.tiny(9);
        KvBlock b = new KvBlock(a.key(), a.tokenIds().clone(), a.numLayers(), a.rowWidth(), a.blockSize(),
                a.data().clone(), a.checksum());
        assertEquals(a, b);
        assertArrayEquals(a.data(), b.data());
    }
}
