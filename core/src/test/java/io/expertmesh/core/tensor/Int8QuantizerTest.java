package io.expertmesh.core.tensor;

import static io.expertmesh.core.tensor.QuantizerChecks.f32;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.api.Test;

class Int8QuantizerTest {

    @Test
    void quantize_errorAtMostHalfAScale_andBlockMaxIsExactly127() {
        Random rnd = new Random(1);
        int rows = 3;
        int cols = 96;
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (rnd.nextGaussian() * Math.pow(10, rnd.nextInt(5) - 2));
        }
        v[5] = 0f;
        try (Arena arena = Arena.ofConfined()) {
            Matrix q = Int8Quantizer.quantize(f32(arena, rows, cols, v), 32, arena);
            assertEquals(DType.I8, q.dtype());
            assertEquals(32, q.block());
            assertEquals((long) rows * cols + rows * 3 * 4, q.byteSize());
            for (int r = 0; r < rows; r++) {
                for (int j = 0; j < 3; j++) {
                    float scale = q.scale(r, j);
                    int maxQ = 0;
                    for (int c = j * 32; c < (j + 1) * 32; c++) {
                        float w = v[r * cols + c];
                        assertTrue(Math.abs(q.get(r, c) - w) <= scale * 0.5f * 1.0001f + 1e-30f,
                                "element " + r + "," + c + ": " + w + " -> " + q.get(r, c) + " scale " + scale);
                        maxQ = Math.max(maxQ, Math.abs(q.data().get(ValueLayout.JAVA_BYTE,
                                Int8Quantizer.offset(rows, cols, r, c))));
                    }
                    assertEquals(127, maxQ, "row " + r + " block " + j);
                }
            }
        }
    }

    @Test
    void position_fullGroupsInterleavedByFour_lastHalfGroupPlain() {
        assertEquals(0, Int8Quantizer.position(96, 0));
        assertEquals(4, Int8Quantizer.position(96, 1));
        assertEquals(1, Int8Quantizer.position(96, 16));
        assertEquals(63, Int8Quantizer.position(96, 63));
        assertEquals(64 + 5, Int8Quantizer.position(96, 64 + 5));
        boolean[] seen = new boolean[192];
        for (int c = 0; c < 192; c++) {
            int p = Int8Quantizer.position(192, c);
            assertTrue(!seen[p], "position " + p + " taken twice");
            seen[p] = true;
        }
    }

    /**
     * Rows woven in fours: every element has its own byte, a quad's group g is four rows' 64 bytes one after another
     * (row i's at 4g + 64i from the quad), a last half group after the full ones, and the last rows % 4 are plain;
     * rowStart, groupStep and halfGroupStart (the kernels' addressing) agree with offset.
     */
    @Test
    void offset_rowsWovenInFours_lastRowsPlain() {
        for (int rows : new int[] {1, 3, 4, 5, 9}) {
            for (int cols : new int[] {32, 64, 96, 192}) {
                boolean[] seen = new boolean[rows * cols];
                int full = cols / 64 * 64;
                for (int r = 0; r < rows; r++) {
                    for (int c = 0; c < cols; c++) {
                        long o = Int8Quantizer.offset(rows, cols, r, c);
                        assertTrue(!seen[(int) o], rows + "x" + cols + ": byte " + o + " taken twice");
                        seen[(int) o] = true;
                        int p = Int8Quantizer.position(cols, c);
                        long group = (long) (p / 64 * 64) * Int8Quantizer.groupStep(rows, r);
                        long want = p < full ? Int8Quantizer.rowStart(rows, cols, r) + group + p % 64
                                : Int8Quantizer.halfGroupStart(rows, cols, r) + (p - full);
                        assertEquals(want, o, rows + "x" + cols + " at " + r + "," + c);
                    }
                    boolean woven = r < rows / 4 * 4;
                    assertEquals(woven ? (long) (r / 4 * 4) * cols + 64L * (r % 4) : (long) r * cols,
                            Int8Quantizer.rowStart(rows, cols, r));
                    assertEquals(woven ? 4 : 1, Int8Quantizer.groupStep(rows, r));
                }
            }
        }
    }

    @Test
    void quantize_zeroBlock_zeroScaleAndValues() {
        QuantizerChecks.assertZeroBlockZeroScaleAndValues(Int8Quantizer::quantize);
    }

    @Test
    void quantize_bf16Source_sameAsItsFloats() {
        QuantizerChecks.assertBf16SourceSameAsItsFloats(Int8Quantizer::quantize, 64);
    }

    @Test
    void quantize_columnsNotWholeBlocks_refusedAndKeptByTheLoaderPolicy() {
        QuantizerChecks.assertColumnsNotWholeBlocksRefused(Int8Quantizer::quantize, Quantization.INT8);
    }

    @Test
    void rowSlice_wholeQuads_keepsItsScales_andRefusesToCutAQuad() {
        Random rnd = new Random(2);
        float[] v = new float[9 * 64];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) rnd.nextGaussian();
        }
        try (Arena arena = Arena.ofConfined()) {
            Matrix q = Int8Quantizer.quantize(f32(arena, 9, 64, v), 32, arena);
            QuantizerChecks.assertRowSliceKeepsScales(q, 4, 4);
            QuantizerChecks.assertRowSliceKeepsScales(q, 4, 5);  // to the end: the plain last row included
            assertThrows(IllegalArgumentException.class, () -> q.rowSlice(2, 2, "s"));
            assertThrows(IllegalArgumentException.class, () -> q.rowSlice(4, 2, "s"));
        }
    }
}
