package io.expertmesh.core.model;

/**
 * Runs the routed experts of one MoE layer for a batch of tokens and adds their gate-weighted outputs.
 * In one process the experts are local ({@link LocalExperts}); in a cluster this is where tokens are
 * dispatched to expert workers.
 */
public interface RoutedExperts {

    /**
     * For every token {@code t < tokens}: {@code out[t] += Σ_j weights[t*topK+j] · expert_{ids[t*topK+j]}(xn[t])},
     * the sum taken in ascending expert id so a token's result does not depend on the rest of the batch.
     */
    void run(float[] xn, int tokens, int[] ids, float[] weights, int topK, float[] out, StepContext ctx);

    /**
     * Starts {@link #run}: the caller may compute something else (the shared expert) before
     * {@link Pending#finish()} adds the routed outputs into {@code out}. Remote experts send their requests
     * here and wait in {@code finish}; the arguments are read before this returns, except {@code out} and
     * {@code ctx}, which {@code finish} uses. Local experts just run.
     */
    default Pending start(float[] xn, int tokens, int[] ids, float[] weights, int topK, float[] out,
                          StepContext ctx) {
        run(xn, tokens, ids, weights, topK, out, ctx);
        return Pending.DONE;
    }

    /**
     * {@link #start}, and the layer's shared expert: {@code sharedOut[t] = shared(xn[t])} for every token, computed
     * before this returns (here, while remote experts are in flight). Experts run in this process may compute both
     * in the same parallel steps ({@link LocalExperts}); the outputs are the same either way.
     */
    default Pending startWithShared(float[] xn, int tokens, int[] ids, float[] weights, int topK, float[] out,
                                    Mlp shared, float[] sharedOut, StepContext ctx) {
        Pending routed = start(xn, tokens, ids, weights, topK, out, ctx);
        shared.forward(xn, sharedOut, tokens, ctx);
        return routed;
    }

    /** Routed experts started by {@link #start}. */
    @FunctionalInterface
    interface Pending {
        Pending DONE = () -> { };

        /** Waits for the experts and adds their outputs into the {@code out} given to {@code start}. */
        void finish();
    }
}
