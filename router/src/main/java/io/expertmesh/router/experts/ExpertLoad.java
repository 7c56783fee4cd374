package io.expertmesh.router.experts;

import java.util.concurrent.atomic.AtomicLongArray;

/** Tokens the gate routed to each expert of each MoE layer, counted by the router (the input of rebalancing). */
public final class ExpertLoad {
    private final AtomicLongArray[] counts;
    private final int experts;

    ExpertLoad(int layers, int[] moeLayers, int experts) {
        this.counts = new AtomicLongArray[layers];
        this.experts = experts;
        for (int l : moeLayers) {
            counts[l] = new AtomicLongArray(experts);
        }
    }

    void record(int layer, int[] ids) {
        AtomicLongArray c = counts[layer];
        for (int e : ids) {
            c.incrementAndGet(e);
        }
    }

    /** [layer][expert] counts; null rows for dense layers. */
    public long[][] snapshot() {
        long[][] out = new long[counts.length][];
        for (int l = 0; l < counts.length; l++) {
            if (counts[l] != null) {
                out[l] = new long[experts];
                for (int e = 0; e < experts; e++) {
                    out[l][e] = counts[l].get(e);
                }
            }
        }
        return out;
    }

    /** Starts a new window (after a rebalance, so the next one sees the current traffic). */
    void reset() {
        for (AtomicLongArray c : counts) {
            if (c != null) {
                for (int e = 0; e < experts; e++) {
                    c.set(e, 0);
                }
            }
        }
    }
}
