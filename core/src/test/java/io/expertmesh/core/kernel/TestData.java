package io.expertmesh.core.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.expertmesh.core.tensor.Bf16;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Matrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

/** Random weights and activations for kernel tests, and the comparisons those tests make. */
final class TestData {
    private TestData() {
    }

    /**
     * A {@code rows × cols} matrix of N(0, 0.1²) values (rounded to bf16 for BF16) in {@code arena}, which must be
     * shared (or global/auto): the pool's workers read it, and a confined arena would refuse them.
     */
    static Matrix matrix(Arena arena, DType dtype, int rows, int cols, Random rnd) {
        long n = (long) rows * cols;
        MemorySegment seg = arena.allocate(n * dtype.bytes(), 64);
        for (long i = 0; i < n; i++) {
            float v = (float) (rnd.nextGaussian() * 0.1);
            if (dtype == DType.BF16) {
                seg.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, Bf16.fromFloat(v));
            } else {
                seg.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, v);
            }
        }
        return new Matrix("w" + rows + "x" + cols, dtype, rows, cols, seg);
    }

    static float[] floats(Random rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) rnd.nextGaussian();
        }
        return a;
    }

    /** Asserts {@code |actual - expected| <= tol} with a readable message. */
    static void assertClose(float expected, float actual, double tol, String what) {
        if (!(Math.abs(actual - expected) <= tol)) {
            throw new AssertionError(what + ": expected " + expected + " got " + actual + " (tol " + tol + ")");
        }
    }

    /** A batch of {@code batch} random input rows with {@code row} at position {@code pos}. */
    static float[] batchWith(float[] row, int batch, int pos, Random rnd) {
        float[] x = floats(rnd, batch * row.length);
        System.arraycopy(row, 0, x, pos * row.length, row.length);
        return x;
    }

    /** Output row {@code pos} of {@code out} has the same bits as {@code expected}. */
    static void assertRowEquals(float[] expected, float[] out, int pos, int rows, String what) {
        for (int r = 0; r < rows; r++) {
            assertEquals(Float.floatToRawIntBits(expected[r]), Float.floatToRawIntBits(out[pos * rows + r]),
                    what + " row " + r + " of " + rows);
        }
    }

    /**
     * {@code Σ_c |w[r][c]·x[b][c]|} for every output {@code (b, r)} of {@code w × x} (index
     * {@code b·rows + r}): the scale of the float summation-order error two correct kernels may differ by.
     */
    static double[] magnitudes(Matrix w, float[] x, int xOff, int batch) {
        int rows = w.rows();
        int cols = w.cols();
        double[] m = new double[batch * rows];
        for (int b = 0; b < batch; b++) {
            for (int r = 0; r < rows; r++) {
                double magnitude = 0;
                for (int c = 0; c < cols; c++) {
                    magnitude += Math.abs(w.get(r, c) * x[xOff + b * cols + c]);
                }
                m[b * rows + r] = magnitude;
            }
        }
        return m;
    }

    /**
     * Every output {@code (b, r)} of {@code w × x} at {@code outOff} within {@code relTol·√cols·Σ|w·x|} of the
     * reference: summation-order error, relative to the {@link #magnitudes} of the product.
     */
    static void assertNear(Matrix w, double[] magnitudes, float[] expected, float[] actual, int outOff,
                           double relTol, String what) {
        int rows = w.rows();
        int cols = w.cols();
        for (int i = 0; i < magnitudes.length; i++) {
            int o = outOff + i;
            assertClose(expected[o], actual[o], relTol * Math.sqrt(cols) * magnitudes[i] + 1e-30,
                    what + " " + rows + "x" + cols + " [" + i / rows + "][" + i % rows + "]");
        }
    }

    /** {@link #assertNear} for a product of {@code w} by {@code batch} rows of {@code x} at {@code xOff}. */
    static void assertNear(Matrix w, float[] x, int xOff, float[] expected, float[] actual, int outOff, int batch,
                           double relTol, String what) {
        assertNear(w, magnitudes(w, x, xOff, batch), expected, actual, outOff, relTol, what);
    }

    /** The padding value around a kernel's output: a write outside {@code [outOff, outOff + n)} changes it. */
    static final float PAD = -7f;

    /** Nothing of {@code actual} outside {@code [outOff, outOff + n)} was written (it still holds {@link #PAD}). */
    static void assertPaddingUntouched(float[] actual, int outOff, int n) {
        for (int i = 0; i < outOff; i++) {
            assertEquals(PAD, actual[i], "written before outOff");
        }
        for (int i = outOff + n; i < actual.length; i++) {
            assertEquals(PAD, actual[i], "written past the output");
        }
    }

    /** {@code ‖a - b‖ / ‖a‖}. */
    static double relativeError(float[] a, float[] b) {
        double num = 0;
        double den = 0;
        for (int r = 0; r < a.length; r++) {
            num += (a[r] - b[r]) * (a[r] - b[r]);
            den += a[r] * a[r];
        }
        return Math.sqrt(num / den);
    }
}
