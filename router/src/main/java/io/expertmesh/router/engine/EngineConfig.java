package io.expertmesh.router.engine;

/**
 * Engine settings, validated once.
 *
 * @param blockSize        tokens per KV block
 * @param kvBudgetBytes    memory for the paged KV cache (decides the number of blocks)
 * @param maxBatchedTokens token budget of one step (decode tokens + prefill chunks)
 * @param maxRunning       most sequences in one step
 * @param maxWaiting       most requests waiting to be scheduled; more are refused with RESOURCE_EXHAUSTED
 * @param prefixCaching    reuse KV blocks of identical prompt prefixes
 */
public record EngineConfig(int blockSize, long kvBudgetBytes, int maxBatchedTokens, int maxRunning, int maxWaiting,
                           boolean prefixCaching) {

    public EngineConfig {
        if (blockSize < 1 || blockSize > 1024) {
            throw new IllegalArgumentException("kv block size must be in [1, 1024], got " + blockSize);
        }
        if (kvBudgetBytes <= 0) {
            throw new IllegalArgumentException("kv cache budget must be > 0 bytes, got " + kvBudgetBytes);
        }
        if (maxBatchedTokens < 1 || maxRunning < 1 || maxWaiting < 0) {
            throw new IllegalArgumentException("max batched tokens and max running must be >= 1, max waiting >= 0");
        }
    }

    /** Defaults for a CPU router: 16-token blocks, 1 GiB of KV, 512 tokens and 64 sequences per step. */
    public static EngineConfig defaults() {
        return new EngineConfig(16, 1L << 30, 512, 64, 256, true);
    }
}
