package io.expertmesh.core.kernel;

/**
 * Per-thread heap scratch for the vector kernels, allocated once per thread and grown on demand, so no kernel
 * allocates per row or per call. A thread uses its own scratch only while it runs one kernel call; the matmul's
 * caller lends its split activations to the pool's workers for the duration of the call, read-only.
 */
final class KernelScratch {
    private static final ThreadLocal<KernelScratch> LOCAL = ThreadLocal.withInitial(KernelScratch::new);

    /** {@code 8 × }{@link VectorMath#L} floats for the fixed-order lane reductions of up to 8 accumulators. */
    final float[] lanes = new float[8 * VectorMath.L];
    private float[] even = new float[0];
    private float[] odd = new float[0];
    private float[] dequantized = new float[0];
    private float[] scales = new float[0];

    private float[][] groupEven = new float[0][];
    private float[][] groupOdd = new float[0][];
    /** Task table of a fused matmul group: product index and row range per task. */
    int[] taskJob = new int[0];
    int[] taskFrom = new int[0];
    int[] taskTo = new int[0];
    float[][] jobEven = new float[0][];
    float[][] jobOdd = new float[0][];

    private KernelScratch() {
    }

    /** Split buffers number {@code i} of a fused group, at least {@code n} floats each. */
    float[] groupEven(int i, int n) {
        ensureGroupSlots(i + 1);
        if (groupEven[i] == null || groupEven[i].length < n) {
            groupEven[i] = new float[n];
        }
        return groupEven[i];
    }

    float[] groupOdd(int i, int n) {
        ensureGroupSlots(i + 1);
        if (groupOdd[i] == null || groupOdd[i].length < n) {
            groupOdd[i] = new float[n];
        }
        return groupOdd[i];
    }

    private void ensureGroupSlots(int n) {
        if (groupEven.length < n) {
            groupEven = java.util.Arrays.copyOf(groupEven, Math.max(n, groupEven.length * 2));
            groupOdd = java.util.Arrays.copyOf(groupOdd, groupEven.length);
        }
    }

    void ensureTasks(int tasks, int jobs) {
        if (taskJob.length < tasks) {
            taskJob = new int[tasks];
            taskFrom = new int[tasks];
            taskTo = new int[tasks];
        }
        if (jobEven.length < jobs) {
            jobEven = new float[jobs][];
            jobOdd = new float[jobs][];
        }
    }

    /**
     * At least {@code n} floats for int8 or int4 weight rows widened to float ({@link Int8Matmul},
     * {@link Int4Matmul}); contents undefined.
     */
    float[] dequantized(int n) {
        if (dequantized.length < n) {
            dequantized = new float[n];
        }
        return dequantized;
    }

    /** At least {@code n} floats for block scales widened from F16 ({@link Int4Matmul}); contents undefined. */
    float[] scales(int n) {
        if (scales.length < n) {
            scales = new float[n];
        }
        return scales;
    }

    static KernelScratch get() {
        return LOCAL.get();
    }

    /** At least {@code n} floats for the even-index elements of the activations; contents undefined. */
    float[] even(int n) {
        if (even.length < n) {
            even = new float[n];
        }
        return even;
    }

    /** At least {@code n} floats for the odd-index elements of the activations; contents undefined. */
    float[] odd(int n) {
        if (odd.length < n) {
            odd = new float[n];
        }
        return odd;
    }
}
