package io.expertmesh.core.model;

/**
 * Per-thread score rows for attention tasks, which run on the compute pool's threads in parallel and so cannot
 * share one buffer. Grows to the longest context seen.
 */
final class AttentionScratch {
    private static final ThreadLocal<float[]> SCORES = ThreadLocal.withInitial(() -> new float[256]);

    private AttentionScratch() {
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
