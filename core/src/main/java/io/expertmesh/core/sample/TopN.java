package io.expertmesh.core.sample;

/**
 * The {@code n} best of a stream of (token, value) pairs, "best" meaning larger value, ties to the lower token id.
 * A bounded min-heap whose root is the worst kept pair, so most offers after warm-up cost one comparison:
 * O(vocab) for a whole vocabulary instead of the O(vocab log vocab) of a full sort.
 *
 * <p>Reusable: {@link #reset(int)} keeps the arrays when they are large enough. Also used by
 * {@code core.eval}'s KL-divergence base files for each token's top logits.
 */
public final class TopN {
    private int[] ids;
    private float[] values;
    private int capacity;
    private int size;

    public TopN(int capacity) {
        ids = new int[Math.max(1, capacity)];
        values = new float[Math.max(1, capacity)];
        reset(capacity);
    }

    /** Empties the selection and sets how many pairs it keeps; grows the arrays only when needed. */
    public void reset(int capacity) {
        if (capacity < 1) {
            throw new IllegalArgumentException("capacity must be >= 1, got " + capacity);
        }
        if (capacity > ids.length) {
            ids = new int[capacity];
            values = new float[capacity];
        }
        this.capacity = capacity;
        this.size = 0;
    }

    public int size() {
        return size;
    }

    public int id(int i) {
        return ids[i];
    }

    public float value(int i) {
        return values[i];
    }

    /** Offers every element of {@code x[off, off+n)} with its position as the token id. */
    public void offerAll(float[] x, int off, int n) {
        for (int i = 0; i < n; i++) {
            float v = x[off + i];
            if (size < capacity || better(v, i, values[0], ids[0])) {
                offer(i, v);
            }
        }
    }

    public void offer(int id, float value) {
        if (size < capacity) {
            int i = size++;
            // sift up: the parent must be worse than (or equal to) the child
            while (i > 0) {
                int parent = (i - 1) >>> 1;
                if (!better(values[parent], ids[parent], value, id)) {
                    break;
                }
                ids[i] = ids[parent];
                values[i] = values[parent];
                i = parent;
            }
            ids[i] = id;
            values[i] = value;
        } else if (better(value, id, values[0], ids[0])) {
            siftDown(0, id, value, size);
        }
    }

    /** Orders the kept pairs best first (in place; the heap is consumed). */
    public void sortDescending() {
        for (int end = size - 1; end > 0; end--) {
            int worstId = ids[0];
            float worstValue = values[0];
            siftDown(0, ids[end], values[end], end);
            ids[end] = worstId;
            values[end] = worstValue;
        }
    }

    private void siftDown(int i, int id, float value, int n) {
        while (true) {
            int child = 2 * i + 1;
            if (child >= n) {
                break;
            }
            int right = child + 1;
            if (right < n && better(values[child], ids[child], values[right], ids[right])) {
                child = right; // the worse child goes up
            }
            if (!better(value, id, values[child], ids[child])) {
                break;
            }
            ids[i] = ids[child];
            values[i] = values[child];
            i = child;
        }
        ids[i] = id;
        values[i] = value;
    }

    /** True when (v1, id1) ranks strictly before (v2, id2). */
    static boolean better(float v1, int id1, float v2, int id2) {
        return v1 > v2 || (v1 == v2 && id1 < id2);
    }
}
