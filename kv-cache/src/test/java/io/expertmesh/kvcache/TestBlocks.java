package io.expertmesh.kvcache;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/** Blocks of random contents, and the geometry of the models tests use. */
final class TestBlocks {
    /** The tiny DeepSeek-V3 fixture: 4 layers, MLA rows of kv_lora 128 + rope 16, blocks of 16 tokens (36 KB). */
    static final int TINY_LAYERS = 4;
    static final int TINY_ROW = 144;
    static final int BLOCK_SIZE = 16;

    private TestBlocks() {
    }

    /** A block of the tiny model whose key and contents derive from {@code seed}. */
    static KvBlock tiny(long seed) {
        return random(seed, TINY_LAYERS, TINY_ROW, BLOCK_SIZE);
    }

    static KvBlock random(long seed, int numLayers, int rowWidth, int blockSize) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] tokens = new int[blockSize];
        for (int i = 0; i < blockSize; i++) {
            tokens[i] = r.nextInt(129_280);
        }
        float[] data = new float[numLayers * blockSize * rowWidth];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) r.nextDouble(-4, 4);
        }
        return KvBlock.of(new BlockKey(r.nextLong(), r.nextLong()), tokens, numLayers, rowWidth, blockSize, data);
    }

    static List<KvBlock> tinyChain(long seed, int n) {
        List<KvBlock> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(tiny(seed * 1_000_003L + i));
        }
        return out;
    }

    static List<BlockKey> keys(List<KvBlock> blocks) {
        return blocks.stream().map(KvBlock::key).toList();
    }

    static List<int[]> tokens(List<KvBlock> blocks) {
        return blocks.stream().map(KvBlock::tokenIds).toList();
    }
}
