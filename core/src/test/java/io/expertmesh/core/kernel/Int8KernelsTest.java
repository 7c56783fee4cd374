package io.expertmesh.core.kernel;

import static io.expertmesh.core.kernel.TestData.assertClose;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Int8Quantizer;
import io.expertmesh.core.tensor.Matrix;
import java.lang.foreign.Arena;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The int8 matmul ({@link Int8Matmul}) against {@link ScalarKernels}: row counts and batch sizes that are not
 * multiples of the 2×4 tile or the row block, K of 1, 3, 5 and 33 blocks (K is always whole blocks: the quantizer
 * refuses anything else), blocks of 32, 64 and 128; and the batch-invariance the other dtypes guarantee.
 */
class Int8KernelsTest extends VectorAgainstScalarTest {
    private static final int[] BLOCKS = {32, 64, 128};
    private static final int[] BLOCKS_PER_ROW = {1, 3, 5, 33};
    private static final int[] ROWS = {1, 3, 5, 65};
    private static final int[] BATCHES = {1, 3, 4, 5, 9, 32};

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
                            checkBoth(w, batch, rnd);
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
                checkBoth(w, batch, rnd);
            }
        }
    }

    /** Both kernels ({@link NativeMatmul} where available, and the Java {@link Int8Matmul}) against the scalar one. */
    private void checkBoth(Matrix w, int batch, Random rnd) {
        checkMatmul(vec, w, batch, rnd, 1e-5, "I8/" + w.block() + (hasNativeKernel(w) ? " native" : ""));
        checkMatmul(vectorApi, w, batch, rnd, 1e-5, "I8/" + w.block() + " Vector API");
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

    @Test
    void matmul_anyBatchPositionThreadCountOrGroup_bitIdentical() {
        assertBatchInvariant(new int[][] {{300, 1024}, {65, 96}, {17, 32}, {9, 64}},
                (arena, rows, cols, rnd) -> int8(arena, rows, cols, 32, rnd), 10,
                new int[][] {{1, 0}, {7, 3}, {7, 6}, {32, 17}, {5, 4}, {2, 1}, {3, 0}, {6, 5}, {11, 9}}, true,
                new Random(11));
    }

    @Test
    void quantizedMatmul_closeToTheUnquantizedProduct() {
        Random rnd = new Random(9);
        try (Arena arena = Arena.ofShared()) {
            Matrix bf16 = TestData.matrix(arena, DType.BF16, 64, 1024, rnd);
            Matrix q = Int8Quantizer.quantize(bf16, 32, arena);
            double rel = relativeError(bf16, q, rnd);
            // Gaussian weights: the relative RMS error of int8 with 32-blocks is about 0.5-1%.
            assertTrue(rel < 0.02, "relative error " + rel);
        }
    }
}
