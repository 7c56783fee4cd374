package io.expertmesh.cuda;

/**
 * How many blocks share one sequence's context in MLA decode (split-KV). Pure arithmetic, tested without a GPU.
 *
 * <p>The kernel runs one block per SM (it takes ~208 KB of shared memory), so the grid runs in waves of
 * {@code sms} blocks. With {@code s} splits, {@code batch·headGroups·s} blocks each do 1/s of a sequence: time is
 * proportional to {@code ceil(blocks / sms) / s}. We take the smallest s that minimises it (fewer splits = less
 * merge traffic), and never more splits than 64-row tiles.
 */
public final class MlaSplitPlan {
    /** Rows per tile in the kernel ({@code MLA_TILE}). */
    public static final int TILE = 64;
    private static final int MAX_SPLITS = 64;

    private MlaSplitPlan() {
    }

    public static int splits(int batch, int headGroups, int maxLen, int sms) {
        if (batch <= 0 || headGroups <= 0 || maxLen <= 0 || sms <= 0) {
            throw new IllegalArgumentException("batch, head groups, length and SM count must be positive, got "
                    + batch + ", " + headGroups + ", " + maxLen + ", " + sms);
        }
        int tiles = (maxLen + TILE - 1) / TILE;
        int limit = Math.min(MAX_SPLITS, tiles);
        long units = (long) batch * headGroups;
        int best = 1;
        double bestCost = Double.MAX_VALUE;
        for (int s = 1; s <= limit; s++) {
            double waves = Math.ceil((double) (units * s) / sms);
            // A split's work is whole tiles: ceil(tiles / s) of them.
            double cost = waves * Math.ceil((double) tiles / s);
            if (cost < bestCost - 1e-9) {
                bestCost = cost;
                best = s;
            }
        }
        return best;
    }
}
