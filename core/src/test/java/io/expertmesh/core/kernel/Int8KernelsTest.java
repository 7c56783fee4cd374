package io.expertmesh.core.kernel;

import static io.expertmesh.core.kernel.TestData.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Int8Quantizer;
import io.expertmesh.core.tensor.Matrix;
import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The int8 matmul ({@link Int8Matmul}) against {@link ScalarKernels}: row counts and batch sizes that are not
 * multiples of the 2×4 tile or the row block, K of 1, 3, 5 and 33 blocks (K is always whole blocks: the quantizer
 * refuses anything else), blocks of 32, 64 and 128; and the batch-invariance the other dtypes guarantee.
 */
class Int8KernelsTest {
    private static final int[] BLOCKS = {32, 64, 128};
    private static final int[] BLOCKS_PER_ROW = {1, 3, 5, 33};
    private static final int[] ROWS = {1, 3, 5, 65};
    private static final int[] BATCHES = {1, 3, 4, 5, 9, 32};

    private static ComputePool pool;
    private static VectorKernels vec;
    private static ScalarKernels ref;

    @BeforeAll
    static void setUp() {
        pool = ComputePool.create(2);
        vec = new VectorKernels(pool);
        ref = new ScalarKernels();
    }

    @AfterAll
    static void tearDown() {
        pool.close();
        ref.pool().close();
    }

    static Matrix int8(Arena arena, int rows, int cols, int block, Random rnd) {
        return Int8Quantizer.quantize(TestData.matrix(arena, DType.BF16, rows, cols, rnd), block, arena);
    }

    @Test
    void matmul_oddRowsAndBatches_matchesScalar() {
        Random rnd = new Random(42);
        try (Arena arena = Arena.ofShared()) {
            for (int block : BLOCKS) {
                for (int n : BLOCKS_PER_ROW) {
                    for (int rows : ROWS) {
                        Matrix w = int8(arena, rows, n * block, block, rnd);
                        for (int batch : BATCHES) {
                            checkMatmul(w, batch, rnd);
                        }
                    }
                }
            }
        }
    }

    @Test
    void matmul_largeEnoughToRunOnThePool_matchesScalar() {
        Random rnd = new Random(7);
        try (Arena arena = Arena.ofShared()) {
            Matrix w = int8(arena, 301, 1024, 32, rnd);
            for (int batch : new int[] {1, 5, 32}) {
                checkMatmul(w, batch, rnd);
            }
        }
    }

    @Test
    void matmulScalarFallback_matchesScalar() {
        Random rnd = new Random(5);
        try (Arena arena = Arena.ofShared()) {
            Matrix w = int8(arena, 7, 96, 32, rnd);
            float[] x = TestData.floats(rnd, 3 * 96);
            float[] expected = new float[3 * 7];
            float[] actual = new float[3 * 7];
            ref.matmul(w, x, 0, expected, 0, 3);
            Int8Matmul.rowsScalar(w.data(), w.scales(), 7, 96, 32, 0, 7, x, 0, actual, 0, 3);
            for (int i = 0; i < actual.length; i++) {
                assertClose(expected[i], actual[i], 1e-4, "fallback " + i);
            }
        }
    }

    private static void checkMatmul(Matrix w, int batch, Random rnd) {
        int rows = w.rows();
        int cols = w.cols();
        int xOff = 3;
        int outOff = 5;
        float[] x = TestData.floats(rnd, xOff + batch * cols + 2);
        float[] expected = new float[outOff + batch * rows + 4];
        float[] actual = new float[expected.length];
        Arrays.fill(expected, -7f);
        Arrays.fill(actual, -7f);
        ref.matmul(w, x, xOff, expected, outOff, batch);
        vec.matmul(w, x, xOff, actual, outOff, batch);
        for (int b = 0; b < batch; b++) {
            for (int r = 0; r < rows; r++) {
                double magnitude = 0;
                for (int c = 0; c < cols; c++) {
                    magnitude += Math.abs(w.get(r, c) * x[xOff + b * cols + c]);
                }
                int i = outOff + b * rows + r;
                assertClose(expected[i], actual[i], 1e-5 * Math.sqrt(cols) * magnitude + 1e-30,
                        "I8/" + w.block() + " " + rows + "x" + cols + " batch " + batch + " [" + b + "][" + r + "]");
            }
        }
        for (int i = 0; i < outOff; i++) {
            assertEquals(-7f, actual[i], "written before outOff");
        }
        for (int i = outOff + batch * rows; i < actual.length; i++) {
            assertEquals(-7f, actual[i], "written past the output");
        }
    }

    @Test
    void matmul_anyBatchPositionThreadCountOrGroup_bitIdentical() {
        Random rnd = new Random(11);
        int[][] shapes = {{300, 1024}, {65, 96}, {17, 32}, {9, 64}};
        try (Arena arena = Arena.ofShared();
             ComputePool p1 = ComputePool.create(1);
             ComputePool p3 = ComputePool.create(3)) {
            VectorKernels[] kernels = {new VectorKernels(p1), vec, new VectorKernels(p3)};
            for (int[] shape : shapes) {
                int rows = shape[0];
                int cols = shape[1];
                Matrix w = int8(arena, rows, cols, 32, rnd);
                float[] row = TestData.floats(rnd, cols);
                float[] single = new float[rows];
                kernels[0].matmul(w, row, 0, single, 0, 1);
                for (int round = 0; round < 10; round++) {
                    for (VectorKernels k : kernels) {
                        for (int[] bp : new int[][] {{1, 0}, {7, 3}, {7, 6}, {32, 17}, {5, 4}}) {
                            float[] x = batchWith(row, bp[0], bp[1], rnd);
                            float[] out = new float[bp[0] * rows];
                            k.matmul(w, x, 0, out, 0, bp[0]);
                            assertRowEquals(single, out, bp[1], rows, "batch " + bp[0] + " pos " + bp[1]
                                    + " threads " + k.pool().threads());
                        }
                        float[] x = batchWith(row, 3, 1, rnd);
                        float[] part = new float[3 * rows];
                        k.matmulRows(w, 0, rows, x, 0, part, 0, 3);
                        assertRowEquals(single, part, 1, rows, "matmulRows batch 3 pos 1");
                        float[] grouped = new float[5 * rows];
                        float[] other = new float[5 * rows];
                        float[] xg = batchWith(row, 5, 2, rnd);
                        k.matmuls(new MatmulGroup().add(w, xg, 0, grouped, 0, 5).add(w, xg, 0, other, 0, 5));
                        assertRowEquals(single, grouped, 2, rows, "group batch 5 pos 2");
                    }
                }
            }
        }
    }

    @Test
    void quantizedMatmul_closeToTheUnquantizedProduct() {
        Random rnd = new Random(9);
        try (Arena arena = Arena.ofShared()) {
            Matrix bf16 = TestData.matrix(arena, DType.BF16, 64, 1024, rnd);
            Matrix q = Int8Quantizer.quantize(bf16, 32, arena);
            float[] x = TestData.floats(rnd, 1024);
            float[] a = new float[64];
            float[] b = new float[64];
            vec.matmul(bf16, x, 0, a, 0, 1);
            vec.matmul(q, x, 0, b, 0, 1);
            double num = 0;
            double den = 0;
            for (int r = 0; r < 64; r++) {
                num += (a[r] - b[r]) * (a[r] - b[r]);
                den += a[r] * a[r];
            }
            // Gaussian weights: the relative RMS error of int8 with 32-blocks is about 0.5-1%.
            assertTrue(Math.sqrt(num / den) < 0.02, "relative error " + Math.sqrt(num / den));
        }
    }

    private static float[] batchWith(float[] row, int batch, int pos, Random rnd) {
        float[] x = TestData.floats(rnd, batch * row.length);
        System.arraycopy(row, 0, x, pos * row.length, row.length);
        return x;
    }

    private static void assertRowEquals(float[] expected, float[] out, int pos, int rows, String what) {
        for (int r = 0; r < rows; r++) {
            assertEquals(Float.floatToRawIntBits(expected[r]), Float.floatToRawIntBits(out[pos * rows + r]),
                    what + " row " + r + " of " + rows);
        }
    }
}
