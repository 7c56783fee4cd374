package io.expertmesh.core.kernel;

import static io.expertmesh.core.kernel.TestData.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Int4Quantizer;
import io.expertmesh.core.tensor.Matrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The int4 matmul ({@link Int4Matmul}) against {@link ScalarKernels} and against the vector F32 product on the
 * dequantized matrix: row counts and batch sizes that are not multiples of the 2×4 tile, the row block or the
 * vector width; K of 1, 3, 4, 7 and 33 blocks of 32 (whole 128-column groups, sub-blocks, both); blocks of 32, 64
 * and 128; the grouped products; and the batch-invariance the other dtypes guarantee.
 */
class Int4KernelsTest extends VectorAgainstScalarTest {
    private static final int[] BLOCKS = {32, 64, 128};
    private static final int[] COLS = {32, 96, 128, 224, 1056};
    private static final int[] ROWS = {1, 3, 5, 13, 65};
    private static final int[] BATCHES = {1, 3, 4, 5, 17, 32};

    static Matrix int4(Arena arena, int rows, int cols, int block, Random rnd) {
        return Int4Quantizer.quantize(TestData.matrix(arena, DType.BF16, rows, cols, rnd), block, arena);
    }

    @Test
    void matmul_oddRowsColsAndBatches_matchesScalarAndTheDequantizedProduct() {
        Random rnd = new Random(42);
        try (Arena arena = Arena.ofShared()) {
            for (int block : BLOCKS) {
                for (int cols : COLS) {
                    if (cols % block != 0) {
                        continue;
                    }
                    for (int rows : ROWS) {
                        Matrix w = int4(arena, rows, cols, block, rnd);
                        Matrix f32 = Int4Quantizer.dequantize(w, arena);
                        for (int batch : BATCHES) {
                            checkMatmul(w, f32, batch, rnd);
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
            Matrix w = int4(arena, 301, 1024, 32, rnd);
            Matrix f32 = Int4Quantizer.dequantize(w, arena);
            for (int batch : new int[] {1, 5, 32}) {
                checkMatmul(w, f32, batch, rnd);
            }
        }
    }

    @Test
    void matmul_subnormalF16Scales_sameWeightsAsTheScalarConversion() {
        // Weights around 1e-5 make block scales below F16's smallest normal (6.1e-5): the kernels widen scales
        // with integer operations (Int4Matmul.scales), which must give Float.float16ToFloat's value for those too.
        Random rnd = new Random(23);
        try (Arena arena = Arena.ofShared()) {
            int rows = 13;
            int cols = 1056;  // 33 scales a row: whole vectors of them and a scalar tail
            MemorySegment data = arena.allocate((long) rows * cols * Float.BYTES, 64);
            for (int i = 0; i < rows * cols; i++) {
                data.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, (float) (rnd.nextGaussian() * 1e-5));
            }
            Matrix w = Int4Quantizer.quantize(new Matrix("tiny", DType.F32, rows, cols, data), 32, arena);
            boolean subnormal = false;
            for (int r = 0; r < rows; r++) {
                for (int j = 0; j < cols / 32; j++) {
                    float sc = Math.abs(w.scale(r, j));
                    subnormal |= sc > 0 && sc < 0x1p-14f;
                }
            }
            assertTrue(subnormal, "the test needs subnormal F16 scales");
            Matrix f32 = Int4Quantizer.dequantize(w, arena);
            for (int batch : new int[] {1, 5}) {
                checkMatmul(w, f32, batch, rnd);
            }
        }
    }

    @Test
    void matmulScalarFallback_matchesScalar() {
        Random rnd = new Random(5);
        try (Arena arena = Arena.ofShared()) {
            Matrix w = int4(arena, 7, 224, 32, rnd);
            float[] x = TestData.floats(rnd, 3 * 224);
            float[] expected = new float[3 * 7];
            float[] actual = new float[3 * 7];
            ref.matmul(w, x, 0, expected, 0, 3);
            Int4Matmul.rowsScalar(w.data(), w.scales(), 7, 224, 32, 0, 7, x, 0, actual, 0, 3);
            for (int i = 0; i < actual.length; i++) {
                assertClose(expected[i], actual[i], 1e-4, "fallback " + i);
            }
        }
    }

    /**
     * Against the scalar reference (loose: another summation order) and against the vector F32 kernel on the
     * dequantized matrix (tight: the same weights {@code q·scale}, exact in float, only the order of the sums
     * differs, so a wrong nibble, scale or column shows as an error of the order of a weight times an activation).
     */
    private void checkMatmul(Matrix w, Matrix f32, int batch, Random rnd) {
        int rows = w.rows();
        int cols = w.cols();
        int xOff = 3;
        int outOff = 5;
        float[] x = TestData.floats(rnd, xOff + batch * cols + 2);
        float[] expected = new float[outOff + batch * rows + 4];
        float[] dequantized = new float[expected.length];
        float[] actual = new float[expected.length];
        Arrays.fill(expected, TestData.PAD);
        Arrays.fill(actual, TestData.PAD);
        ref.matmul(w, x, xOff, expected, outOff, batch);
        vectorApi.matmul(f32, x, xOff, dequantized, outOff, batch);
        double[] magnitudes = TestData.magnitudes(w, x, xOff, batch);
        for (VectorKernels k : new VectorKernels[] {vec, vectorApi}) {
            Arrays.fill(actual, TestData.PAD);
            k.matmul(w, x, xOff, actual, outOff, batch);
            boolean nativeCode = k == vec && hasNativeKernel(w);
            String what = "I4/" + w.block() + " batch " + batch + (nativeCode ? " native" : "");
            TestData.assertNear(w, magnitudes, expected, actual, outOff, 1e-5, what);
            // The native kernel's activations carry 16 bits (NativeMatmul), the Java one's 24.
            TestData.assertNear(w, magnitudes, dequantized, actual, outOff, nativeCode ? 1e-5 : 1e-6,
                    what + " vs dequantized");
            TestData.assertPaddingUntouched(actual, outOff, batch * rows);
        }
    }

    @Test
    void matmulRows_onlyItsRows_sameBitsAsTheWholeProduct() {
        Random rnd = new Random(13);
        try (Arena arena = Arena.ofShared()) {
            Matrix w = int4(arena, 13, 224, 32, rnd);
            float[] x = TestData.floats(rnd, 17 * 224);
            float[] whole = new float[17 * 13];
            float[] part = new float[17 * 13];
            Arrays.fill(part, -7f);
            vec.matmul(w, x, 0, whole, 0, 17);
            vec.matmulRows(w, 3, 10, x, 0, part, 0, 17);
            for (int b = 0; b < 17; b++) {
                for (int r = 0; r < 13; r++) {
                    float expected = r >= 3 && r < 10 ? whole[b * 13 + r] : -7f;
                    assertEquals(expected, part[b * 13 + r], "batch row " + b + " row " + r);
                }
            }
        }
    }

    @Test
    void matmuls_groupOfInt4AndOtherProducts_sameBitsAsOneByOne() {
        // As the grouped expert products run: gate and up of several experts on shared activations, then down.
        Random rnd = new Random(17);
        try (Arena arena = Arena.ofShared()) {
            Matrix[] ws = {int4(arena, 96, 128, 32, rnd), int4(arena, 96, 128, 32, rnd),
                    int4(arena, 128, 96, 32, rnd), TestData.matrix(arena, DType.BF16, 40, 128, rnd),
                    int4(arena, 13, 224, 32, rnd)};
            int[] batches = {3, 3, 5, 3, 17};
            float[] shared = TestData.floats(rnd, 3 * 128);
            MatmulGroup g = new MatmulGroup();
            float[][] outs = new float[ws.length][];
            float[][] xs = new float[ws.length][];
            for (int i = 0; i < ws.length; i++) {
                xs[i] = i == 0 || i == 1 || i == 3 ? shared : TestData.floats(rnd, batches[i] * ws[i].cols());
                outs[i] = new float[batches[i] * ws[i].rows()];
                g.add(ws[i], xs[i], 0, outs[i], 0, batches[i]);
            }
            vec.matmuls(g);
            for (int i = 0; i < ws.length; i++) {
                float[] one = new float[outs[i].length];
                vec.matmul(ws[i], xs[i], 0, one, 0, batches[i]);
                for (int k = 0; k < one.length; k++) {
                    assertEquals(Float.floatToRawIntBits(one[k]), Float.floatToRawIntBits(outs[i][k]),
                            "product " + i + " element " + k);
                }
            }
        }
    }

    @Test
    void matmul_anyBatchPositionThreadCountOrGroup_bitIdentical() {
        // 300x1024, 64x224 and 12x96 run natively where the native kernels run (224, 96: a last partial group).
        assertBatchInvariant(new int[][] {{300, 1024}, {64, 224}, {12, 96}, {65, 224}, {17, 32}, {9, 128}, {13, 96}},
                (arena, rows, cols, rnd) -> int4(arena, rows, cols, 32, rnd), 5,
                new int[][] {{1, 0}, {7, 3}, {7, 6}, {32, 17}, {5, 4}, {17, 16}, {2, 0}, {2, 1}, {3, 2},
                        {6, 5}, {11, 9}}, true, new Random(11));
    }

    @Test
    void quantizedMatmul_closeToTheUnquantizedProduct() {
        Random rnd = new Random(9);
        try (Arena arena = Arena.ofShared()) {
            Matrix bf16 = TestData.matrix(arena, DType.BF16, 64, 1024, rnd);
            Matrix q = Int4Quantizer.quantize(bf16, 32, arena);
            // Gaussian weights: the relative RMS error of int4 with 32-blocks is about 8% per weight, and so per
            // product (independent errors); a wrong nibble order would make it about 140%.
            double rel = relativeError(bf16, q, rnd);
            assertTrue(rel < 0.12, "relative error " + rel);
        }
    }
}
