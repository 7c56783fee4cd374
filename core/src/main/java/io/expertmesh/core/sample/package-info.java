/**
 * Per-sequence sampling: {@link io.expertmesh.core.sample.SamplingParams} (what the client asked for, validated),
 * {@link io.expertmesh.core.sample.Sampler} (penalties → temperature → top-k → top-p → min-p → draw, with its own
 * seeded RNG), {@link io.expertmesh.core.sample.LogProbs} (log-softmax of the raw logits) and
 * {@link io.expertmesh.core.sample.StopChecker} (when a sequence finishes, and how much of its text may be streamed).
 *
 * <p>Nothing here allocates O(vocab) per token: the sampler works in a {@link io.expertmesh.core.sample.SamplerScratch}
 * allocated once and sorts only the tokens that can still be drawn.
 */
package io.expertmesh.core.sample;
