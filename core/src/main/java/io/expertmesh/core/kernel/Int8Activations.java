package io.expertmesh.core.kernel;

import io.expertmesh.core.tensor.Matrix;

/**
 * Activations quantized to int8 per 32 columns, as the native int4 kernel reads them (llama.cpp's Q8_0 rule for
 * activations): per block of 32 consecutive columns, {@code scale = max|x| / 127} and
 * {@code q = round-to-nearest-even(x · (127 / max|x|))}, both in float, so {@code |q| <= 127}; an all-zero block has
 * scale 0. The native kernel then sums {@code q_w · q_x} exactly per block and scales by the weight's and the
 * activation's block scales; {@link #dot} is that product in double, the reference its tests and
 * {@link ScalarKernels#forNativeKernels} use.
 */
public final class Int8Activations {
    /** Columns per activation scale. */
    public static final int BLOCK = 32;

    private Int8Activations() {
    }

    /**
     * Quantizes {@code x[off, off + cols)} ({@code cols} a multiple of {@link #BLOCK}) into {@code q[0, cols)} and
     * {@code scales[0, cols / 32)}.
     */
    public static void quantize(float[] x, int off, int cols, byte[] q, float[] scales) {
        if (cols % BLOCK != 0) {
            throw new IllegalArgumentException("columns must be a multiple of " + BLOCK + ", got " + cols);
        }
        for (int b = 0; b < cols / BLOCK; b++) {
            float amax = 0f;
            for (int c = b * BLOCK; c < (b + 1) * BLOCK; c++) {
                amax = Math.max(amax, Math.abs(x[off + c]));
            }
            float inv = amax > 0f ? 127f / amax : 0f;
            scales[b] = amax / 127f;
            for (int c = b * BLOCK; c < (b + 1) * BLOCK; c++) {
                q[c] = (byte) Math.max(-127, Math.min(127, (int) Math.rint(x[off + c] * inv)));
            }
        }
    }

    /**
     * Row {@code r} of {@code w} (its weights as {@link Matrix#get} reads them) against
     * activations quantized by {@link #quantize}, summed in double: {@code Σ w[r][c] · q[c] · scales[c / 32]}.
     */
    public static double dot(Matrix w, int r, byte[] q, float[] scales) {
        double acc = 0;
        for (int c = 0; c < w.cols(); c++) {
            acc += (double) w.get(r, c) * q[c] * scales[c / BLOCK];
        }
        return acc;
    }
}
