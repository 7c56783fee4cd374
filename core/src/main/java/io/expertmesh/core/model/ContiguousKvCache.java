package io.expertmesh.core.model;

/** A KV cache with one array per layer holding every position in order; used by single-process runs. */
public final class ContiguousKvCache implements KvCache {
    private final float[][] layers;
    private final int rowWidth;
    private final int capacity;

    public ContiguousKvCache(int numLayers, int rowWidth, int capacity) {
        if ((long) rowWidth * capacity > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("KV cache of " + capacity + " positions × " + rowWidth
                    + " floats does not fit one array; use a paged cache");
        }
        this.rowWidth = rowWidth;
        this.capacity = capacity;
        this.layers = new float[numLayers][rowWidth * capacity];
    }

    @Override
    public float[] array(int layer, int pos) {
        return layers[layer];
    }

    @Override
    public int offset(int pos) {
        return pos * rowWidth;
    }

    @Override
    public int contiguousRows(int pos) {
        return capacity - pos;
    }

    @Override
    public int capacity() {
        return capacity;
    }
}
