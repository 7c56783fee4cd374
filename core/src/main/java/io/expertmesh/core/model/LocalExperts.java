package io.expertmesh.core.model;

import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.kernel.MatmulGroup;
import io.expertmesh.core.model.Scratch.Slot;
import java.util.Arrays;

/**
 * The routed experts of one layer held in this process. Tokens are grouped by expert so each expert's weights
 * are read once per step, whatever the number of tokens routed to it, and all active experts run as two parallel
 * steps (gate and up projections of every expert, then every down projection) rather than three per expert.
 * One instance serves one forward pass at a time (its grouping buffers are reused).
 */
public final class LocalExperts implements RoutedExperts, ExpertRunner {
    private final Mlp[] experts;
    private final int hidden;
    // Grouping buffers, grown with the batch: (token, slot) pairs of expert e are order[start[e] .. start[e+1]).
    private final int[] start;
    private final int[] fill;
    private int[] order;
    private int[] tokenOf;
    private final int intermediate;
    /** The kernels the experts' weights are laid out for ({@link Kernels#prepare}), and which experts are. */
    private Kernels preparedFor;
    private final boolean[] ready;

    /**
     * @param experts indexed by expert id; {@code null} for an expert not held in this process (an expert
     *                worker's shard), which then must not be routed to
     */
    public LocalExperts(Mlp[] experts, int hidden) {
        this.experts = experts.clone();
        this.hidden = hidden;
        this.start = new int[experts.length + 1];
        this.fill = new int[experts.length];
        this.order = new int[0];
        this.tokenOf = new int[0];
        this.ready = new boolean[experts.length];
        int inter = 0;
        for (Mlp m : experts) {
            if (m != null) {
                inter = m.intermediate();
                break;
            }
        }
        this.intermediate = inter;
    }

    /** Expert {@code e}'s weights, in the layout of the kernels that last ran it (see {@link #prepared}). */
    public Mlp expert(int e) {
        return experts[e];
    }

    /**
     * Expert {@code e} laid out for {@code k}: on its first use (an expert worker maps its experts' weights as the
     * checkpoint stores them; a model built by {@link ModelBuilder} already has them prepared, and preparing
     * again returns them as they are), so a worker loading many experts does not copy them all at once. A worker
     * rebuilds this runner whenever its held experts change; the kernels keep the copies of the same source
     * matrices ({@link Kernels#prepare}), so the experts it kept are not copied again.
     */
    private Mlp prepared(int e, Kernels k) {
        if (k != preparedFor) {
            Arrays.fill(ready, false);
            preparedFor = k;
        }
        if (!ready[e]) {
            Mlp m = experts[e];
            experts[e] = new Mlp(k.prepare(m.gate()), k.prepare(m.up()), k.prepare(m.down()));
            ready[e] = true;
        }
        return experts[e];
    }

    public int size() {
        return experts.length;
    }

    @Override
    public void run(float[] xn, int tokens, int[] ids, float[] weights, int topK, float[] out, StepContext ctx) {
        runFixedTopK(xn, tokens, ids, weights, topK, out, null, null, ctx);
    }

    /**
     * The routed experts and the shared expert in the same two parallel steps: its products join the routed
     * experts' instead of taking two steps of their own (at one token a step is a few microseconds and most of that
     * is the barrier); each product has the bits it has alone ({@link Kernels#matmuls}).
     */
    @Override
    public Pending startWithShared(float[] xn, int tokens, int[] ids, float[] weights, int topK, float[] out,
                                   Mlp shared, float[] sharedOut, StepContext ctx) {
        runFixedTopK(xn, tokens, ids, weights, topK, out, shared, sharedOut, ctx);
        return Pending.DONE;
    }

    private void runFixedTopK(float[] xn, int tokens, int[] ids, float[] weights, int topK, float[] out, Mlp shared,
                              float[] sharedOut, StepContext ctx) {
        int n = tokens * topK;
        int[] tokenOf = tokenBuffer(n);
        for (int i = 0; i < n; i++) {
            tokenOf[i] = i / topK;
        }
        runPairs(xn, n, tokenOf, ids, weights, out, shared, tokens, sharedOut, ctx);
    }

    /**
     * As {@link #run(float[], int, int[], float[], int, float[], StepContext)} with a varying number of experts
     * per token (an expert worker gets, per token, only the experts it holds): token {@code t}'s (expert, weight)
     * pairs are {@code ids/weights[offsets[t] .. offsets[t+1])}, {@code offsets[0] == 0}. For every token,
     * {@code out[t] += Σ weight · expert_id(xn[t])} in ascending expert id (pairs of one expert in pair order),
     * the same bits as the fixed top-k form for the same pairs. Experts absent from this layer ({@code null})
     * must not be named.
     */
    @Override
    public void run(float[] xn, int tokens, int[] offsets, int[] ids, float[] weights, float[] out,
                    StepContext ctx) {
        if (offsets[0] != 0) {
            throw new IllegalArgumentException("offsets[0] must be 0, got " + offsets[0]);
        }
        int n = offsets[tokens];
        int[] tokenOf = tokenBuffer(n);
        for (int t = 0; t < tokens; t++) {
            for (int i = offsets[t]; i < offsets[t + 1]; i++) {
                tokenOf[i] = t;
            }
        }
        runPairs(xn, n, tokenOf, ids, weights, out, null, 0, null, ctx);
    }

    private int[] tokenBuffer(int n) {
        if (tokenOf.length < n) {
            tokenOf = new int[n];
        }
        return tokenOf;
    }

    /**
     * Pair {@code i < n} is (token {@code tokenOf[i]}, expert {@code ids[i]}, weight {@code weights[i]}). With a
     * {@code shared} expert, also {@code sharedOut[t] = shared(xn[t])} for {@code t < tokens}, in the same two
     * parallel steps; its hidden rows follow the routed ones in the {@code h1}/{@code h2} buffers.
     */
    private void runPairs(float[] xn, int n, int[] tokenOf, int[] ids, float[] weights, float[] out, Mlp shared,
                          int tokens, float[] sharedOut, StepContext ctx) {
        if (order.length < n) {
            order = new int[n];
        }
        // Counting sort of (token, slot) pairs by expert, keeping token order within an expert.
        Arrays.fill(start, 0);
        for (int i = 0; i < n; i++) {
            if (experts[ids[i]] == null) {
                throw new IllegalArgumentException("expert " + ids[i] + " is not held here");
            }
            start[ids[i] + 1]++;
        }
        for (int e = 0; e < experts.length; e++) {
            start[e + 1] += start[e];
        }
        System.arraycopy(start, 0, fill, 0, experts.length);
        for (int i = 0; i < n; i++) {
            order[fill[ids[i]]++] = i;
        }
        int inter = intermediate;
        Scratch s = ctx.scratch();
        float[] in = s.floats(Slot.EXPERT_IN, n * hidden);
        int sharedAt = n * inter;
        int hiddenRows = sharedAt + (shared == null ? 0 : tokens * shared.intermediate());
        float[] h1 = s.floats(Slot.EXPERT_H1, hiddenRows);
        float[] h2 = s.floats(Slot.EXPERT_H2, hiddenRows);
        float[] res = s.floats(Slot.EXPERT_OUT, n * hidden);
        // Row j of the gathered buffers is pair order[j]: expert-major, so each expert's rows are contiguous.
        for (int j = 0; j < n; j++) {
            int token = tokenOf[order[j]];
            System.arraycopy(xn, token * hidden, in, j * hidden, hidden);
        }
        Kernels k = ctx.kernels();
        MatmulGroup up = s.group();
        for (int e = 0; e < experts.length; e++) {
            int count = start[e + 1] - start[e];
            if (count > 0) {
                Mlp m = prepared(e, k);
                up.add(m.gate(), in, start[e] * hidden, h1, start[e] * inter, count)
                        .add(m.up(), in, start[e] * hidden, h2, start[e] * inter, count);
            }
        }
        if (shared != null) {
            up.add(shared.gate(), xn, 0, h1, sharedAt, tokens).add(shared.up(), xn, 0, h2, sharedAt, tokens);
        }
        k.matmuls(up);
        k.swiglu(h1, 0, h2, 0, h1, 0, hiddenRows);
        MatmulGroup down = s.group();
        for (int e = 0; e < experts.length; e++) {
            int count = start[e + 1] - start[e];
            if (count > 0) {
                down.add(experts[e].down(), h1, start[e] * inter, res, start[e] * hidden, count);
            }
        }
        if (shared != null) {
            down.add(shared.down(), h1, sharedAt, sharedOut, 0, tokens);
        }
        k.matmuls(down);
        // Ascending expert id per token, whatever the batch: a token's sum does not depend on its neighbours.
        for (int j = 0; j < n; j++) {
            int pair = order[j];
            k.axpy(weights[pair], res, j * hidden, out, tokenOf[pair] * hidden, hidden);
        }
    }
}
