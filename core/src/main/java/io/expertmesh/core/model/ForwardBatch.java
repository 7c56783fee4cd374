package io.expertmesh.core.model;

import java.util.Arrays;

/**
 * The tokens of one forward step: any mix of prefill chunks and decode tokens from several sequences.
 * Token {@code t} is {@code tokens[t]} at position {@code positions[t]} of the sequence whose cache is
 * {@code caches[t]}; it attends to positions {@code 0..positions[t]} of that cache. Rows whose logits are
 * wanted are listed in {@code logitRows} (for a prefill chunk usually only its last token).
 */
public record ForwardBatch(int[] tokens, int[] positions, KvCache[] caches, int[] logitRows) {

    public ForwardBatch {
        if (tokens.length == 0 || positions.length != tokens.length || caches.length != tokens.length) {
            throw new IllegalArgumentException("tokens, positions and caches must have the same non-zero length");
        }
        for (int r : logitRows) {
            if (r < 0 || r >= tokens.length) {
                throw new IllegalArgumentException("logit row " + r + " outside batch of " + tokens.length);
            }
        }
    }

    /** Consecutive tokens of one sequence starting at {@code start}, logits for the rows in {@code logitRows}. */
    public static ForwardBatch ofSequence(int[] tokens, int start, KvCache cache, int... logitRows) {
        int[] pos = new int[tokens.length];
        KvCache[] caches = new KvCache[tokens.length];
        for (int i = 0; i < tokens.length; i++) {
            pos[i] = start + i;
            caches[i] = cache;
        }
        return new ForwardBatch(tokens, pos, caches, logitRows);
    }

    /** Like {@link #ofSequence} with logits for every token. */
    public static ForwardBatch ofSequenceAllLogits(int[] tokens, int start, KvCache cache) {
        int[] rows = new int[tokens.length];
        Arrays.setAll(rows, i -> i);
        return ofSequence(tokens, start, cache, rows);
    }

    public int size() {
        return tokens.length;
    }
}
