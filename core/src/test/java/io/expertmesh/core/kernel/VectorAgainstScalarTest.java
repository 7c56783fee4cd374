package io.expertmesh.core.kernel;

import static io.expertmesh.core.kernel.TestData.PAD;
import static io.expertmesh.core.kernel.TestData.assertRowEquals;
import static io.expertmesh.core.kernel.TestData.batchWith;

import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Matrix;
import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;

/**
 * What the kernel tests of one dtype share: the {@link VectorKernels} on a 2-thread pool, the {@link ScalarKernels}
 * reference, and the checks they run against each other. Per test class (its own pool, closed after its tests).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class VectorAgainstScalarTest {
    ComputePool pool;
    /** The kernels as a process gets them (BF16 in native code where the CPU has AVX512-BF16). */
    VectorKernels vec;
    /** The same with BF16 products kept in the Vector API ({@link Bf16Matmul}); equal to {@code vec} otherwise. */
    VectorKernels vectorApi;
    ScalarKernels ref;

    /** Makes a random weight matrix of a test's dtype. */
    @FunctionalInterface
    interface Weights {
        Matrix make(Arena arena, int rows, int cols, Random rnd);
    }

    @BeforeAll
    void openKernels() {
        pool = ComputePool.create(2);
        vec = new VectorKernels(pool);
        vectorApi = new VectorKernels(pool, false);
        ref = new ScalarKernels();
    }

    @AfterAll
    void closeKernels() {
        pool.close();
        ref.pool().close();
    }

    /**
     * {@code vec.matmul} against {@code ref.matmul} at {@code batch}, within {@code relTol} (see
     * {@link TestData#assertNear}), with the input and output at offsets in padded arrays: nothing outside the
     * output may be written.
     */
    void checkMatmul(Matrix w, int batch, Random rnd, double relTol, String what) {
        checkMatmul(vec, w, batch, rnd, relTol, what);
    }

    /** {@link #checkMatmul(Matrix, int, Random, double, String)} on the given kernels. */
    void checkMatmul(VectorKernels kernels, Matrix w, int batch, Random rnd, double relTol, String what) {
        int rows = w.rows();
        int cols = w.cols();
        int xOff = 3;
        int outOff = 5;
        float[] x = TestData.floats(rnd, xOff + batch * cols + 2);
        float[] expected = new float[outOff + batch * rows + 4];
        float[] actual = new float[expected.length];
        Arrays.fill(expected, PAD);
        Arrays.fill(actual, PAD);
        ref.matmul(w, x, xOff, expected, outOff, batch);
        kernels.matmul(w, x, xOff, actual, outOff, batch);
        TestData.assertNear(w, x, xOff, expected, actual, outOff, batch, relTol, what + " batch " + batch);
        TestData.assertPaddingUntouched(actual, outOff, batch * rows);
    }

    /** {@code ‖exact·x - approx·x‖ / ‖exact·x‖} for one random input row, on the vector kernels. */
    double relativeError(Matrix exact, Matrix approx, Random rnd) {
        float[] x = TestData.floats(rnd, exact.cols());
        float[] a = new float[exact.rows()];
        float[] b = new float[approx.rows()];
        vec.matmul(exact, x, 0, a, 0, 1);
        vec.matmul(approx, x, 0, b, 0, 1);
        return TestData.relativeError(a, b);
    }

    /**
     * The batch-invariance every kernel guarantees: for each shape, one input row gives the same output bits as at
     * batch 1 on one thread, at each {@code {batch, position}} of {@code batchPositions}, on 1, 2 and 3 threads, in
     * a group of two products, and (when {@code viaMatmulRows}) through {@code matmulRows}; {@code rounds} times,
     * so before and after JIT warm-up.
     */
    void assertBatchInvariant(int[][] shapes, Weights weights, int rounds, int[][] batchPositions,
                              boolean viaMatmulRows, Random rnd) {
        try (Arena arena = Arena.ofShared();
             ComputePool p1 = ComputePool.create(1);
             ComputePool p3 = ComputePool.create(3)) {
            VectorKernels[] kernels = {new VectorKernels(p1), vec, new VectorKernels(p3)};
            VectorKernels[] javaKernels = {new VectorKernels(p1, false), vectorApi, new VectorKernels(p3, false)};
            for (int[] shape : shapes) {
                Matrix w = weights.make(arena, shape[0], shape[1], rnd);
                assertBatchInvariant(kernels, w, rounds, batchPositions, viaMatmulRows, rnd);
                if (hasNativeKernel(w)) {
                    assertBatchInvariant(javaKernels, w, rounds, batchPositions, viaMatmulRows, rnd);
                }
            }
        }
    }

    /** Whether {@code w}'s products run in {@link NativeMatmul} in {@code vec} (in Java in {@code vectorApi}). */
    static boolean hasNativeKernel(Matrix w) {
        return NativeMatmul.available() && (w.dtype() == DType.BF16 || w.dtype() == DType.F8_E4M3
                || (w.dtype() == DType.I8 && NativeMatmul.int8(w.cols(), w.block()))
                || (w.dtype() == DType.I4 && NativeMatmul.int4(w.rows(), w.cols(), w.block())));
    }

    private static void assertBatchInvariant(VectorKernels[] kernels, Matrix w, int rounds, int[][] batchPositions,
                                             boolean viaMatmulRows, Random rnd) {
        int rows = w.rows();
        int cols = w.cols();
        float[] row = TestData.floats(rnd, cols);
        float[] single = new float[rows];
        kernels[0].matmul(w, row, 0, single, 0, 1);
        for (int round = 0; round < rounds; round++) {
            for (VectorKernels k : kernels) {
                for (int[] bp : batchPositions) {
                    float[] x = batchWith(row, bp[0], bp[1], rnd);
                    float[] out = new float[bp[0] * rows];
                    k.matmul(w, x, 0, out, 0, bp[0]);
                    assertRowEquals(single, out, bp[1], rows, rows + "x" + cols + " batch " + bp[0]
                            + " pos " + bp[1] + " threads " + k.pool().threads());
                }
                if (viaMatmulRows) {
                    float[] x = batchWith(row, 3, 1, rnd);
                    float[] part = new float[3 * rows];
                    k.matmulRows(w, 0, rows, x, 0, part, 0, 3);
                    assertRowEquals(single, part, 1, rows, "matmulRows batch 3 pos 1");
                }
                float[] grouped = new float[5 * rows];
                float[] other = new float[5 * rows];
                float[] xg = batchWith(row, 5, 2, rnd);
                k.matmuls(new MatmulGroup().add(w, xg, 0, grouped, 0, 5).add(w, xg, 0, other, 0, 5));
                assertRowEquals(single, grouped, 2, rows, "group batch 5 pos 2");
            }
        }
    }
}
