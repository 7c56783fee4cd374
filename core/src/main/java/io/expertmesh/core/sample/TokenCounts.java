package io.expertmesh.core.sample;

/**
 * How often each token id occurred, for the tokens that did: an open-addressing hash map from id to count plus a
 * dense list of the distinct ids. Its size follows the sequence, not the vocabulary, so hundreds of live sequences
 * do not each hold a 129k-entry array, and applying penalties walks only the tokens seen.
 */
final class TokenCounts {
    private int[] tokens = new int[16];
    private int[] counts = new int[16];
    /** 0 = empty slot, otherwise index into {@link #tokens} plus one. */
    private int[] slots = new int[32];
    private int size;

    /** Counts one more occurrence of {@code token}. */
    void add(int token) {
        int slot = slotOf(token);
        int at = slots[slot];
        if (at != 0) {
            counts[at - 1]++;
            return;
        }
        if (size == tokens.length) {
            tokens = java.util.Arrays.copyOf(tokens, size * 2);
            counts = java.util.Arrays.copyOf(counts, size * 2);
        }
        tokens[size] = token;
        counts[size] = 1;
        size++;
        slots[slot] = size;
        if (size * 2 > slots.length) {
            rehash(slots.length * 2);
        }
    }

    /** Occurrences of {@code token}; 0 when never added. */
    int count(int token) {
        int at = slots[slotOf(token)];
        return at == 0 ? 0 : counts[at - 1];
    }

    boolean contains(int token) {
        return slots[slotOf(token)] != 0;
    }

    /** Number of distinct tokens. */
    int distinct() {
        return size;
    }

    /** The i-th distinct token, in order of first occurrence. */
    int token(int i) {
        return tokens[i];
    }

    /** The count of the i-th distinct token. */
    int countAt(int i) {
        return counts[i];
    }

    private int slotOf(int token) {
        int mask = slots.length - 1;
        int h = (token * 0x9E3779B9) >>> 7 & mask; // Fibonacci hashing spreads consecutive ids
        while (slots[h] != 0 && tokens[slots[h] - 1] != token) {
            h = (h + 1) & mask;
        }
        return h;
    }

    private void rehash(int capacity) {
        slots = new int[capacity];
        for (int i = 0; i < size; i++) {
            slots[slotOf(tokens[i])] = i + 1;
        }
    }
}
