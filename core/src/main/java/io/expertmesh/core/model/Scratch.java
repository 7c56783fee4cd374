package io.expertmesh.core.model;

import io.expertmesh.core.kernel.MatmulGroup;
import java.util.EnumMap;

/**
 * Step-local working buffers, shared by all layers of a model (layers run one after another). Each buffer
 * grows to the largest batch seen and is then reused, so the forward pass allocates nothing per token.
 * One Scratch belongs to one forward pass at a time.
 */
public final class Scratch {

    /** Named buffers; each is used by one stage of a layer at a time. */
    public enum Slot {
        X, XN, ATTN_OUT, FFN_OUT, COS, SIN,
        Q_A, Q, KV, Q_ABS, O_LATENT, HEADS_OUT, K, V, GATHER_IN, GATHER_OUT,
        SCORES, GATE_LOGITS, TOPK_WEIGHTS, EXPERT_IN, EXPERT_H1, EXPERT_H2, EXPERT_OUT, SHARED_OUT, SHARED_GATE,
        /** Remote experts' per-(token, expert) outputs, kept from a layer's dispatch until its results are added. */
        DISPATCH_ROWS
    }

    private final EnumMap<Slot, float[]> floats = new EnumMap<>(Slot.class);
    private int[] ints = new int[0];
    private final MatmulGroup group = new MatmulGroup();

    /** The step's reusable fused-matmul group, cleared. */
    public MatmulGroup group() {
        return group.clear();
    }

    /** A buffer of at least {@code size} floats; contents are whatever was left there. */
    public float[] floats(Slot slot, int size) {
        float[] a = floats.get(slot);
        if (a == null || a.length < size) {
            a = new float[grown(a == null ? 0 : a.length, size)];
            floats.put(slot, a);
        }
        return a;
    }

    /** An int buffer of at least {@code size} (top-k expert ids). */
    public int[] ints(int size) {
        if (ints.length < size) {
            ints = new int[grown(ints.length, size)];
        }
        return ints;
    }

    /**
     * The new length of a buffer of {@code length} that must hold {@code size}: at least half again as long, so
     * that a step size creeping up (a server's batches, prefill chunks, a worker's calls) reallocates a few
     * times, not once per new size.
     */
    public static int grown(int length, int size) {
        return (int) Math.min(Integer.MAX_VALUE - 16, Math.max(size, length + (long) length / 2));
    }
}
