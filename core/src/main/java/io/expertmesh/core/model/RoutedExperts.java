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
}
