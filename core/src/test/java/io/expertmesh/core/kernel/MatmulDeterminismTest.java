package io.expertmesh.core.kernel;

import static io.expertmesh.core.kernel.TestData.assertRowEquals;
import static io.expertmesh.core.kernel.TestData.batchWith;

import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Matrix;
import java.lang.foreign.Arena;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A request's output must not depend on what else is in its batch: the same weight row and input row give the
 * same bits at batch 1, at any position of a larger batch, with any pool size, before and after JIT warm-up.
 */
class MatmulDeterminismTest {
    private static final int[][] SHAPES = {{300, 1000}, {65, 257}, {17, 33}, {9, 1}};

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void matmul_anyBatchPositionOrThreadCount_bitIdentical(DType dtype) {
        Random rnd = new Random(11);
        try (Arena arena = Arena.ofShared();
             ComputePool p1 = ComputePool.create(1);
             ComputePool p2 = ComputePool.create(2);
             ComputePool p3 = ComputePool.create(3)) {
            VectorKernels[] kernels = {new VectorKernels(p1), new VectorKernels(p2), new VectorKernels(p3)};
            // BF16 runs natively where the CPU can (NativeMatmul); the Vector API path keeps its own promise.
            VectorKernels[] vectorApi = {new VectorKernels(p1, false), new VectorKernels(p2, false),
                new VectorKernels(p3, false)};
            for (int[] shape : SHAPES) {
                int rows = shape[0];
                int cols = shape[1];
                Matrix w = TestData.matrix(arena, dtype, rows, cols, rnd);
                for (VectorKernels[] path : new VectorKernels[][] {kernels, vectorApi}) {
                    checkShape(path, w, rnd);
                }
            }
        }
    }

    private static void checkShape(VectorKernels[] kernels, Matrix w, Random rnd) {
        int rows = w.rows();
        float[] row = TestData.floats(rnd, w.cols());
        float[] single = new float[rows];
        kernels[0].matmul(w, row, 0, single, 0, 1);
        for (int round = 0; round < 30; round++) {
            for (VectorKernels k : kernels) {
                assertRowEquals(single, run(k, w, row, 1, 0, rnd), 0, rows, "batch 1 threads " + k.pool().threads());
                assertRowEquals(single, run(k, w, row, 7, 3, rnd), 3, rows, "batch 7 pos 3");
                assertRowEquals(single, run(k, w, row, 7, 6, rnd), 6, rows, "batch 7 pos 6");
                assertRowEquals(single, run(k, w, row, 32, 17, rnd), 17, rows, "batch 32 pos 17");
                assertRowEquals(single, run(k, w, row, 5, 4, rnd), 4, rows, "batch 5 pos 4 (untiled)");
                // Two or three batch rows left beside the tiles share each weight load (row1x2, row1x3).
                assertRowEquals(single, run(k, w, row, 2, 1, rnd), 1, rows, "batch 2 pos 1");
                assertRowEquals(single, run(k, w, row, 3, 0, rnd), 0, rows, "batch 3 pos 0");
                assertRowEquals(single, run(k, w, row, 6, 5, rnd), 5, rows, "batch 6 pos 5");
                assertRowEquals(single, run(k, w, row, 11, 9, rnd), 9, rows, "batch 11 pos 9");
                float[] part = new float[3 * rows];
                float[] x = batchWith(row, 3, 1, rnd);
                k.matmulRows(w, 0, rows, x, 0, part, 0, 3);
                assertRowEquals(single, part, 1, rows, "matmulRows batch 3 pos 1");
            }
        }
    }

    private static float[] run(VectorKernels k, Matrix w, float[] row, int batch, int pos, Random rnd) {
        float[] x = batchWith(row, batch, pos, rnd);
        float[] out = new float[batch * w.rows()];
        k.matmul(w, x, 0, out, 0, batch);
        return out;
    }
}
