package io.expertmesh.core.sample;

/** One token and its natural-log probability under the model's raw distribution (see {@link LogProbs}). */
public record TokenLogprob(int tokenId, float logprob) {
}
