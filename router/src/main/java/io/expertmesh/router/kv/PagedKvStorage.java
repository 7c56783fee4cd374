package io.expertmesh.router.kv;

import java.util.function.IntConsumer;

/**
 * Block-structured KV memory: {@code numBlocks} blocks × {@code numLayers} arrays of
 * {@code blockSize·rowWidth} floats, allocated once at start-up and never resized.
 *
 * <p>Row {@code r} (0 ≤ r &lt; blockSize) of a block for layer {@code l} is
 * {@code block(id, l)[r·rowWidth, (r+1)·rowWidth)}. One array per (block, layer) keeps every array small
 * (a huge pool never hits the 2³¹ array limit) and lets {@link BlockTable} hand the attention kernels the
 * array and offset of a row without copying. Which block belongs to whom is the {@link BlockPool}'s business;
 * this class only holds the floats.
 */
public final class PagedKvStorage {
    private final int numLayers;
    private final int rowWidth;
    private final int blockSize;
    private final float[][][] blocks;
    private volatile IntConsumer hostWriteListener = b -> { };

    public PagedKvStorage(int numLayers, int rowWidth, int blockSize, int numBlocks) {
        if (numLayers <= 0 || rowWidth <= 0 || blockSize <= 0 || numBlocks <= 0) {
            throw new IllegalArgumentException("numLayers, rowWidth, blockSize and numBlocks must be positive, got "
                    + numLayers + ", " + rowWidth + ", " + blockSize + ", " + numBlocks);
        }
        if ((long) blockSize * rowWidth > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("a block of " + blockSize + " rows × " + rowWidth
                    + " floats does not fit one array");
        }
        this.numLayers = numLayers;
        this.rowWidth = rowWidth;
        this.blockSize = blockSize;
        this.blocks = new float[numBlocks][numLayers][blockSize * rowWidth];
    }

    /** Bytes one block takes across all layers. */
    public static long bytesPerBlock(int numLayers, int rowWidth, int blockSize) {
        return (long) numLayers * rowWidth * blockSize * Float.BYTES;
    }

    /** How many blocks fit {@code budgetBytes} (at most {@link Integer#MAX_VALUE}; 0 when not even one). */
    public static int blocksFor(long budgetBytes, int numLayers, int rowWidth, int blockSize) {
        long per = bytesPerBlock(numLayers, rowWidth, blockSize);
        if (per <= 0) {
            throw new IllegalArgumentException("numLayers, rowWidth and blockSize must be positive");
        }
        return (int) Math.min(Integer.MAX_VALUE, Math.max(0, budgetBytes) / per);
    }

    /**
     * Who is told when a block's floats are written outside a forward step (a prefix imported from the
     * distributed tier): a device that holds its own copy of the blocks uploads them again.
     */
    public void onHostWrite(IntConsumer listener) {
        this.hostWriteListener = listener;
    }

    /** Announces that {@code blockId}'s floats were written outside a forward step. */
    public void hostWrote(int blockId) {
        hostWriteListener.accept(blockId);
    }

    /** The floats of block {@code blockId} for {@code layer}: {@code blockSize} rows of {@code rowWidth}. */
    public float[] block(int blockId, int layer) {
        return blocks[blockId][layer];
    }

    public int blockSize() {
        return blockSize;
    }

    public int numBlocks() {
        return blocks.length;
    }

    public int rowWidth() {
        return rowWidth;
    }

    public int numLayers() {
        return numLayers;
    }
}
