package io.expertmesh.core.model;

/**
 * A {@link KvCache} whose positions live in fixed-size blocks of a pool shared by many sequences (the router's
 * paged cache). A device-resident forward pass keeps a pool of the same blocks in device memory and finds a
 * position's row there by the same block id.
 */
public interface BlockKvCache extends KvCache {

    /** Positions per block. */
    int blockSize();

    /** The pool block that holds position {@code pos}. */
    int blockOf(int pos);
}
