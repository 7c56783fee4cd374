package io.expertmesh.core.tensor;

/**
 * The OCP 8-bit float E4M3 ("e4m3fn", torch.float8_e4m3fn), the weight format of the DeepSeek-V3 checkpoints.
 *
 * <p>1 sign bit, 4 exponent bits with bias 7, 3 mantissa bits. Unlike IEEE formats it has no infinities and only one
 * NaN pattern per sign (S.1111.111, i.e. 0x7F and 0xFF), which buys the exponent 15 for finite values: the largest
 * magnitude is 1.75 · 2^8 = 448. Subnormals (exponent 0) are m · 2^-9. Decoding goes through a 256-entry table so
 * load-time dequantization costs one array read per element.
 *
 * <p><b>Widening by shifts</b> ({@link #widenedBits}), what the native FP8 kernels do: the 7 magnitude bits
 * moved to bits 26..20 of a float32 (its exponent's low 4 bits and the top 3 mantissa bits) and the sign to bit
 * 31 give exactly {@code value · 2^-120}, the exponent biases being 7 and 127: a normal e4m3 {@code 2^(e-7)·1.m}
 * becomes the float {@code 2^(e-127)·1.m}, a subnormal {@code 2^-6·0.m} the float denormal {@code 2^-126·0.m}
 * (the JVM honours denormals: no flush to zero). The factor {@link #SCALE_FOLD} = 2^120 goes into the block scale,
 * so {@code widened · (scale · 2^120)} is the same real product as {@code value · scale} and rounds to the same
 * float. No table, no conversion instruction: two or three integer operations per vector. The NaN codes
 * (0x7F, 0xFF) widen to ±480 this way, a finite number; the loader refuses checkpoints that hold them (the
 * official ones saturate to ±448 and never do), so kernels need not test for them.
 */
public final class Fp8E4M3 {
    /** Largest finite magnitude. */
    public static final float MAX = 448f;

    /** The power of two folded into block scales to undo {@link #widenedBits}' bias shift: 2^(127-7). */
    public static final float SCALE_FOLD = 0x1p120f;

    private static final float[] TO_FLOAT = new float[256];

    static {
        for (int b = 0; b < 256; b++) {
            TO_FLOAT[b] = decode(b);
        }
    }

    private Fp8E4M3() {
    }

    /** The exact value of {@code bits}; NaN for 0x7F and 0xFF. */
    public static float toFloat(byte bits) {
        return TO_FLOAT[bits & 0xFF];
    }

    /**
     * The float32 bits of {@code value(bits) · 2^-120}, exact for every code but the NaNs (see the class comment):
     * sign to bit 31, the 7 magnitude bits to bits 26..20.
     */
    public static int widenedBits(byte bits) {
        int b = bits & 0xFF;
        return ((b & 0x80) << 24) | ((b & 0x7F) << 20);
    }

    /** Whether {@code bits} is one of the two NaN codes, 0x7F and 0xFF. */
    public static boolean isNaN(byte bits) {
        return (bits & 0x7F) == 0x7F;
    }

    /**
     * The E4M3 nearest to {@code f}, ties to even mantissa. Magnitudes beyond 448 (infinities included) saturate to
     * ±448, as quantizers do ("satfinite"); NaN maps to the NaN pattern with {@code f}'s sign.
     */
    public static byte fromFloat(float f) {
        int bits = Float.floatToRawIntBits(f);
        int sign = (bits >>> 24) & 0x80;
        int abs = bits & 0x7FFFFFFF;
        if (abs > 0x7F800000) {
            return (byte) (sign | 0x7F);
        }
        float a = Float.intBitsToFloat(abs);
        if (a >= MAX) {
            return (byte) (sign | 0x7E);
        }
        if (a < 0x1p-6f) {
            // Subnormal spacing is 2^-9; a count of 8 steps is 0x08, the smallest normal, so no special case.
            return (byte) (sign | (int) Math.rint(a * 512f));
        }
        // Keep 3 of 23 mantissa bits, rounding to nearest even; a carry moves into the exponent as it should.
        int rounded = (abs + 0x7FFFF + ((abs >>> 20) & 1)) >>> 20;
        int enc = rounded - ((127 - 7) << 3);
        return (byte) (sign | Math.min(enc, 0x7E));
    }

    private static float decode(int b) {
        int exp = (b >>> 3) & 0xF;
        int man = b & 0x7;
        float mag;
        if (exp == 0xF && man == 0x7) {
            mag = Float.NaN;
        } else if (exp == 0) {
            mag = man * 0x1p-9f;
        } else {
            mag = Math.scalb(1f + man / 8f, exp - 7);
        }
        return (b & 0x80) != 0 ? -mag : mag;
    }
}
