package io.expertmesh.core.sample;

/**
 * Working memory for {@link Sampler#sample}: a penalised copy of the logits, the candidate ids and their
 * probabilities, and the sort keys for top-p. Allocated once, grown to the vocabulary on first use, never in the
 * per-token path afterwards.
 *
 * <p>Not thread-safe. A {@link Sampler} makes its own by default; an engine that samples all its sequences on one
 * thread can hand the same scratch to all of them, so memory is per thread (about 20 bytes × vocab), not per
 * sequence.
 */
public final class SamplerScratch {
    float[] logits = new float[0];
    int[] ids = new int[0];
    float[] probs = new float[0];
    long[] keys = new long[0];
    final TopN topK = new TopN(1);

    /** Makes room for a vocabulary of {@code vocab} tokens. */
    void ensure(int vocab) {
        if (logits.length < vocab) {
            logits = new float[vocab];
            ids = new int[vocab];
            probs = new float[vocab];
            keys = new long[vocab];
        }
    }
}
