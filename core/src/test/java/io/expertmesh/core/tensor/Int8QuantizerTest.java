package io.expertmesh.core.tensor;

import static io.expertmesh.core.tensor.QuantizerChecks.f32;
import static org.junit.jupiter.api.Assertions.assertEquals;
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
                                (long) r * cols + Int8Quantizer.position(cols, c))));
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
    void rowSlice_keepsItsScales() {
        Random rnd = new Random(2);
        float[] v = new float[5 * 64];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) rnd.nextGaussian();
        }
        try (Arena arena = Arena.ofConfined()) {
            QuantizerChecks.assertRowSliceKeepsScales(Int8Quantizer.quantize(f32(arena, 5, 64, v), 32, arena), 2, 2);
        }
    }
}
