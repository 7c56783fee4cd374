package io.expertmesh.router.engine;

import io.expertmesh.core.sample.SamplingParams;

/**
 * A validated generation request as the engine takes it.
 *
 * @param requestId client-chosen id, for logs and responses
 * @param prompt    prompt token ids, each inside the vocabulary
 * @param params    sampling and stop parameters
 * @param logprobs  report each token's log-probability
 */
public record EngineRequest(String requestId, int[] prompt, SamplingParams params, boolean logprobs) {
}
