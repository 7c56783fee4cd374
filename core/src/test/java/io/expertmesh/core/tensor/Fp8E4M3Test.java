package io.expertmesh.core.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class Fp8E4M3Test {

    @Test
    void toFloat_knownBytes_exactOcpValues() {
        assertEquals(448f, Fp8E4M3.toFloat((byte) 0x7E));
        assertEquals(-448f, Fp8E4M3.toFloat((byte) 0xFE));
        assertEquals(0x1p-6f, Fp8E4M3.toFloat((byte) 0x08));
        assertEquals(0x1p-9f, Fp8E4M3.toFloat((byte) 0x01));
        assertEquals(7 * 0x1p-9f, Fp8E4M3.toFloat((byte) 0x07));
        assertEquals(1f, Fp8E4M3.toFloat((byte) 0x38));
        assertEquals(-1f, Fp8E4M3.toFloat((byte) 0xB8));
        assertEquals(1.125f, Fp8E4M3.toFloat((byte) 0x39));
        assertEquals(240f, Fp8E4M3.toFloat((byte) 0x77)); // 1.875 * 2^7
        assertEquals(0x1.cp7f, Fp8E4M3.toFloat((byte) 0x76)); // 1.75 * 2^7 = 224
        assertEquals(Float.floatToRawIntBits(0f), Float.floatToRawIntBits(Fp8E4M3.toFloat((byte) 0x00)));
        assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(Fp8E4M3.toFloat((byte) 0x80)));
        assertTrue(Float.isNaN(Fp8E4M3.toFloat((byte) 0x7F)));
        assertTrue(Float.isNaN(Fp8E4M3.toFloat((byte) 0xFF)));
    }

    @Test
    void toFloat_noInfinities_only0x7fAnd0xffAreNaN() {
        for (int b = 0; b < 256; b++) {
            float f = Fp8E4M3.toFloat((byte) b);
            assertTrue(!Float.isInfinite(f), "byte " + b);
            assertEquals((b & 0x7F) == 0x7F, Float.isNaN(f), "byte " + b);
        }
    }

    @Test
    void fromFloat_everyFiniteByte_roundTrips() {
        for (int b = 0; b < 256; b++) {
            if ((b & 0x7F) == 0x7F) {
                continue;
            }
            assertEquals((byte) b, Fp8E4M3.fromFloat(Fp8E4M3.toFloat((byte) b)), "byte 0x" + Integer.toHexString(b));
        }
    }

    @Test
    void fromFloat_beyondMax_saturatesTo448() {
        assertEquals((byte) 0x7E, Fp8E4M3.fromFloat(449f));
        assertEquals((byte) 0x7E, Fp8E4M3.fromFloat(500f));
        assertEquals((byte) 0x7E, Fp8E4M3.fromFloat(1e30f));
        assertEquals((byte) 0x7E, Fp8E4M3.fromFloat(Float.POSITIVE_INFINITY));
        assertEquals((byte) 0xFE, Fp8E4M3.fromFloat(-1e30f));
        assertEquals((byte) 0xFE, Fp8E4M3.fromFloat(Float.NEGATIVE_INFINITY));
        assertTrue(Float.isNaN(Fp8E4M3.toFloat(Fp8E4M3.fromFloat(Float.NaN))));
    }

    @Test
    void fromFloat_halfway_roundsToEvenMantissa() {
        assertEquals((byte) 0x38, Fp8E4M3.fromFloat(1.0625f)); // between 1.0 (0x38) and 1.125 (0x39)
        assertEquals((byte) 0x3A, Fp8E4M3.fromFloat(1.1875f)); // between 1.125 (0x39) and 1.25 (0x3A)
        assertEquals((byte) 0x00, Fp8E4M3.fromFloat(0.5f * 0x1p-9f)); // subnormal ties
        assertEquals((byte) 0x02, Fp8E4M3.fromFloat(1.5f * 0x1p-9f));
        assertEquals((byte) 0x08, Fp8E4M3.fromFloat(7.5f * 0x1p-9f)); // rounds up into the first normal
        assertEquals((byte) 0x80, Fp8E4M3.fromFloat(-0x1p-12f)); // underflow keeps the sign
    }

    @Test
    void fromFloat_randomFloats_matchesBruteForceNearestEven() {
        SplittableRandom rnd = new SplittableRandom(7);
        for (int i = 0; i < 200_000; i++) {
            float f = (float) (rnd.nextDouble(-1, 1) * Math.scalb(1.0, rnd.nextInt(-14, 10)));
            assertEquals(bruteForce(f), Fp8E4M3.fromFloat(f), "value " + f);
        }
    }

    /** The finite E4M3 code nearest to f, ties to the even code, saturating. */
    private static byte bruteForce(float f) {
        float a = Math.abs(f);
        int best = 0;
        double bestErr = Double.MAX_VALUE;
        for (int b = 0; b <= 0x7E; b++) {
            double err = Math.abs((double) Fp8E4M3.toFloat((byte) b) - a);
            if (err < bestErr || (err == bestErr && (b & 1) == 0)) {
                best = b;
                bestErr = err;
            }
        }
        return (byte) (best | (f < 0 || (f == 0 && 1 / f < 0) ? 0x80 : 0));
    }

    /**
     * The kernels' shift widening, for all 256 codes: times 2^120 it is exactly the decoded value (denormal floats
     * for the subnormal codes included), and times a folded block scale exactly {@code value · scale}; the two NaN
     * codes come out as ±480, which is why the loader refuses them.
     */
    @Test
    void widenedBits_all256Codes_exactAfterTheFoldedScale() {
        float[] scales = {1f, 0x1p-20f, 3.0517578e-5f, 0.0123456f, 1.7e-3f, 0x1p-130f, 200f};
        for (int b = 0; b < 256; b++) {
            byte code = (byte) b;
            float widened = Float.intBitsToFloat(Fp8E4M3.widenedBits(code));
            if (Fp8E4M3.isNaN(code)) {
                assertEquals((b & 0x80) != 0 ? -480f : 480f, widened * Fp8E4M3.SCALE_FOLD, "NaN code " + b);
                continue;
            }
            float value = Fp8E4M3.toFloat(code);
            assertEquals(Float.floatToRawIntBits(value), Float.floatToRawIntBits(widened * Fp8E4M3.SCALE_FOLD),
                    "code 0x" + Integer.toHexString(b));
            for (float s : scales) {
                assertEquals(Float.floatToRawIntBits(value * s),
                        Float.floatToRawIntBits(widened * (s * Fp8E4M3.SCALE_FOLD)),
                        "code 0x" + Integer.toHexString(b) + " scale " + s);
            }
        }
        assertEquals(0x80, (Fp8E4M3.widenedBits((byte) 0x80) >>> 24), "-0 keeps its sign");
        assertTrue(Float.intBitsToFloat(Fp8E4M3.widenedBits((byte) 0x01)) < Float.MIN_NORMAL, "subnormal → denormal");
    }

    @Test
    void isNaN_onlyTheTwoNaNCodes() {
        for (int b = 0; b < 256; b++) {
            assertEquals(b == 0x7F || b == 0xFF, Fp8E4M3.isNaN((byte) b), "byte " + b);
        }
    }
}
