package io.expertmesh.router.kv;

import io.expertmesh.core.model.BlockKvCache;
import io.expertmesh.core.model.KvCache;

/**
 * One sequence's block table: the ids of the blocks holding its positions, in order, and the {@link KvCache}
 * view the attention kernels read through: row {@code pos} of {@code layer} is
 * {@code storage.block(ids[pos / blockSize], layer)} at offset {@code (pos % blockSize)·rowWidth}.
 * The view is this object itself, so a step allocates nothing per token.
 *
 * <p>Besides the owned blocks it keeps the chained hashes of the sequence's full blocks (computed once and
 * kept across preemptions: the tokens never change) and the prefix hits found at admission but not yet
 * taken ("pending", committed by {@link KvCacheManager#allocateSlots}). Owned by {@link KvCacheManager};
 * single-threaded.
 */
public final class BlockTable implements BlockKvCache {
    private final PagedKvStorage storage;
    private final int blockSize;
    private final int rowWidth;
    final int[] ids;
    /** Blocks owned (reference taken). */
    int size;
    /** Prefix-hit blocks stored at ids[size, size+pending) but not yet referenced. */
    int pending;
    /** Tokens of the sequence at the prefix lookup (for stats, counted when the hit is committed). */
    int pendingQueryTokens;
    /** Leading blocks whose hash has been offered to the pool (vLLM's num_cached_block). */
    int numRegistered;
    final BlockHash[] hashes;
    int numHashed;

    BlockTable(PagedKvStorage storage, int maxBlocks) {
        this.storage = storage;
        this.blockSize = storage.blockSize();
        this.rowWidth = storage.rowWidth();
        this.ids = new int[maxBlocks];
        this.hashes = new BlockHash[maxBlocks];
    }

    @Override
    public float[] array(int layer, int pos) {
        return storage.block(ids[pos / blockSize], layer);
    }

    @Override
    public int offset(int pos) {
        return (pos % blockSize) * rowWidth;
    }

    @Override
    public int contiguousRows(int pos) {
        return blockSize - pos % blockSize;
    }

    @Override
    public int blockSize() {
        return blockSize;
    }

    @Override
    public int blockOf(int pos) {
        return ids[pos / blockSize];
    }

    @Override
    public int capacity() {
        return size * blockSize;
    }

    /** Blocks this sequence holds. */
    public int numBlocks() {
        return size;
    }

    /** The id of the {@code i}-th block. */
    public int blockId(int i) {
        if (i < 0 || i >= size) {
            throw new IndexOutOfBoundsException("block " + i + " of a table of " + size);
        }
        return ids[i];
    }

    /** The most blocks this table can ever hold (the sequence's token limit, rounded up). */
    public int maxBlocks() {
        return ids.length;
    }
}
