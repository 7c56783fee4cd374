package io.expertmesh.router.service;

import io.expertmesh.core.sample.SamplingParams;

/**
 * The API's ranges for the sampling values that core's {@link SamplingParams} takes more widely (any finite
 * positive number): ranges inside which the sampler's arithmetic stays finite for any logits a model makes. A
 * repetition_penalty of 1e-45 passes "&gt; 0, finite" but divides a positive logit into infinity, and a draw
 * over infinite logits cannot be made. The other values keep core's ranges (vLLM's and OpenAI's): top_p in
 * (0, 1], min_p in [0, 1), top_k -1, 0 or &ge; 1, presence and frequency penalties in [-2, 2].
 */
final class SamplingBounds {
    /** vLLM sets no upper bound; past 100 every distribution is flat to float precision anyway. */
    static final float MAX_TEMPERATURE = 100f;
    /** A logit divided by 0.01 or multiplied by 100 stays far from float overflow. */
    static final float MIN_REPETITION_PENALTY = 0.01f;
    static final float MAX_REPETITION_PENALTY = 100f;

    private SamplingBounds() {
    }

    /** Adds a violation per value outside the API's ranges (the fields under {@code sampling}). */
    static void check(SamplingParams p, InvalidRequest bad) {
        if (p.temperature() > MAX_TEMPERATURE) {
            bad.add("sampling.temperature", "temperature must be in [0, " + (int) MAX_TEMPERATURE
                    + "] (0 means greedy), got " + p.temperature());
        }
        if (!(p.repetitionPenalty() >= MIN_REPETITION_PENALTY && p.repetitionPenalty() <= MAX_REPETITION_PENALTY)) {
            bad.add("sampling.repetition_penalty", "repetition_penalty must be in [" + MIN_REPETITION_PENALTY
                    + ", " + (int) MAX_REPETITION_PENALTY + "] (1 disables it), got " + p.repetitionPenalty());
        }
    }
}
