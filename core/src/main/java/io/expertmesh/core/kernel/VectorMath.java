package io.expertmesh.core.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
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

    /** Whether {@link #reduce8} uses the permute network (8 or 16 lanes: AVX2, AVX-512) or the scalar tree. */
    /** Rotations by L/2, L/4, ... 1 lanes: the in-register form of {@link #reduce}'s halving tree. */
    private static final VectorShuffle<Float>[] HALVINGS = halvings();

    @SuppressWarnings("unchecked")
    private static VectorShuffle<Float>[] halvings() {
        int levels = Integer.numberOfTrailingZeros(L);
        VectorShuffle<Float>[] s = new VectorShuffle[levels];
        for (int k = 0, width = L >> 1; width > 0; k++, width >>= 1) {
            int w = width;
            s[k] = VectorShuffle.fromOp(F, i -> (i + w) % L);
        }
        return s;
    }

    /**
     * {@link #reduce} of one vector without a scratch array: lane i + lane i+L/2, then i + i+L/4, ... — the same
     * additions in the same order, so the same bits; rotations keep it in registers.
     */
    static float reduceInRegisters(FloatVector v) {
        for (VectorShuffle<Float> rot : HALVINGS) {
            v = v.add(v.rearrange(rot));
        }
        return v.lane(0);
    }

    private static final boolean NETWORK = L == 8 || L == 16;
    // Index vectors of the reduction network, level by level: see pairIndex().
    private static final FloatVector LO1 = pairIndex(L, false);
    private static final FloatVector HI1 = pairIndex(L, true);
    private static final FloatVector LO2 = pairIndex(L / 2, false);
    private static final FloatVector HI2 = pairIndex(L / 2, true);
    private static final FloatVector LO3 = pairIndex(Math.max(L / 4, 2), false);
    private static final FloatVector HI3 = pairIndex(Math.max(L / 4, 2), true);
    private static final FloatVector LO4 = pairIndex(Math.max(L / 8, 2), false);
    private static final FloatVector HI4 = pairIndex(Math.max(L / 8, 2), true);

    /**
     * Index vector for {@code selectFrom(a, b)} at a level where each accumulator still has {@code w} lanes,
     * packed side by side ({@code L / w} accumulators per vector): output slot {@code q} (of {@code w/2} lanes)
     * takes the low ({@code hi == false}) or high half of accumulator {@code q} of {@code a} (then of {@code b}).
     */
    private static FloatVector pairIndex(int w, boolean hi) {
        int m = L / w;
        int half = w / 2;
        float[] idx = new float[L];
        for (int n = 0; n < L; n++) {
            int q = n / half;
            int i = n % half;
            int src = (q % m) * w + i + (hi ? half : 0);
            idx[n] = q >= m ? src + L : src;
        }
        return FloatVector.fromArray(F, idx, 0);
    }

    /**
     * {@link #reduce(float[], int)} of the 8 accumulators stored at {@code a[off + k·L]} ({@code k < 8}), at
     * once and bit-identical to it: the sum of accumulator {@code k} goes to {@code a[off + k]}, and the rest of
     * {@code a[off .. off + 8L)} is left undefined.
     *
     * <p>Each level of the halving tree ({@code lane i + lane i + w/2}) is one vector add over two
     * accumulators' halves brought side by side by two-vector permutes ({@code selectFrom(a, b)}, one
     * {@code vpermt2ps}), so the 8 sums cost 8 loads, 16 permutes, 8 adds and a store (AVX-512) instead of 128
     * scalar loads and 120 dependent scalar adds. Permutes move values exactly and every add is the tree's add of
     * the same two values, so this, the scalar tree and interpreted code agree bit for bit.
     *
     * <p>It takes an array, not 8 vectors, for the same reason as {@link #reduce(float[], int)}: C2 does not
     * inline it into the large tile methods (node count cutoff), and vector arguments to a call that is not inlined
     * are boxed. A 64-byte store followed by a 64-byte load of the same address is forwarded, so the round trip is
     * cheap.
     */
    static void reduce8(float[] a, int off) {
        if (!NETWORK) {
            // Sum k lands in a[off + k], inside the block of a sum already taken (k / L <= k).
            for (int k = 0; k < 8; k++) {
                a[off + k] = reduce(a, off + k * L);
            }
            return;
        }
        // Written out without helper methods: C2 may inline this into a tile method that is already past its
        // node-count cutoff, where a further (non-@ForceInline) call with vector arguments would box them.
        FloatVector v0 = FloatVector.fromArray(F, a, off);
        FloatVector v1 = FloatVector.fromArray(F, a, off + L);
        FloatVector v2 = FloatVector.fromArray(F, a, off + 2 * L);
        FloatVector v3 = FloatVector.fromArray(F, a, off + 3 * L);
        FloatVector v4 = FloatVector.fromArray(F, a, off + 4 * L);
        FloatVector v5 = FloatVector.fromArray(F, a, off + 5 * L);
        FloatVector v6 = FloatVector.fromArray(F, a, off + 6 * L);
        FloatVector v7 = FloatVector.fromArray(F, a, off + 7 * L);
        FloatVector b0 = LO1.selectFrom(v0, v1).add(HI1.selectFrom(v0, v1));
        FloatVector b1 = LO1.selectFrom(v2, v3).add(HI1.selectFrom(v2, v3));
        FloatVector b2 = LO1.selectFrom(v4, v5).add(HI1.selectFrom(v4, v5));
        FloatVector b3 = LO1.selectFrom(v6, v7).add(HI1.selectFrom(v6, v7));
        FloatVector c0 = LO2.selectFrom(b0, b1).add(HI2.selectFrom(b0, b1));
        FloatVector c1 = LO2.selectFrom(b2, b3).add(HI2.selectFrom(b2, b3));
        FloatVector d = LO3.selectFrom(c0, c1).add(HI3.selectFrom(c0, c1));
        if (L == 16) {
            d = LO4.selectFrom(d, d).add(HI4.selectFrom(d, d));
        }
        d.intoArray(a, off);
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
