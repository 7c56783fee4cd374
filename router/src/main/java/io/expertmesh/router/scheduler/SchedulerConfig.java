package io.expertmesh.router.scheduler;

/**
 * Limits of the {@link Scheduler}.
 *
 * @param maxBatchedTokens tokens one step may run, decodes and prefill chunks together (vLLM's
 *                         {@code max_num_batched_tokens}); bounds step latency and scratch memory
 * @param maxRunning       sequences holding KV blocks and scheduled each step (vLLM's {@code max_num_seqs})
 * @param maxWaiting       bound of the waiting queue; {@link Scheduler#add} refuses beyond it so overload turns
 *                         into RESOURCE_EXHAUSTED instead of unbounded queueing (preempted sequences return to
 *                         the queue regardless)
 */
public record SchedulerConfig(int maxBatchedTokens, int maxRunning, int maxWaiting) {

    public SchedulerConfig {
        if (maxBatchedTokens <= 0) {
            throw new IllegalArgumentException("maxBatchedTokens must be positive, got " + maxBatchedTokens);
        }
        if (maxRunning <= 0) {
            throw new IllegalArgumentException("maxRunning must be positive, got " + maxRunning);
        }
        if (maxWaiting < 0) {
            throw new IllegalArgumentException("maxWaiting must be >= 0, got " + maxWaiting);
        }
    }
}
