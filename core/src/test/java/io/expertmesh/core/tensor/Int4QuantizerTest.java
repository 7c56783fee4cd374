package io.expertmesh.core.tensor;

import static io.expertmesh.core.tensor.QuantizerChecks.f32;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** {@link Int4Quantizer}: the Q4_0 rule, its error bounds, the nibble layout, and what it refuses. */
class Int4QuantizerTest {

    private static float[] gaussian(Random rnd, int n, boolean wideRange) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (rnd.nextGaussian() * (wideRange ? Math.pow(10, rnd.nextInt(5) - 2) : 0.05));
        }
        return v;
    }

    @Test
    void quantize_errorAtMostHalfAScaleExceptTheClampedTop_andBlockMaxIsExactlyMinus8() {
        Random rnd = new Random(1);
        // 224 = one 128-column group and three 32-column sub-blocks: both layouts.
        int rows = 3;
        int cols = 224;
        float[] v = gaussian(rnd, rows * cols, true);
        v[5] = 0f;
        try (Arena arena = Arena.ofConfined()) {
            Matrix q = Int4Quantizer.quantize(f32(arena, rows, cols, v), 32, arena);
            assertEquals(DType.I4, q.dtype());
            assertEquals(32, q.block());
            assertEquals((long) rows * cols / 2 + (long) rows * (cols / 32) * 2, q.byteSize());
            for (int r = 0; r < rows; r++) {
                for (int j = 0; j < cols / 32; j++) {
                    float scale = Math.abs(q.scale(r, j));
                    int argmax = j * 32;
                    for (int c = j * 32; c < (j + 1) * 32; c++) {
                        float w = v[r * cols + c];
                        int qv = Int4Quantizer.value(q.data(), rows, cols, r, c);
                        assertTrue(qv >= -8 && qv <= 7, "value " + qv);
                        // Rounded to nearest, except a weight near -max, clamped from 8 to 7: within one step.
                        double bound = (qv == 7 ? 1.0 : 0.5) * scale * 1.002 + 1e-30;
                        assertTrue(Math.abs(q.get(r, c) - w) <= bound,
                                "element " + r + "," + c + ": " + w + " -> " + q.get(r, c) + " scale " + scale);
                        if (Math.abs(w) > Math.abs(v[r * cols + argmax])) {
                            argmax = c;
                        }
                    }
                    assertEquals(-8, Int4Quantizer.value(q.data(), rows, cols, r, argmax), "row " + r + " block " + j);
                }
            }
        }
    }

    @Test
    void roundTrip_gaussianWeights_relativeRmsErrorOfFourBits() {
        Random rnd = new Random(4);
        int rows = 64;
        int cols = 1024;
        float[] v = gaussian(rnd, rows * cols, false);
        try (Arena arena = Arena.ofConfined()) {
            Matrix q = Int4Quantizer.quantize(f32(arena, rows, cols, v), 32, arena);
            Matrix back = Int4Quantizer.dequantize(q, arena);
            double num = 0;
            double den = 0;
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    double e = back.get(r, c) - v[r * cols + c];
                    num += e * e;
                    den += (double) v[r * cols + c] * v[r * cols + c];
                    assertEquals(q.get(r, c), back.get(r, c));
                }
            }
            double rel = Math.sqrt(num / den);
            // A step of max/8 (max of 32 Gaussians ≈ 2.1σ) and uniform rounding error: about 0.08-0.09.
            assertTrue(rel > 0.04 && rel < 0.11, "relative RMS error " + rel);
        }
    }

    @Test
    void nibble_eachColumnItsOwnPlace_groupsInterleavedBySixteen_tailInQ40Order() {
        assertEquals(0, Int4Quantizer.nibble(256, 0));
        assertEquals(8, Int4Quantizer.nibble(256, 1));
        assertEquals(1, Int4Quantizer.nibble(256, 16));
        assertEquals(127, Int4Quantizer.nibble(256, 127));
        assertEquals(128 + 7 * 8 + 7, Int4Quantizer.nibble(256, 128 + 7 * 16 + 7));
        // 160 = a group and one sub-block: byte i of the sub-block holds columns i (low) and 16 + i (high).
        assertEquals(128, Int4Quantizer.nibble(160, 128));
        assertEquals(129, Int4Quantizer.nibble(160, 144));
        assertEquals(130, Int4Quantizer.nibble(160, 129));
        for (int cols : new int[] {32, 96, 128, 224, 480, 1056}) {
            boolean[] seen = new boolean[cols];
            for (int c = 0; c < cols; c++) {
                int n = Int4Quantizer.nibble(cols, c);
                assertTrue(n >= 0 && n < cols && !seen[n], cols + ": nibble " + n + " of column " + c);
                seen[n] = true;
            }
        }
    }

    @Test
    void layout_rowsInterleavedInFours_everyElementItsOwnNibble_lastRowsPlain() {
        for (int rows : new int[] {1, 3, 4, 5, 8, 11}) {
            for (int cols : new int[] {32, 96, 128, 224, 1056}) {
                boolean[] seen = new boolean[rows * cols];
                for (int r = 0; r < rows; r++) {
                    for (int c = 0; c < cols; c++) {
                        long n = 2 * Int4Quantizer.byteOffset(rows, cols, r, c) + (Int4Quantizer.nibble(cols, c) & 1);
                        assertTrue(n >= 0 && n < seen.length && !seen[(int) n],
                                rows + "x" + cols + ": element " + r + "," + c + " at nibble " + n);
                        seen[(int) n] = true;
                    }
                }
            }
        }
        // 9 x 288: two quads, then row 8 plain; two groups and a 32-column partial group per row.
        assertEquals(4 * 144 + 256 + 2 * 64, Int4Quantizer.groupOffset(9, 288, 6, 1));
        assertEquals(4 * 144 + 2 * 256 + 2 * 16, Int4Quantizer.partialOffset(9, 288, 6));
        assertEquals(8 * 144 + 64, Int4Quantizer.groupOffset(9, 288, 8, 1));
        assertEquals(8 * 144 + 128, Int4Quantizer.partialOffset(9, 288, 8));
        assertEquals(256, Int4Quantizer.groupStride(9, 7));
        assertEquals(64, Int4Quantizer.groupStride(9, 8));
    }

    @Test
    void rowSlice_int4_wholeQuadsOnly() {
        try (Arena arena = Arena.ofConfined()) {
            Matrix q = Int4Quantizer.quantize(f32(arena, 10, 64, gaussian(new Random(3), 640, false)), 32, arena);
            Matrix tail = q.rowSlice(4, 6, "tail");
            Matrix mid = q.rowSlice(4, 4, "mid");
            for (int c = 0; c < 64; c++) {
                for (int r = 0; r < 6; r++) {
                    assertEquals(q.get(4 + r, c), tail.get(r, c), "tail " + r + "," + c);
                }
                for (int r = 0; r < 4; r++) {
                    assertEquals(q.get(4 + r, c), mid.get(r, c), "mid " + r + "," + c);
                }
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> q.rowSlice(2, 4, "x"));
            assertTrue(e.getMessage().contains("quad"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> q.rowSlice(4, 3, "x"));
        }
    }

    @Test
    void quantize_zeroBlock_zeroScaleAndValues() {
        QuantizerChecks.assertZeroBlockZeroScaleAndValues(Int4Quantizer::quantize);
    }

    @Test
    void quantize_bf16Source_sameAsItsFloats() {
        QuantizerChecks.assertBf16SourceSameAsItsFloats(Int4Quantizer::quantize, 128);
    }

    @Test
    void quantize_columnsNotWholeBlocks_refusedAndKeptByTheLoaderPolicy() {
        QuantizerChecks.assertColumnsNotWholeBlocksRefused(Int4Quantizer::quantize, Quantization.INT4);
    }

    @Test
    void quantize_badInput_clearErrors() {
        try (Arena arena = Arena.ofConfined()) {
            float[] v = new float[64];
            v[3] = Float.NaN;
            IllegalArgumentException nan = assertThrows(IllegalArgumentException.class,
                    () -> Int4Quantizer.quantize(f32(arena, 1, 64, v), 32, arena));
            assertTrue(nan.getMessage().contains("row 0 column 3 is NaN"), nan.getMessage());
            v[3] = 1e7f;
            IllegalArgumentException big = assertThrows(IllegalArgumentException.class,
                    () -> Int4Quantizer.quantize(f32(arena, 1, 64, v), 32, arena));
            assertTrue(big.getMessage().contains("F16 scale"), big.getMessage());
            Matrix q = Int4Quantizer.quantize(f32(arena, 1, 64, new float[64]), 32, arena);
            assertThrows(IllegalArgumentException.class, () -> Int4Quantizer.quantize(q, 32, arena));
            assertEquals(q, Quantization.INT4.apply(q, arena));
            assertThrows(IllegalStateException.class, DType.I4::bytes);
        }
    }

    @Test
    void quantization_appliesEachFormat() {
        try (Arena arena = Arena.ofConfined()) {
            Matrix m = f32(arena, 2, 64, gaussian(new Random(3), 128, false));
            assertEquals(m, Quantization.NONE.apply(m, arena));
            assertEquals(DType.I8, Quantization.INT8.apply(m, arena).dtype());
            assertEquals(DType.I4, Quantization.INT4.apply(m, arena).dtype());
            assertEquals("int4", Quantization.INT4.label());
            // An int8 matrix is not quantized again to int4, nor the reverse.
            Matrix i8 = Quantization.INT8.apply(m, arena);
            assertEquals(i8, Quantization.INT4.apply(i8, arena));
        }
    }

    @Test
    void rowSlice_keepsItsScales() {
        Random rnd = new Random(2);
        float[] v = gaussian(rnd, 9 * 160, false);
        try (Arena arena = Arena.ofConfined()) {
            // Whole quads: rows 4..8 of 9 (a quad and the plain last row).
            Matrix q = Int4Quantizer.quantize(f32(arena, 9, 160, v), 32, arena);
            assertEquals(32, QuantizerChecks.assertRowSliceKeepsScales(q, 4, 5).block());
        }
    }
}
