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

    private KernelScratch() {
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
