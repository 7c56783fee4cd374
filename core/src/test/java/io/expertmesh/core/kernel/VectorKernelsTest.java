package io.expertmesh.core.kernel;

import static io.expertmesh.core.kernel.TestData.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Matrix;
import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Every {@link VectorKernels} kernel against {@link ScalarKernels} at sizes that are not multiples of 16. */
class VectorKernelsTest extends VectorAgainstScalarTest {
    private static final int[] SIZES = {1, 7, 16, 17, 33, 64, 100, 257, 1000};
    private static final int[] COLS = {1, 7, 17, 31, 32, 33, 63, 64, 65, 100, 257, 1000};
    private static final int[] ROWS = {1, 3, 65};
    private static final int[] BATCHES = {1, 3, 5, 32};

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void matmul_oddShapesAndBatches_matchesScalar(DType dtype) {
        Random rnd = new Random(42);
        try (Arena arena = Arena.ofShared()) {
            for (int rows : ROWS) {
                for (int cols : COLS) {
                    Matrix w = TestData.matrix(arena, dtype, rows, cols, rnd);
                    for (int batch : BATCHES) {
                        checkMatmul(w, batch, rnd, 1e-5, w.dtype().toString());
                        checkMatmul(vectorApi, w, batch, rnd, 1e-5, w.dtype() + " Vector API");
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void matmul_largeEnoughToRunOnThePool_matchesScalar(DType dtype) {
        Random rnd = new Random(7);
        try (Arena arena = Arena.ofShared()) {
            Matrix w = TestData.matrix(arena, dtype, 301, 1000, rnd);
            for (int batch : new int[] {1, 5, 32}) {
                checkMatmul(w, batch, rnd, 1e-5, w.dtype().toString());
                checkMatmul(vectorApi, w, batch, rnd, 1e-5, w.dtype() + " Vector API");
            }
        }
    }

    /**
     * {@link Kernels#prepare}: with native kernels a BF16 or FP8 matrix comes back interleaved, and every product
     * (on the pool, by row range, grouped) has the plain matrix's bits; the Java kernels and the scalar reference
     * get plain rows back, refuse (Java) or read correctly (scalar, through {@link Matrix#get}) an interleaved one;
     * other dtypes and matrices smaller than a group of rows are returned as they are.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F8_E4M3"})
    void prepare_interleavesForTheNativeKernels_withTheSameBits(DType dtype) {
        Random rnd = new Random(13);
        try (Arena arena = Arena.ofShared()) {
            Matrix plain = dtype == DType.BF16 ? TestData.matrix(arena, DType.BF16, 301, 1000, rnd)
                    : Fp8KernelsTest.randomCodes(arena, 301, 1000, rnd);
            Matrix prepared = vec.prepare(plain);
            assertEquals(NativeMatmul.available(), prepared.interleaved(), VectorKernels.bf16Kernel());
            assertSame(prepared, vec.prepare(prepared));
            // the same source again (an expert worker rebuilding a layer's runner): the same copy, not a new one
            assertSame(prepared, vec.prepare(new Matrix(plain.name(), plain.dtype(), plain.rows(), plain.cols(),
                    plain.data(), plain.scales())));
            for (int batch : new int[] {1, 2, 3, 5, 32}) {
                float[] x = TestData.floats(rnd, batch * 1000);
                float[] want = new float[batch * 301];
                vec.matmul(plain, x, 0, want, 0, batch);
                float[] got = new float[batch * 301];
                vec.matmul(prepared, x, 0, got, 0, batch);
                assertBitsEqual(want, got, "matmul, batch " + batch);
                Arrays.fill(got, 0f);
                vec.matmulRows(prepared, 0, 301, x, 0, got, 0, batch);
                assertBitsEqual(want, got, "matmulRows, batch " + batch);
                Arrays.fill(got, 0f);
                vec.matmuls(new MatmulGroup().add(prepared, x, 0, got, 0, batch));
                assertBitsEqual(want, got, "matmuls, batch " + batch);
                float[] scalarPlain = new float[batch * 301];
                ref.matmul(plain, x, 0, scalarPlain, 0, batch);
                float[] scalarPrepared = new float[batch * 301];
                ref.matmul(prepared, x, 0, scalarPrepared, 0, batch);
                assertBitsEqual(scalarPlain, scalarPrepared, "scalar reference, batch " + batch);
            }
            Matrix back = vectorApi.prepare(prepared);
            assertTrue(!back.interleaved() && back.data().mismatch(plain.data()) == -1, "plain rows for the Java path");
            assertSame(plain, vectorApi.prepare(plain));
            if (prepared.interleaved()) {
                IllegalStateException e = assertThrows(IllegalStateException.class,
                        () -> vectorApi.matmul(prepared, new float[1000], 0, new float[301], 0, 1));
                assertTrue(e.getMessage().contains("interleaved"), e.getMessage());
            }
            Matrix f32 = TestData.matrix(arena, DType.F32, 40, 64, rnd);
            assertSame(f32, vec.prepare(f32));
            Matrix fewRows = dtype == DType.BF16 ? TestData.matrix(arena, DType.BF16, 7, 64, rnd)
                    : Fp8KernelsTest.randomCodes(arena, 3, 64, rnd);
            assertSame(fewRows, vec.prepare(fewRows));
        }
    }

    private static void assertBitsEqual(float[] want, float[] got, String what) {
        for (int i = 0; i < want.length; i++) {
            assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]), what + " at " + i);
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void matmulRows_subRange_sameBitsAsMatmulAndOtherRowsUntouched(DType dtype) {
        Random rnd = new Random(3);
        try (Arena arena = Arena.ofShared()) {
            Matrix w = TestData.matrix(arena, dtype, 40, 257, rnd);
            int batch = 6;
            float[] x = TestData.floats(rnd, batch * 257);
            for (VectorKernels k : new VectorKernels[] {vec, vectorApi}) {
                float[] full = new float[batch * 40];
                k.matmul(w, x, 0, full, 0, batch);
                float[] part = new float[batch * 40];
                Arrays.fill(part, Float.NaN);
                k.matmulRows(w, 11, 29, x, 0, part, 0, batch);
                for (int b = 0; b < batch; b++) {
                    for (int r = 0; r < 40; r++) {
                        int i = b * 40 + r;
                        if (r >= 11 && r < 29) {
                            assertEquals(Float.floatToRawIntBits(full[i]), Float.floatToRawIntBits(part[i]));
                        } else {
                            assertTrue(Float.isNaN(part[i]), "row " + r + " written");
                        }
                    }
                }
            }
        }
    }

    @Test
    void dot_oddSizes_matchesScalar() {
        Random rnd = new Random(1);
        for (int n : SIZES) {
            float[] a = TestData.floats(rnd, n + 3);
            float[] b = TestData.floats(rnd, n + 5);
            double magnitude = 0;
            for (int i = 0; i < n; i++) {
                magnitude += Math.abs(a[i + 3] * b[i + 5]);
            }
            assertClose(ref.dot(a, 3, b, 5, n), vec.dot(a, 3, b, 5, n), 1e-5 * Math.sqrt(n) * magnitude, "dot " + n);
        }
    }

    @Test
    void dotRows_oddSizesAndStrides_equalsDotPerRowBitForBit() {
        Random rnd = new Random(11);
        for (int dim : SIZES) {
            int stride = dim + 7;
            int count = 5;
            float[] q = TestData.floats(rnd, dim + 2);
            float[] k = TestData.floats(rnd, 3 + count * stride);
            float[] out = new float[count + 1];
            vec.dotRows(q, 2, k, 3, stride, count, dim, 0.5f, out, 1);
            for (int i = 0; i < count; i++) {
                assertEquals(vec.dot(q, 2, k, 3 + i * stride, dim) * 0.5f, out[1 + i], "row " + i + " dim " + dim);
                assertClose(ref.dot(q, 2, k, 3 + i * stride, dim) * 0.5f, out[1 + i], 1e-4 * Math.sqrt(dim),
                        "vs scalar, dim " + dim);
            }
        }
    }

    @Test
    void dotRowsMulti_everyQueryAndRowCount_equalsDotRowsBitForBit() {
        Random rnd = new Random(13);
        for (int dim : new int[] {1, 15, 17, 33, 47, 64, 70, 576}) {
            for (int nq : new int[] {1, 3, 4, 5, 8, 9}) {
                for (int count : new int[] {1, 2, 3, 16, 17}) {
                    int stride = dim + 5;
                    int qStride = dim + 3;
                    int outStride = count + 2;
                    float[] q = TestData.floats(rnd, 1 + nq * qStride);
                    float[] k = TestData.floats(rnd, 2 + count * stride);
                    float[] out = TestData.floats(rnd, 3 + nq * outStride);
                    float[] expected = out.clone();
                    vec.dotRowsMulti(q, 1, qStride, nq, k, 2, stride, count, dim, 0.25f, out, 3, outStride);
                    for (int j = 0; j < nq; j++) {
                        vec.dotRows(q, 1 + j * qStride, k, 2, stride, count, dim, 0.25f, expected, 3 + j * outStride);
                    }
                    assertArrayEquals(expected, out, "dim " + dim + ", " + nq + " queries, " + count + " rows");
                    float[] scalar = out.clone();
                    ref.dotRowsMulti(q, 1, qStride, nq, k, 2, stride, count, dim, 0.25f, scalar, 3, outStride);
                    for (int i = 0; i < out.length; i++) {
                        assertClose(scalar[i], out[i], 1e-4 * Math.sqrt(dim), "vs scalar, dim " + dim);
                    }
                }
            }
        }
    }

    @Test
    void axpyRowsMulti_everyVectorAndRowCount_equalsAxpyRowsBitForBit() {
        Random rnd = new Random(14);
        for (int dim : new int[] {1, 15, 17, 33, 64, 65, 100, 512}) {
            for (int nq : new int[] {1, 3, 4, 5, 8, 9}) {
                // 70 rows: more than one of axpyRowsMulti's row chunks
                for (int count : new int[] {1, 2, 31, 70}) {
                    int stride = dim + 5;
                    int wStride = count + 3;
                    int yStride = dim + 1;
                    float[] w = TestData.floats(rnd, 2 + nq * wStride);
                    float[] v = TestData.floats(rnd, 1 + count * stride);
                    float[] y = TestData.floats(rnd, 4 + nq * yStride);
                    float[] expected = y.clone();
                    float[] scalar = y.clone();
                    vec.axpyRowsMulti(w, 2, wStride, nq, v, 1, stride, count, dim, y, 4, yStride);
                    for (int j = 0; j < nq; j++) {
                        vec.axpyRows(w, 2 + j * wStride, v, 1, stride, count, dim, expected, 4 + j * yStride);
                    }
                    assertArrayEquals(expected, y, "dim " + dim + ", " + nq + " vectors, " + count + " rows");
                    ref.axpyRowsMulti(w, 2, wStride, nq, v, 1, stride, count, dim, scalar, 4, yStride);
                    for (int i = 0; i < y.length; i++) {
                        assertClose(scalar[i], y[i], 1e-5 * count, "vs scalar, dim " + dim);
                    }
                }
            }
        }
    }

    @Test
    void multiRowKernels_outOfRange_throwWithoutWriting() {
        float[] q = new float[20];
        float[] k = new float[20];
        float[] out = new float[4];
        assertThrows(IndexOutOfBoundsException.class,
                () -> vec.dotRowsMulti(q, 0, 10, 3, k, 0, 10, 2, 10, 1f, out, 0, 2));
        assertThrows(IndexOutOfBoundsException.class,
                () -> vec.axpyRowsMulti(out, 0, 2, 2, k, 0, 10, 2, 10, q, 0, 12));
        assertArrayEquals(new float[4], out);
        assertArrayEquals(new float[20], q);
    }

    @Test
    void axpyRows_oddSizesAndStrides_equalsAxpyPerRowBitForBit() {
        Random rnd = new Random(12);
        for (int dim : SIZES) {
            int stride = dim + 3;
            int count = 6;
            float[] w = TestData.floats(rnd, count + 1);
            float[] v = TestData.floats(rnd, 2 + count * stride);
            float[] y1 = TestData.floats(rnd, dim + 4);
            float[] y2 = y1.clone();
            float[] y3 = y1.clone();
            vec.axpyRows(w, 1, v, 2, stride, count, dim, y1, 4 - 4);
            for (int i = 0; i < count; i++) {
                vec.axpy(w[1 + i], v, 2 + i * stride, y2, 0, dim);
                ref.axpy(w[1 + i], v, 2 + i * stride, y3, 0, dim);
            }
            assertArrayEquals(y2, y1, "dim " + dim);
            for (int j = 0; j < dim; j++) {
                assertClose(y3[j], y1[j], 1e-5 * count, "vs scalar, dim " + dim);
            }
        }
    }

    @Test
    void axpy_oddSizes_matchesScalar() {
        Random rnd = new Random(2);
        for (int n : SIZES) {
            float[] x = TestData.floats(rnd, n + 1);
            float[] y1 = TestData.floats(rnd, n + 2);
            float[] y2 = y1.clone();
            ref.axpy(0.37f, x, 1, y1, 2, n);
            vec.axpy(0.37f, x, 1, y2, 2, n);
            for (int i = 0; i < y1.length; i++) {
                assertClose(y1[i], y2[i], 1e-6 * (1 + Math.abs(y1[i])), "axpy " + n + " [" + i + "]");
            }
        }
    }

    @Test
    void rmsNorm_oddSizes_matchesScalarIncludingInPlace() {
        Random rnd = new Random(4);
        for (int n : SIZES) {
            float[] x = TestData.floats(rnd, n + 2);
            float[] weight = TestData.floats(rnd, n);
            float[] expected = new float[n + 1];
            float[] actual = new float[n + 1];
            ref.rmsNorm(x, 2, weight, 1e-6f, expected, 1, n);
            vec.rmsNorm(x, 2, weight, 1e-6f, actual, 1, n);
            float[] inPlace = x.clone();
            vec.rmsNorm(inPlace, 2, weight, 1e-6f, inPlace, 2, n);
            for (int i = 0; i < n; i++) {
                double tol = 1e-5 * (1 + Math.abs(expected[i + 1]));
                assertClose(expected[i + 1], actual[i + 1], tol, "rmsNorm " + n + " [" + i + "]");
                assertEquals(actual[i + 1], inPlace[i + 2], "in place " + n + " [" + i + "]");
            }
        }
    }

    @Test
    void swiglu_oddSizesAndExtremeGates_matchesScalar() {
        Random rnd = new Random(5);
        for (int n : SIZES) {
            float[] gate = TestData.floats(rnd, n + 1);
            for (int i = 0; i < gate.length; i += 5) {
                gate[i] *= 40f;
            }
            float[] up = TestData.floats(rnd, n);
            float[] expected = new float[n];
            float[] actual = new float[n];
            ref.swiglu(gate, 1, up, 0, expected, 0, n);
            vec.swiglu(gate, 1, up, 0, actual, 0, n);
            for (int i = 0; i < n; i++) {
                assertClose(expected[i], actual[i], 1e-6 * (1 + Math.abs(expected[i])), "swiglu " + n + " [" + i + "]");
            }
        }
        float[] extreme = {-200f, -100f, -88f, -50f, -1e-3f, 0f, 1e-3f, 50f, 88f, 100f, 200f};
        float[] up = new float[extreme.length];
        Arrays.fill(up, 2f);
        float[] expected = new float[extreme.length];
        float[] actual = new float[extreme.length];
        ref.swiglu(extreme, 0, up, 0, expected, 0, extreme.length);
        vec.swiglu(extreme, 0, up, 0, actual, 0, extreme.length);
        for (int i = 0; i < extreme.length; i++) {
            assertClose(expected[i], actual[i], 1e-6 * (1 + Math.abs(expected[i])), "swiglu(" + extreme[i] + ")");
        }
    }

    @Test
    void swiglu_rowsAlone_sameBitsAsRowsConcatenated() {
        Random rnd = new Random(6);
        int n = 100;
        float[] gate = TestData.floats(rnd, 3 * n);
        float[] up = TestData.floats(rnd, 3 * n);
        float[] together = new float[3 * n];
        vec.swiglu(gate, 0, up, 0, together, 0, 3 * n);
        for (int row = 0; row < 3; row++) {
            float[] alone = new float[n];
            vec.swiglu(gate, row * n, up, row * n, alone, 0, n);
            for (int i = 0; i < n; i++) {
                assertEquals(Float.floatToRawIntBits(together[row * n + i]), Float.floatToRawIntBits(alone[i]));
            }
        }
    }

    @Test
    void softmax_oddSizesAndLargeLogits_matchesScalar() {
        Random rnd = new Random(8);
        for (int n : SIZES) {
            for (float scale : new float[] {1f, 30f}) {
                float[] x = TestData.floats(rnd, n + 4);
                for (int i = 0; i < x.length; i++) {
                    x[i] *= scale;
                }
                float[] expected = x.clone();
                float[] actual = x.clone();
                ref.softmax(expected, 2, n);
                vec.softmax(actual, 2, n);
                double sum = 0;
                for (int i = 0; i < x.length; i++) {
                    assertClose(expected[i], actual[i], 1e-6 * (1 + Math.abs(expected[i])) + 1e-30, "softmax " + n + " [" + i + "]");
                    if (i >= 2 && i < 2 + n) {
                        sum += actual[i];
                    }
                }
                assertClose(1f, (float) sum, 1e-5, "softmax sum " + n);
            }
        }
    }

    @Test
    void rope_bothConventions_matchScalar() {
        Random rnd = new Random(9);
        for (int dim : new int[] {2, 6, 16, 34, 64, 128, 130, 192}) {
            float[] cos = TestData.floats(rnd, dim / 2 + 3);
            float[] sin = TestData.floats(rnd, dim / 2 + 3);
            float[] x = TestData.floats(rnd, dim + 5);
            float[] e1 = x.clone();
            float[] a1 = x.clone();
            ref.ropeInterleaved(e1, 5, dim, cos, sin, 3);
            vec.ropeInterleaved(a1, 5, dim, cos, sin, 3);
            float[] e2 = x.clone();
            float[] a2 = x.clone();
            ref.ropeHalf(e2, 5, dim, cos, sin, 3);
            vec.ropeHalf(a2, 5, dim, cos, sin, 3);
            for (int i = 0; i < x.length; i++) {
                assertEquals(e1[i], a1[i], "interleaved " + dim + " [" + i + "]");
                assertEquals(e2[i], a2[i], "half " + dim + " [" + i + "]");
            }
        }
    }
}
