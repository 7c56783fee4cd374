package io.expertmesh.cuda.forward;

import io.expertmesh.core.model.BlockKvCache;
import io.expertmesh.core.model.ForwardBackend.HostBlocks;
import io.expertmesh.core.tensor.Bf16;
import java.util.ArrayDeque;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * The KV cache in device memory: per layer one bf16 tensor of {@code numBlocks × blockSize} rows, block ids the
 * same as the host cache's ({@link BlockKvCache#blockOf}), so the router's block manager keeps deciding who owns
 * which block and the device only holds the rows.
 *
 * <p>Rows computed by the forward pass are written here by the device. Rows the host writes into its own copy of
 * a block (a prefix imported from the distributed tier) are announced with {@link #hostWrote} and uploaded
 * before the next step reads them. Standalone use (no host cache: tests, the GPU check) takes blocks from this
 * pool's own free list through {@link #newCache}.
 */
final class DeviceKvPool implements AutoCloseable {
    private final DeviceOps ops;
    private final DeviceTensor[] layers;
    private final int numBlocks;
    private final int blockSize;
    private final int row;
    private final ConcurrentLinkedQueue<Integer> hostWritten = new ConcurrentLinkedQueue<>();
    private final ArrayDeque<Integer> free = new ArrayDeque<>();

    DeviceKvPool(DeviceOps ops, int numLayers, int numBlocks, int blockSize, int row) {
        if (numBlocks <= 0 || blockSize <= 0) {
            throw new IllegalArgumentException("the device KV pool needs positive blocks and block size, got "
                    + numBlocks + ", " + blockSize);
        }
        this.ops = ops;
        this.numBlocks = numBlocks;
        this.blockSize = blockSize;
        this.row = row;
        this.layers = new DeviceTensor[numLayers];
        for (int l = 0; l < numLayers; l++) {
            layers[l] = ops.allocate(DeviceTensor.Kind.BF16, (long) numBlocks * blockSize * row);
        }
        for (int b = 0; b < numBlocks; b++) {
            free.add(b);
        }
    }

    DeviceTensor layer(int l) {
        return layers[l];
    }

    int blockSize() {
        return blockSize;
    }

    int numBlocks() {
        return numBlocks;
    }

    /** Bytes of device memory the pool takes. */
    long bytes() {
        return (long) layers.length * numBlocks * blockSize * row * 2;
    }

    /** The host changed its copy of {@code blockId}; upload it before the next step (any thread). */
    void hostWrote(int blockId) {
        if (blockId < 0 || blockId >= numBlocks) {
            throw new IllegalArgumentException("block " + blockId + " outside the pool of " + numBlocks);
        }
        hostWritten.add(blockId);
    }

    /**
     * Uploads the blocks the host wrote since the last step, from any cache that maps them ({@code source}
     * gives the host rows of a block). Called at the start of a step, before any row is read.
     */
    void uploadHostWrites(HostBlocks source) {
        Integer b;
        short[] staging = null;
        while ((b = hostWritten.poll()) != null) {
            for (int l = 0; l < layers.length; l++) {
                float[] rows = source.rows(b, l);
                if (staging == null) {
                    staging = new short[blockSize * row];
                }
                for (int j = 0; j < blockSize * row; j++) {
                    staging[j] = Bf16.fromFloat(rows[j]);
                }
                ops.copyIn(staging, 0, layers[l], (long) b * blockSize * row, blockSize * row);
            }
        }
    }

    /** A cache of {@code capacity} positions on blocks from this pool's free list (standalone use). */
    synchronized DeviceKvCache newCache(int capacity) {
        int blocks = (capacity + blockSize - 1) / blockSize;
        if (blocks > free.size()) {
            throw new IllegalStateException("the device KV pool has " + free.size() + " free blocks of "
                    + blockSize + " positions; a cache of " + capacity + " needs " + blocks);
        }
        int[] ids = new int[blocks];
        for (int i = 0; i < blocks; i++) {
            ids[i] = free.poll();
        }
        return new DeviceKvCache(this, ids, blockSize);
    }

    synchronized void release(int[] ids) {
        for (int id : ids) {
            free.add(id);
        }
    }

    @Override
    public void close() {
        for (DeviceTensor t : layers) {
            t.close();
        }
    }
}
