package io.expertmesh.core.model;

import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.kernel.MatmulGroup;
import io.expertmesh.core.model.Scratch.Slot;
import java.util.Arrays;

/**
 * The routed experts of one layer held in this process. Tokens are grouped by expert so each expert's weights
 * are read once per step, whatever the number of tokens routed to it, and all active experts run as two parallel
 * steps (gate and up projections of every expert, then every down projection) rather than three per expert.
 */
public final class LocalExperts implements RoutedExperts {
    private final Mlp[] experts;
    private final int hidden;
    // Grouping buffers, grown with the batch: (token, slot) pairs of expert e are order[start[e] .. start[e+1]).
    private final int[] start;
    private final int[] fill;
    private int[] order;

    public LocalExperts(Mlp[] experts, int hidden) {
        this.experts = experts.clone();
        this.hidden = hidden;
        this.start = new int[experts.length + 1];
        this.fill = new int[experts.length];
        this.order = new int[0];
    }

    public Mlp expert(int e) {
        return experts[e];
    }

    public int size() {
        return experts.length;
    }

    @Override
    public void run(float[] xn, int tokens, int[] ids, float[] weights, int topK, float[] out, StepContext ctx) {
        int n = tokens * topK;
        if (order.length < n) {
            order = new int[n];
        }
        // Counting sort of (token, slot) pairs by expert, keeping token order within an expert.
        Arrays.fill(start, 0);
        for (int i = 0; i < n; i++) {
            start[ids[i] + 1]++;
        }
        for (int e = 0; e < experts.length; e++) {
            start[e + 1] += start[e];
        }
        System.arraycopy(start, 0, fill, 0, experts.length);
        for (int i = 0; i < n; i++) {
            order[fill[ids[i]]++] = i;
        }
        int inter = experts.length == 0 ? 0 : experts[0].intermediate();
        Scratch s = ctx.scratch();
        float[] in = s.floats(Slot.EXPERT_IN, n * hidden);
        float[] h1 = s.floats(Slot.EXPERT_H1, n * inter);
        float[] h2 = s.floats(Slot.EXPERT_H2, n * inter);
        float[] res = s.floats(Slot.EXPERT_OUT, n * hidden);
        // Row j of the gathered buffers is pair order[j]: expert-major, so each expert's rows are contiguous.
        for (int j = 0; j < n; j++) {
            int token = order[j] / topK;
            System.arraycopy(xn, token * hidden, in, j * hidden, hidden);
        }
        Kernels k = ctx.kernels();
        MatmulGroup up = s.group();
        for (int e = 0; e < experts.length; e++) {
            int count = start[e + 1] - start[e];
            if (count > 0) {
                Mlp m = experts[e];
                up.add(m.gate(), in, start[e] * hidden, h1, start[e] * inter, count)
                        .add(m.up(), in, start[e] * hidden, h2, start[e] * inter, count);
            }
        }
        k.matmuls(up);
        k.swiglu(h1, 0, h2, 0, h1, 0, n * inter);
        MatmulGroup down = s.group();
        for (int e = 0; e < experts.length; e++) {
            int count = start[e + 1] - start[e];
            if (count > 0) {
                down.add(experts[e].down(), h1, start[e] * inter, res, start[e] * hidden, count);
            }
        }
        k.matmuls(down);
        // Ascending expert id per token, whatever the batch: a token's sum does not depend on its neighbours.
        for (int j = 0; j < n; j++) {
            int pair = order[j];
            k.axpy(weights[pair], res, j * hidden, out, (pair / topK) * hidden, hidden);
        }
    }
}
