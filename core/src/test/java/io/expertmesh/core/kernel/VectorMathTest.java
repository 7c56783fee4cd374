package io.expertmesh.core.kernel;

import static io.expertmesh.core.kernel.TestData.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

class VectorMathTest {

    @Test
    void exp_acrossRange_within2UlpOfMathExp() {
        for (float x = -86f; x <= 88.7f; x += 0.0137f) {
            double expected = Math.exp(x);
            float actual = VectorMath.exp(x);
            assertClose((float) expected, actual, 2.5 * Math.ulp((float) expected), "exp(" + x + ")");
        }
    }

    @Test
    void exp_specialValues_followDocumentedLimits() {
        assertEquals(1f, VectorMath.exp(0f));
        assertEquals(0f, VectorMath.exp(-100f));
        assertEquals(0f, VectorMath.exp(Float.NEGATIVE_INFINITY));
        assertEquals(Float.POSITIVE_INFINITY, VectorMath.exp(89f));
        assertEquals(Float.POSITIVE_INFINITY, VectorMath.exp(Float.POSITIVE_INFINITY));
        assertEquals(Float.NaN, VectorMath.exp(Float.NaN));
    }

    @Test
    void exp_vectorAndScalar_bitIdentical() {
        Random rnd = new Random(12);
        float[] in = new float[VectorMath.L];
        float[] out = new float[VectorMath.L];
        for (int round = 0; round < 20_000; round++) {
            for (int i = 0; i < in.length; i++) {
                in[i] = (float) (rnd.nextGaussian() * (round % 3 == 0 ? 60 : 5));
            }
            in[round % in.length] = round % 7 == 0 ? Float.NaN : in[round % in.length];
            VectorMath.exp(FloatVector.fromArray(VectorMath.F, in, 0)).intoArray(out, 0);
            for (int i = 0; i < in.length; i++) {
                assertEquals(Float.floatToRawIntBits(VectorMath.exp(in[i])), Float.floatToRawIntBits(out[i]),
                        "exp(" + in[i] + ")");
            }
        }
    }

    @Test
    void reduce_sumsAllLanesPairwise() {
        float[] lanes = new float[VectorMath.L];
        float[] in = new float[VectorMath.L];
        float expected = 0;
        for (int i = 0; i < in.length; i++) {
            in[i] = i + 1;
            expected += i + 1;
        }
        FloatVector.fromArray(VectorMath.F, in, 0).intoArray(lanes, 0);
        assertEquals(expected, VectorMath.reduce(lanes));
    }

    @Test
    void reduce8_matchesScalarTreeBitForBit() {
        Random rnd = new Random(13);
        int n = 8 * VectorMath.L;
        float[] a = new float[n];
        float[] b = new float[n];
        // Many rounds, so the network runs interpreted, then compiled (C1, C2).
        for (int round = 0; round < 50_000; round++) {
            for (int i = 0; i < n; i++) {
                // Mixed magnitudes make the order of additions visible in the rounding.
                a[i] = (float) (rnd.nextGaussian() * Math.pow(10, rnd.nextInt(9) - 4));
            }
            if (round % 11 == 0) {
                a[rnd.nextInt(n)] = -0f;
            }
            if (round % 13 == 0) {
                a[rnd.nextInt(n)] = Float.POSITIVE_INFINITY;
            }
            System.arraycopy(a, 0, b, 0, n);
            VectorMath.reduce8(a, 0);
            for (int k = 0; k < 8; k++) {
                float expected = VectorMath.reduce(b, k * VectorMath.L);
                assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(a[k]),
                        "round " + round + " accumulator " + k);
            }
        }
    }

    @Test
    void reduceInRegisters_matchesScalarTreeBitForBit() {
        java.util.Random rnd = new java.util.Random(21);
        float[] lanes = new float[VectorMath.L];
        for (int round = 0; round < 50_000; round++) {
            for (int i = 0; i < lanes.length; i++) {
                lanes[i] = (float) (rnd.nextGaussian() * Math.pow(10, rnd.nextInt(9) - 4));
            }
            jdk.incubator.vector.FloatVector v = jdk.incubator.vector.FloatVector.fromArray(VectorMath.F, lanes, 0);
            float expected = VectorMath.reduce(lanes.clone());
            org.junit.jupiter.api.Assertions.assertEquals(Float.floatToRawIntBits(expected),
                    Float.floatToRawIntBits(VectorMath.reduceInRegisters(v)), "round " + round);
        }
    }
}
