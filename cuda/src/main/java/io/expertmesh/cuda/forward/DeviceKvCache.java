package io.expertmesh.cuda.forward;

import io.expertmesh.core.model.BlockKvCache;

/**
 * One sequence's cache whose rows exist only in device memory (standalone use of {@link DeviceForward}: tests,
 * the GPU check). Its blocks come from the pool's free list and go back on {@link #close}. The host-array view of
 * {@link io.expertmesh.core.model.KvCache} does not exist for it.
 */
public final class DeviceKvCache implements BlockKvCache, AutoCloseable {
    private final DeviceKvPool pool;
    private final int[] ids;
    private final int blockSize;
    private boolean closed;

    DeviceKvCache(DeviceKvPool pool, int[] ids, int blockSize) {
        this.pool = pool;
        this.ids = ids;
        this.blockSize = blockSize;
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
    public float[] array(int layer, int pos) {
        throw new UnsupportedOperationException("this cache's rows live in device memory only");
    }

    @Override
    public int offset(int pos) {
        throw new UnsupportedOperationException("this cache's rows live in device memory only");
    }

    @Override
    public int contiguousRows(int pos) {
        return blockSize - pos % blockSize;
    }

    @Override
    public int capacity() {
        return ids.length * blockSize;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            pool.release(ids);
        }
    }
}
