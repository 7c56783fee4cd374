package io.expertmesh.core.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.safetensors.Fp8BlockQuantizer;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Fp8E4M3;
import io.expertmesh.core.tensor.Fp8Matrix;
import io.expertmesh.core.tensor.Matrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The FP8 matmul (native where the CPU can, {@link NativeMatmul}; {@link Fp8Matmul} in the Vector API) against
 * {@link ScalarKernels}: shapes that are multiples of neither
 * the vector step ({@code 4L} columns) nor the 128×128 scale block, batches that are and are not multiples of the
 * 2×4 tile, every e4m3 code but the NaNs (subnormals included), the grouped products experts use, and the
 * batch-invariance every kernel guarantees.
 */
class Fp8KernelsTest extends VectorAgainstScalarTest {
    private static final int[][] SHAPES = {{200, 300}, {1, 1}, {3, 63}, {5, 64}, {129, 128}, {7, 130}, {130, 257},
        {65, 1000}};
    private static final int[] BATCHES = {1, 3, 4, 5, 17};

    /** Random e4m3 codes (any but the NaNs) with random block multipliers in [1e-4, 1e-2]. */
    static Matrix randomCodes(Arena arena, int rows, int cols, Random rnd) {
        MemorySegment bytes = arena.allocate((long) rows * cols);
        for (long i = 0; i < bytes.byteSize(); i++) {
            byte b;
            do {
                b = (byte) rnd.nextInt(256);
            } while (Fp8E4M3.isNaN(b));
            bytes.set(ValueLayout.JAVA_BYTE, i, b);
        }
        float[] scaleInv = new float[Matrix.fp8Blocks(rows) * Matrix.fp8Blocks(cols)];
        for (int i = 0; i < scaleInv.length; i++) {
            scaleInv[i] = (float) Math.pow(10, -4 + 2 * rnd.nextDouble());
        }
        return Fp8Matrix.of("fp8 " + rows + "x" + cols, rows, cols, bytes, scaleInv, arena);
    }

    /** Gaussian weights quantized as DeepSeek does (amax/448 per block). */
    static Matrix quantized(Arena arena, int rows, int cols, Random rnd) {
        Matrix f32 = TestData.matrix(arena, DType.F32, rows, cols, rnd);
        Fp8BlockQuantizer.Quantized q = Fp8BlockQuantizer.quantize(f32, arena);
        return Fp8Matrix.of("q " + rows + "x" + cols, rows, cols, q.fp8(), q.scaleInv(), arena);
    }

    @Test
    void get_isTheCodeTimesItsBlockScale() {
        Random rnd = new Random(1);
        try (Arena arena = Arena.ofShared()) {
            Matrix f32 = TestData.matrix(arena, DType.F32, 200, 300, rnd);
            Fp8BlockQuantizer.Quantized q = Fp8BlockQuantizer.quantize(f32, arena);
            Matrix m = Fp8Matrix.of("m", 200, 300, q.fp8(), q.scaleInv(), arena);
            assertEquals(200L * 300 + 2 * 3 * Float.BYTES, m.byteSize(), "1 byte per weight plus the scale grid");
            for (int r = 0; r < 200; r += 7) {
                for (int c = 0; c < 300; c += 11) {
                    float expected = Fp8E4M3.toFloat(q.fp8().get(ValueLayout.JAVA_BYTE, (long) r * 300 + c))
                            * q.scaleInv()[(r / 128) * 3 + c / 128];
                    assertEquals(expected, m.get(r, c), "(" + r + ", " + c + ")");
                }
            }
        }
    }

    @Test
    void matmul_oddShapesAndBatches_matchesScalar() {
        Random rnd = new Random(42);
        try (Arena arena = Arena.ofShared()) {
            for (int[] shape : SHAPES) {
                Matrix[] ws = {randomCodes(arena, shape[0], shape[1], rnd), quantized(arena, shape[0], shape[1], rnd)};
                for (Matrix w : ws) {
                    for (int batch : BATCHES) {
                        // The native kernel's activations carry 16 bits (NativeMatmul), the Java one's 24.
                        checkMatmul(w, batch, rnd, hasNativeKernel(w) ? 1e-5 : 1e-6, w.name());
                        checkMatmul(vectorApi, w, batch, rnd, 1e-6, w.name() + " Vector API");
                    }
                }
            }
        }
    }

    @Test
    void matmulRowsAndGroups_matchScalar() {
        Random rnd = new Random(3);
        try (Arena arena = Arena.ofShared()) {
            Matrix gate = quantized(arena, 200, 300, rnd);
            Matrix up = randomCodes(arena, 200, 300, rnd);
            Matrix bf16 = TestData.matrix(arena, DType.BF16, 200, 300, rnd);
            Matrix down = quantized(arena, 300, 200, rnd);
            for (VectorKernels k : new VectorKernels[] {vec, vectorApi}) {
                for (int batch : new int[] {1, 3, 17}) {
                    float[] x = TestData.floats(rnd, batch * 300);
                    float[] h = TestData.floats(rnd, batch * 200);
                    // An expert's products: gate and up share their input (and its FP8 split), a BF16 product
                    // reads the same input (a split of another kind), down reads another.
                    float[][] outs = new float[4][];
                    float[][] refs = new float[4][];
                    Matrix[] ws = {gate, up, bf16, down};
                    MatmulGroup g = new MatmulGroup();
                    for (int i = 0; i < 4; i++) {
                        outs[i] = new float[batch * ws[i].rows()];
                        refs[i] = new float[batch * ws[i].rows()];
                        float[] in = i == 3 ? h : x;
                        g.add(ws[i], in, 0, outs[i], 0, batch);
                        ref.matmul(ws[i], in, 0, refs[i], 0, batch);
                    }
                    k.matmuls(g);
                    for (int i = 0; i < 4; i++) {
                        TestData.assertNear(ws[i], i == 3 ? h : x, 0, refs[i], outs[i], 0, batch,
                                k == vec && hasNativeKernel(ws[i]) ? 1e-5 : 1e-6, "group " + i);
                    }
                    float[] part = new float[batch * 200];
                    float[] full = new float[batch * 200];
                    k.matmul(gate, x, 0, full, 0, batch);
                    k.matmulRows(gate, 0, 77, x, 0, part, 0, batch);
                    k.matmulRows(gate, 77, 200, x, 0, part, 0, batch);
                    assertTrue(Arrays.equals(full, part), "matmulRows pieces = matmul, batch " + batch);
                }
            }
        }
    }

    @Test
    void scalarFallback_matchesScalar() {
        Random rnd = new Random(5);
        try (Arena arena = Arena.ofShared()) {
            Matrix w = randomCodes(arena, 130, 300, rnd);
            float[] x = TestData.floats(rnd, 3 * 300);
            float[] expected = new float[3 * 130];
            float[] actual = new float[3 * 130];
            ref.matmul(w, x, 0, expected, 0, 3);
            Fp8Matmul.rowsScalar(w, 0, 130, x, 0, actual, 0, 3);
            TestData.assertNear(w, x, 0, expected, actual, 0, 3, 1e-6, "fallback");
        }
    }

    @Test
    void matmul_anyBatchPositionThreadCountOrGroup_bitIdentical() {
        assertBatchInvariant(new int[][] {{300, 1024}, {200, 300}, {17, 63}, {9, 64}},
                Fp8KernelsTest::randomCodes, 3, new int[][] {{1, 0}, {3, 2}, {7, 3}, {7, 6}, {17, 16}, {5, 4}, {2, 1},
                        {6, 5}, {11, 9}},
                false, new Random(11));
    }

    @Test
    void fp8Matmul_closeToTheDequantizedBf16Product() {
        Random rnd = new Random(9);
        try (Arena arena = Arena.ofShared()) {
            Matrix fp8 = quantized(arena, 64, 1024, rnd);
            Matrix bf16 = Fp8Matrix.toBf16(fp8, arena);
            double rel = relativeError(bf16, fp8, rnd);
            // The BF16 copy rounds each weight to 8 bits (relative error ≤ 2^-9): far below 1% on a sum.
            assertTrue(rel < 5e-3, "relative error " + rel);
        }
    }
}
