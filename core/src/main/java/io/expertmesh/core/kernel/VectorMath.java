package io.expertmesh.core.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Deterministic building blocks for the Vector API kernels: a fixed-order lane reduction and an {@code exp}
 * made only of add, multiply and fused multiply-add, each with a scalar twin that performs the same IEEE
 * operations in the same order.
 *
 * <p>Why not {@code reduceLanes(ADD)} and {@code lanewise(EXP)}: their order of addition and their
 * implementation (SVML when compiled, {@code Math.exp} per lane when interpreted) are unspecified, so the same
 * input could give different bits before and after JIT compilation, or in a vector lane versus a scalar tail.
 * The kernels promise the same bits whatever the batch, so everything here is exact-by-construction.
 */
final class VectorMath {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final int L = F.length();

    private static final float LOG2E = 1.44269504088896341f;
    private static final float ROUND_MAGIC = 0x1.8p23f;
    private static final int ROUND_MAGIC_BITS = Float.floatToRawIntBits(ROUND_MAGIC);
    // ln 2 split so that n * LN2_HI is exact for |n| < 2^9 (Cody-Waite).
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    private static final float MAX_ARG = 88.72283f;
    private static final float MIN_ARG = -86f;
    // Cephes expf minimax coefficients for e^r on [-ln2/2, ln2/2]: about 1 ulp.
    private static final float P0 = 1.9875691500e-4f;
    private static final float P1 = 1.3981999507e-3f;
    private static final float P2 = 8.3334519073e-3f;
    private static final float P3 = 4.1665795894e-2f;
    private static final float P4 = 1.6666665459e-1f;
    private static final float P5 = 5.0000001201e-1f;

    private VectorMath() {
    }

    /**
     * Sums {@code lanes[0..L)} as a pairwise tree (lane i + lane i+L/2, ...): the same order on every call,
     * compiled or not. Callers store their accumulator with {@code intoArray(lanes, 0)} first; this method takes
     * an array, not a vector, because a vector passed to a call that the JIT does not inline is boxed on the heap
     * (which made the batched matmul allocate megabytes per call).
     */
    static float reduce(float[] lanes) {
        return reduce(lanes, 0);
    }

    /** {@link #reduce(float[])} over {@code lanes[off..off+L)}; unrolled for 16 lanes, the same order either way. */
    static float reduce(float[] a, int off) {
        if (L == 16) {
            float s0 = a[off] + a[off + 8];
            float s1 = a[off + 1] + a[off + 9];
            float s2 = a[off + 2] + a[off + 10];
            float s3 = a[off + 3] + a[off + 11];
            float s4 = a[off + 4] + a[off + 12];
            float s5 = a[off + 5] + a[off + 13];
            float s6 = a[off + 6] + a[off + 14];
            float s7 = a[off + 7] + a[off + 15];
            float t0 = s0 + s4;
            float t1 = s1 + s5;
            float t2 = s2 + s6;
            float t3 = s3 + s7;
            return (t0 + t2) + (t1 + t3);
        }
        for (int width = L >> 1; width > 0; width >>= 1) {
            for (int i = 0; i < width; i++) {
                a[off + i] += a[off + i + width];
            }
        }
        return a[off];
    }

    /**
     * e^x per lane, within ~2 ulp of {@link Math#exp} for x in [-86, 88.7]; 0 below -86 (the true value is
     * under 5e-38), +Inf above ln(Float.MAX_VALUE), NaN for NaN. Bit-identical to {@link #exp(float)}.
     */
    static FloatVector exp(FloatVector x) {
        FloatVector xc = x.max(MIN_ARG).min(MAX_ARG);
        FloatVector t = xc.fma(LOG2E, ROUND_MAGIC);
        FloatVector n = t.sub(ROUND_MAGIC);
        FloatVector r = n.fma(bc(-LN2_HI), xc);
        r = n.fma(bc(-LN2_LO), r);
        FloatVector z = r.mul(r);
        FloatVector p = r.fma(P0, P1);
        p = p.fma(r, bc(P2));
        p = p.fma(r, bc(P3));
        p = p.fma(r, bc(P4));
        p = p.fma(r, bc(P5));
        p = p.fma(z, r).add(1f);
        // 2^(n-1) then ×2, so that n = 128 (x near the top of the range) still has a normal scale factor.
        FloatVector scale = (FloatVector) ((IntVector) t.reinterpretAsInts())
                .sub(ROUND_MAGIC_BITS - 126)
                .lanewise(VectorOperators.LSHL, 23)
                .reinterpretAsFloats();
        FloatVector e = p.mul(scale).mul(2f);
        VectorMask<Float> under = x.lt(MIN_ARG);
        VectorMask<Float> over = x.compare(VectorOperators.GT, MAX_ARG);
        return e.blend(0f, under).blend(Float.POSITIVE_INFINITY, over);
    }

    private static FloatVector bc(float c) {
        return FloatVector.broadcast(F, c);
    }

    /** The scalar twin of {@link #exp(FloatVector)}: same operations, same bits. */
    static float exp(float x) {
        float xc = Math.min(Math.max(x, MIN_ARG), MAX_ARG);
        float t = Math.fma(xc, LOG2E, ROUND_MAGIC);
        float n = t - ROUND_MAGIC;
        float r = Math.fma(n, -LN2_HI, xc);
        r = Math.fma(n, -LN2_LO, r);
        float z = r * r;
        float p = Math.fma(r, P0, P1);
        p = Math.fma(p, r, P2);
        p = Math.fma(p, r, P3);
        p = Math.fma(p, r, P4);
        p = Math.fma(p, r, P5);
        p = Math.fma(p, z, r) + 1f;
        float scale = Float.intBitsToFloat((Float.floatToRawIntBits(t) - (ROUND_MAGIC_BITS - 126)) << 23);
        float e = p * scale * 2f;
        if (x < MIN_ARG) {
            return 0f;
        }
        if (x > MAX_ARG) {
            return Float.POSITIVE_INFINITY;
        }
        return e;
    }
}
