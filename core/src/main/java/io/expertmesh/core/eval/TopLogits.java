package io.expertmesh.core.eval;

/** The ids of the largest logits of one row, largest first (ties: the lower id first). */
final class TopLogits {
    private TopLogits() {
    }

    static int[] ids(float[] logits, int off, int vocab, int k) {
        int n = Math.min(k, vocab);
        int[] ids = new int[n];
        float[] vals = new float[n];
        int size = 0;
        for (int v = 0; v < vocab; v++) {
            float x = logits[off + v];
            if (size == n && !(x > vals[n - 1])) {
                continue;
            }
            // insertion into the sorted top list (k is small)
            int at = size == n ? n - 1 : size++;
            while (at > 0 && x > vals[at - 1]) {
                vals[at] = vals[at - 1];
                ids[at] = ids[at - 1];
                at--;
            }
            vals[at] = x;
            ids[at] = v;
        }
        return ids;
    }
}
