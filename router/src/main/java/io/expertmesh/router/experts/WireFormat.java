package io.expertmesh.router.experts;

/** How hidden states and expert outputs travel between the router and its workers. */
public enum WireFormat {
    /**
     * F32 hidden states, one unweighted output per (token, expert) back; the router adds them in ascending expert
     * id, so a distributed run equals a single-process run bit for bit however experts are spread. Costs top-k
     * F32 vectors back per token.
     */
    EXACT,
    /**
     * BF16 hidden states, one weighted sum per token and worker back (the least bytes); results differ from a
     * single-process run by BF16 rounding of the MoE input and output.
     */
    BF16
}
