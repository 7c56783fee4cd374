package io.expertmesh.core.kernel;

import io.expertmesh.core.tensor.Bf16;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Matrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

/** Random weights and activations for kernel tests. */
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
}
