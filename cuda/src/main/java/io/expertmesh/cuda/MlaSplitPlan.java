package io.expertmesh.cuda;

import java.util.Arrays;

/**
 * How many blocks share one sequence's context in MLA decode (split-KV). Pure arithmetic, tested without a GPU.
 *
 * <p>The kernel runs one block per SM (it takes ~208 KB of shared memory). With {@code s} splits, sequence b's
 * {@code tiles_b} 64-row tiles go to up to {@code s} blocks per head group, {@code ceil(tiles_b / s)} tiles each
 * (the kernel's split: trailing splits of a short sequence are empty and exit at once). The plan is made from the
 * real lengths: a step's time is estimated as the larger of its longest block and its waves,
 * {@code ceil(blocks / sms)} times the mean block's work, where each non-empty block also pays
 * {@link #SPLIT_COST} tiles (loading Q, writing its partial O for the merge). We take the smallest s that
 * minimises it, up to one split per tile and at least enough splits to give every SM a block
 * ({@code ceil(sms / (batch·headGroups))}, so one long sequence can use the whole GPU).
 */
public final class MlaSplitPlan {
    /** Rows per tile in the kernel ({@code MLA_TILE}). */
    public static final int TILE = 64;
    /** The cap on splits when the batch alone fills the SMs (more only cost merge traffic). */
    private static final int MAX_SPLITS = 64;
    /**
     * A block's fixed work in tiles: Q (16 x 576 bf16) in, the partial O (16 x 512 f32) out and read again by the
     * merge: ~50 KB against a tile's 72 KB. An estimate; the device benchmark's split lines test it.
     */
    static final double SPLIT_COST = 0.5;

    private MlaSplitPlan() {
    }

    /** All {@code batch} sequences {@code maxLen} long. */
    public static int splits(int batch, int headGroups, int maxLen, int sms) {
        if (batch <= 0 || headGroups <= 0 || maxLen <= 0 || sms <= 0) {
            throw new IllegalArgumentException("batch, head groups, length and SM count must be positive, got "
                    + batch + ", " + headGroups + ", " + maxLen + ", " + sms);
        }
        int[] lens = new int[batch];
        Arrays.fill(lens, maxLen);
        return splits(lens, batch, headGroups, sms);
    }

    /** Sequences {@code lens[0, batch)} (0 for an empty one). */
    public static int splits(int[] lens, int batch, int headGroups, int sms) {
        if (batch <= 0 || batch > lens.length || headGroups <= 0 || sms <= 0) {
            throw new IllegalArgumentException("batch (of " + lens.length + " lengths), head groups and SM count "
                    + "must be positive, got " + batch + ", " + headGroups + ", " + sms);
        }
        int[] tiles = new int[batch];
        int maxTiles = 0;
        for (int b = 0; b < batch; b++) {
            tiles[b] = (Math.max(lens[b], 0) + TILE - 1) / TILE;
            maxTiles = Math.max(maxTiles, tiles[b]);
        }
        if (maxTiles == 0) {
            return 1;
        }
        long units = (long) batch * headGroups;
        int fill = (int) Math.min(Integer.MAX_VALUE, (sms + units - 1) / units);
        int limit = Math.min(maxTiles, Math.max(MAX_SPLITS, fill));
        int best = 1;
        double bestCost = Double.MAX_VALUE;
        for (int s = 1; s <= limit; s++) {
            long blocks = 0;
            long work = 0;
            int longest = 0;
            for (int t : tiles) {
                if (t == 0) {
                    continue;
                }
                int per = (t + s - 1) / s;
                blocks += (t + per - 1) / per;
                work += t;
                longest = Math.max(longest, per);
            }
            blocks *= headGroups;
            double total = work * headGroups + SPLIT_COST * blocks;
            double waves = Math.ceil((double) blocks / sms);
            double cost = Math.max(longest + SPLIT_COST, waves * total / blocks);
            if (cost < bestCost - 1e-9) {
                bestCost = cost;
                best = s;
            }
        }
        return best;
    }
}
