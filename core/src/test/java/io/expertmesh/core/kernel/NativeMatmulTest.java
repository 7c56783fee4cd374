package io.expertmesh.core.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.expertmesh.core.tensor.InterleavedRows;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Int4Quantizer;
import io.expertmesh.core.tensor.Matrix;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The native AVX512-BF16 kernels (BF16, FP8, int8 and int4 weights) against a double-precision sum, at row, column
 * and batch counts around their tile (4 rows × 4 batch rows), their 32-column chunk, their 64-row cache block and
 * FP8's 128×128 scale block; FP8 with every e4m3 code but the NaNs, subnormals included; int8 with blocks of 32, 64
 * and 96 and K an odd multiple of 32 (a plain-order last half group); int4 in the shapes it takes (Q4_0 blocks
 * and row quads; K with and without a last partial 128-column group), subnormal F16 scales included, against
 * activations quantized as it reads them ({@link Int8Activations}). Batch
 * invariance on the pool is {@link MatmulDeterminismTest}'s (int4: {@link Int4KernelsTest}'s); agreement with the
 * scalar reference through {@link VectorKernels} is {@link VectorKernelsTest}'s. Skipped where the kernel is not
 * available, except that a build that compiled it must load it on a CPU that has AVX512-BF16, -VBMI and -VNNI.
 */
class NativeMatmulTest {
    private static final int[] ROWS = {1, 3, 4, 5, 67, 130};
    private static final int[] COLS = {1, 2, 31, 32, 33, 63, 64, 65, 100, 257, 1000};
    private static final int[] BATCHES = {1, 2, 3, 4, 5, 7, 11};

    @Test
    void loads_whereBuiltAndTheCpuHasAvx512Bf16AndVbmi() throws IOException {
        Path cpuinfo = Path.of("/proc/cpuinfo");
        String flags = Files.isReadable(cpuinfo) ? Files.readString(cpuinfo) : "";
        boolean cpuHasIt = flags.contains(" avx512_bf16") && flags.contains(" avx512vbmi")
                && flags.contains(" avx512_vnni");
        boolean built = NativeMatmul.class.getResource(NativeMatmul.RESOURCE) != null;
        assumeTrue(built && cpuHasIt
                && Boolean.parseBoolean(System.getProperty("expertmesh.nativeKernels", "true")),
                "native kernels not built here, or this CPU lacks AVX512-BF16, AVX512-VBMI or AVX512-VNNI");
        assertTrue(NativeMatmul.available(), NativeMatmul.status());
        assertEquals("native AVX512-BF16", VectorKernels.bf16Kernel());
    }

    @Test
    void fp8Rows_oddShapes_withinFloatRoundingOfTheExactSum() {
        checkShapes(new int[] {1, 5, 67, 130, 260}, new int[] {1, 33, 64, 127, 128, 129, 300},
                Fp8KernelsTest::randomCodes, new Random(8));
    }

    @Test
    void int4Rows_shapesItTakes_withinFloatRoundingOfTheExactSum() {
        Random rnd = new Random(9);
        // K = 32, 64, 96, 160, 224 and 704: a last partial 128-column group (alone, or after full ones).
        checkShapes(new int[] {4, 8, 68, 132}, new int[] {32, 64, 96, 128, 160, 224, 256, 704, 1152},
                (arena, rows, cols, r) -> {
                    assertTrue(NativeMatmul.int4(rows, cols, 32), rows + "x" + cols);
                    return Int4KernelsTest.int4(arena, rows, cols, 32, r);
                }, rnd);
        try (Arena arena = Arena.ofShared()) {
            // Weights around 1e-5: F16 block scales below its smallest normal, which the kernel must widen exactly.
            MemorySegment tiny = arena.allocate(12L * 1024 * Float.BYTES, 64);
            for (int i = 0; i < 12 * 1024; i++) {
                tiny.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, (float) (rnd.nextGaussian() * 1e-5));
            }
            check(Int4Quantizer.quantize(new Matrix("tiny", DType.F32, 12, 1024, tiny), 32, arena), 3, rnd);
            assertFalse(NativeMatmul.int4(13, 128, 32) || NativeMatmul.int4(12, 128, 64),
                    "other int4 shapes (rows not in whole quads, blocks other than 32) stay in the Java kernel");
        }
    }

    @Test
    void int8Rows_blocksAndShapes_withinFloatRoundingOfTheExactSum() {
        // K an odd multiple of 32 ends in a plain-order half group; block 64 and 96 put both halves of a group in
        // one block, or (96) the second half in the next one.
        Random rnd = new Random(10);
        for (int block : new int[] {32, 64, 96}) {
            int[] cols = Arrays.stream(new int[] {32, 64, 96, 160, 192, 288, 1024, 1056})
                    .filter(c -> c % block == 0).toArray();
            checkShapes(ROWS, cols, (arena, rows, c, r) -> {
                assertTrue(NativeMatmul.int8(c, block), c + " columns, block " + block);
                return Int8KernelsTest.int8(arena, rows, c, block, r);
            }, rnd);
        }
        assertFalse(NativeMatmul.int8(96, 48) || NativeMatmul.int8(100, 32) || NativeMatmul.int8(64, 0),
                "a block the quantizer never makes stays in the Java kernel");
    }

    @Test
    void bf16Rows_oddShapes_withinFloatRoundingOfTheExactSum() {
        checkShapes(ROWS, COLS, (arena, rows, cols, r) -> TestData.matrix(arena, DType.BF16, rows, cols, r),
                new Random(5));
    }

    @Test
    void bf16Rows_interleaved_oddShapes_withinFloatRoundingOfTheExactSum() {
        checkShapes(new int[] {8, 9, 16, 67, 130}, COLS, (arena, rows, cols, r) ->
                InterleavedRows.interleave(TestData.matrix(arena, DType.BF16, rows, cols, r), arena), new Random(11));
    }

    /** The native copy into the interleaved layout writes the bytes {@link InterleavedRows#interleave} defines. */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F8_E4M3"})
    void weaveRows_sameBytesAsTheLayoutDefines(DType dtype) {
        assumeTrue(NativeMatmul.available(), NativeMatmul.status());
        Random rnd = new Random(14);
        int g = InterleavedRows.groupRows(dtype);
        try (Arena arena = Arena.ofShared()) {
            for (int rows : new int[] {1, 3, 4, 7, 8, 9, 16, 45}) {
                for (int cols : new int[] {1, 31, 32, 33, 64, 70, 129}) {
                    Matrix plain = dtype == DType.BF16 ? TestData.matrix(arena, DType.BF16, rows, cols, rnd)
                            : Fp8KernelsTest.randomCodes(arena, rows, cols, rnd);
                    MemorySegment want = InterleavedRows.interleave(plain, arena).data();
                    MemorySegment got = NativeMatmul.allocateWeights(want.byteSize(), arena);
                    // in two calls split at a group boundary, as the pool's tasks do
                    int mid = rows / (2 * g) * g;
                    long rowBytes = dtype.bytes(cols);
                    NativeMatmul.weaveRows(plain.data(), rows, rowBytes, g, 0, mid, got);
                    NativeMatmul.weaveRows(plain.data(), rows, rowBytes, g, mid, rows, got);
                    assertEquals(-1L, got.mismatch(want), dtype + " " + rows + "x" + cols);
                }
            }
        }
    }

    @Test
    void fp8Rows_interleaved_oddShapes_withinFloatRoundingOfTheExactSum() {
        checkShapes(new int[] {4, 5, 67, 130}, new int[] {1, 33, 64, 127, 129, 300}, (arena, rows, cols, r) ->
                InterleavedRows.interleave(Fp8KernelsTest.randomCodes(arena, rows, cols, r), arena), new Random(15));
    }

    /**
     * Interleaved rows give the plain rows' bits for every row range a thread may get (starts and ends inside a
     * group, in the plain last rows, across the boundary) and write nothing outside it: BF16 (groups of 8) and FP8
     * (groups of 4, at batch 4 and more through the converted row-block scratch).
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F8_E4M3"})
    void interleaved_sameBitsAsPlain_inEveryRowRange(DType dtype) {
        assumeTrue(NativeMatmul.available(), NativeMatmul.status());
        Random rnd = new Random(12);
        try (Arena arena = Arena.ofShared()) {
            for (int cols : new int[] {1, 31, 32, 70, 129}) {
                int rows = 45;  // 5 groups of 8 (11 of 4), then 5 (1) plain rows
                Matrix plain = dtype == DType.BF16 ? TestData.matrix(arena, DType.BF16, rows, cols, rnd)
                        : Fp8KernelsTest.randomCodes(arena, rows, cols, rnd);
                Matrix woven = InterleavedRows.interleave(plain, arena);
                for (int batch : new int[] {1, 2, 3, 4, 6, 9}) {
                    float[] x = TestData.floats(rnd, 1 + batch * cols);
                    float[] want = new float[batch * rows];
                    rows(plain, 0, rows, x, want, batch);
                    int[][] ranges = {{0, 45}, {0, 40}, {3, 29}, {8, 16}, {37, 45}, {40, 45}, {41, 43}, {13, 14}};
                    for (int[] range : ranges) {
                        float[] got = new float[batch * rows];
                        Arrays.fill(got, Float.NaN);
                        rows(woven, range[0], range[1], x, got, batch);
                        for (int b = 0; b < batch; b++) {
                            for (int r = 0; r < rows; r++) {
                                float g = got[b * rows + r];
                                String at = dtype + ", " + cols + " cols, batch " + batch + ", rows "
                                        + Arrays.toString(range) + ": row " + r + " of batch row " + b;
                                if (r >= range[0] && r < range[1]) {
                                    assertEquals(Float.floatToRawIntBits(want[b * rows + r]),
                                            Float.floatToRawIntBits(g), at);
                                } else {
                                    assertTrue(Float.isNaN(g), at + " written");
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /** Rows {@code [from, to)} of a BF16 or FP8 matrix in either layout against x (offset 1), natively. */
    private static void rows(Matrix w, int from, int to, float[] x, float[] out, int batch) {
        if (w.dtype() == DType.BF16) {
            NativeMatmul.bf16Rows(w.data(), w.rows(), w.cols(), from, to, x, 1, out, 0, batch, w.interleaved());
        } else {
            NativeMatmul.fp8Rows(w.data(), w.scales(), w.rows(), w.cols(), from, to, x, 1, out, 0, batch,
                    w.interleaved());
        }
    }

    /** {@link #check} at every batch of {@link #BATCHES} for a matrix of each shape {@code rows × cols}. */
    private static void checkShapes(int[] rowCounts, int[] colCounts, VectorAgainstScalarTest.Weights weights,
                                    Random rnd) {
        assumeTrue(NativeMatmul.available(), NativeMatmul.status());
        try (Arena arena = Arena.ofShared()) {
            for (int rows : rowCounts) {
                for (int cols : colCounts) {
                    Matrix w = weights.make(arena, rows, cols, rnd);
                    for (int batch : BATCHES) {
                        check(w, batch, rnd);
                    }
                }
            }
        }
    }

    @Test
    void bf16Rows_subRange_writesOnlyItsRows() {
        assumeTrue(NativeMatmul.available(), NativeMatmul.status());
        Random rnd = new Random(6);
        try (Arena arena = Arena.ofShared()) {
            Matrix w = TestData.matrix(arena, DType.BF16, 150, 70, rnd);
            int batch = 9;
            float[] x = TestData.floats(rnd, 2 + batch * 70);
            float[] full = new float[batch * 150];
            NativeMatmul.bf16Rows(w.data(), 150, 70, 0, 150, x, 2, full, 0, batch, false);
            float[] part = new float[3 + batch * 150];
            Arrays.fill(part, Float.NaN);
            NativeMatmul.bf16Rows(w.data(), 150, 70, 13, 101, x, 2, part, 3, batch, false);
            for (int b = 0; b < batch; b++) {
                for (int r = 0; r < 150; r++) {
                    float got = part[3 + b * 150 + r];
                    if (r >= 13 && r < 101) {
                        assertEquals(Float.floatToRawIntBits(full[b * 150 + r]), Float.floatToRawIntBits(got));
                    } else {
                        assertTrue(Float.isNaN(got), "row " + r + " written");
                    }
                }
            }
        }
    }

    /**
     * Every output within 2^-16 of {@code Σ|w·x|} of the exact sum: what {@code hi + lo} leaves of an activation
     * is under 2^-17 of it (measured 2.6e-6 on a one-column row, 4e-7 on long sums, where errors cancel), and
     * activations rounded to bf16 (the hi half alone) would be off by up to 2^-9, so the check sees the lo half.
     */
    private static void check(Matrix w, int batch, Random rnd) {
        int rows = w.rows();
        int cols = w.cols();
        int xOff = 3;
        int outOff = 2;
        float[] x = TestData.floats(rnd, xOff + batch * cols);
        float[] out = new float[outOff + batch * rows + 1];
        Arrays.fill(out, Float.NaN);
        if (w.dtype() == DType.F8_E4M3) {
            NativeMatmul.fp8Rows(w.data(), w.scales(), rows, cols, 0, rows, x, xOff, out, outOff, batch,
                    w.interleaved());
        } else if (w.dtype() == DType.I8) {
            NativeMatmul.int8Rows(w.data(), w.scales(), rows, cols, w.block(), 0, rows, x, xOff, out, outOff, batch);
        } else if (w.dtype() == DType.I4) {
            NativeMatmul.int4Rows(w.data(), w.scales(), rows, cols, 0, rows, x, xOff, out, outOff, batch);
        } else {
            NativeMatmul.bf16Rows(w.data(), rows, cols, 0, rows, x, xOff, out, outOff, batch, w.interleaved());
        }
        byte[] q = new byte[cols];
        float[] scales = new float[(cols + Int8Activations.BLOCK - 1) / Int8Activations.BLOCK];
        for (int b = 0; b < batch; b++) {
            if (w.dtype() == DType.I4) {  // int4 reads the activations quantized to int8 (W4A8)
                Int8Activations.quantize(x, xOff + b * cols, cols, q, scales);
            }
            for (int r = 0; r < rows; r++) {
                double exact = 0;
                double magnitude = 0;
                for (int c = 0; c < cols; c++) {
                    double xc = w.dtype() == DType.I4
                            ? (double) q[c] * scales[c / Int8Activations.BLOCK] : x[xOff + b * cols + c];
                    double p = (double) w.get(r, c) * xc;
                    exact += p;
                    magnitude += Math.abs(p);
                }
                double got = out[outOff + b * rows + r];
                assertTrue(Math.abs(got - exact) <= 0x1p-16 * magnitude + 1e-30,
                        rows + "x" + cols + " batch " + batch + " [" + b + "][" + r + "]: " + got + " vs " + exact);
            }
        }
        assertTrue(Float.isNaN(out[0]) && Float.isNaN(out[1]) && Float.isNaN(out[out.length - 1]), "padding written");
    }
}
