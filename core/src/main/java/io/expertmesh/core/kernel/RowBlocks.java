package io.expertmesh.core.kernel;

/**
 * How many weight rows a batched matmul takes at a time: about {@link #BYTES} of weights (as the tile reads them:
 * bf16, or floats once widened), which stay in L2 while each 4-row batch tile runs over them with its own
 * activations in L1. The reverse order (a few rows in L1, the whole batch's activations streamed from L2 for each)
 * measured 1.2-1.3× slower at batch 64. Decode (batch 1) reads each row once, so the block size does not matter
 * there.
 */
final class RowBlocks {
    /** Weight bytes per block: well inside a 1 MB L2, with the activations beside it. */
    static final int BYTES = 128 * 1024;

    private RowBlocks() {
    }

    /** Rows per block for rows of {@code cols} values of {@code bytes} each: even, at least 2. */
    static int rows(int cols, int bytes) {
        return Math.max(2, BYTES / (Math.max(1, cols) * bytes)) & ~1;
    }
}
