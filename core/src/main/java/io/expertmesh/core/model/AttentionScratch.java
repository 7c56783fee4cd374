package io.expertmesh.core.model;

/**
 * Per-thread score rows for attention tasks, which run on the compute pool's threads in parallel and so cannot
 * share one buffer. Grows to the longest context seen.
 */
final class AttentionScratch {
    private static final ThreadLocal<float[]> SCORES = ThreadLocal.withInitial(() -> new float[256]);

    private AttentionScratch() {
    }

    /**
     * Heads per attention task when {@code heads} query heads share each set of cached rows and a step has
     * {@code rowSets} such sets (MLA: one per token; GQA: one per token and KV head), on {@code threads} threads:
     * at most 8 (their scores and queries stay in L1 beside the rows), and small enough that there are about two
     * tasks per thread, so a slow thread's share can be taken over.
     */
    static int headGroup(int heads, int rowSets, int threads) {
        long perThread = Math.max(1, 2L * threads);
        long g = ((long) heads * rowSets + perThread - 1) / perThread;
        return (int) Math.max(1, Math.min(Math.min(8, heads), g));
    }

    static float[] scores(int length) {
        float[] s = SCORES.get();
        if (s.length < length) {
            s = new float[Math.max(length, s.length * 2)];
            SCORES.set(s);
        }
        return s;
    }
}
