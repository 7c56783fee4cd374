package io.expertmesh.core.model;

/**
 * Where one sequence's keys and values live, one fixed-width row per (layer, position).
 *
 * <p>A row holds the MLA latent followed by the rope key (DeepSeek), or K followed by V (GQA). Attention
 * reads row {@code pos} of layer {@code layer} at {@code array(layer, pos)[offset(pos)]}, which lets a
 * contiguous cache and a paged one (blocks of positions) share the same kernels.
 */
public interface KvCache {

    /** The array that holds row {@code pos} of {@code layer}. */
    float[] array(int layer, int pos);

    /** Index of row {@code pos} inside {@link #array}. */
    int offset(int pos);

    /**
     * How many rows starting at {@code pos} lie one after another in {@link #array} (to the end of a block, or
     * of the cache), so attention can walk them with one kernel call.
     */
    int contiguousRows(int pos);

    /** Number of positions this cache can hold. */
    int capacity();
}
