package io.expertmesh.core.model;

import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.model.Scratch.Slot;
import java.util.Arrays;

/**
 * The routed experts of one layer held in this process. Tokens are grouped by expert so each expert's weights
 * are read once per step, whatever the number of tokens routed to it.
 */
public final class LocalExperts implements RoutedExperts {
    private final Mlp[] experts;
    private final int hidden;
    // Grouping buffers, grown with the batch: tokens of expert e are order[start[e] .. start[e+1]).
    private int[] start;
    private int[] order;
    private int[] fill;

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
        Kernels k = ctx.kernels();
        for (int e = 0; e < experts.length; e++) {
            int count = start[e + 1] - start[e];
            if (count == 0) {
                continue;
            }
            float[] in = ctx.scratch().floats(Slot.EXPERT_IN, count * hidden);
            float[] res = ctx.scratch().floats(Slot.EXPERT_OUT, count * hidden);
            for (int j = 0; j < count; j++) {
                int token = order[start[e] + j] / topK;
                System.arraycopy(xn, token * hidden, in, j * hidden, hidden);
            }
            experts[e].forward(in, res, count, ctx);
            for (int j = 0; j < count; j++) {
                int pair = order[start[e] + j];
                int token = pair / topK;
                k.axpy(weights[pair], res, j * hidden, out, token * hidden, hidden);
            }
        }
    }
}
