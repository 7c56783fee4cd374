package io.expertmesh.core.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.api.Test;

class Int8QuantizerTest {

    private static Matrix f32(Arena arena, int rows, int cols, float[] v) {
        MemorySegment seg = arena.allocate((long) rows * cols * 4, 64);
        MemorySegment.copy(v, 0, seg, ValueLayout.JAVA_FLOAT_UNALIGNED, 0, v.length);
        return new Matrix("w", DType.F32, rows, cols, seg);
    }

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
        try (Arena arena = Arena.ofConfined()) {
            Matrix q = Int8Quantizer.quantize(f32(arena, 1, 64, new float[64]), 32, arena);
            assertEquals(0f, q.scale(0, 0));
            assertEquals(0f, q.get(0, 63));
        }
    }

    @Test
    void quantize_bf16Source_sameAsItsFloats() {
        try (Arena arena = Arena.ofConfined()) {
            float[] v = new float[64];
            MemorySegment seg = arena.allocate(128, 64);
            for (int i = 0; i < 64; i++) {
                short b = Bf16.fromFloat((float) Math.sin(i));
                seg.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, b);
                v[i] = Bf16.toFloat(b);
            }
            Matrix a = Int8Quantizer.quantize(new Matrix("b", DType.BF16, 1, 64, seg), 32, arena);
            Matrix b = Int8Quantizer.quantize(f32(arena, 1, 64, v), 32, arena);
            for (int c = 0; c < 64; c++) {
                assertEquals(b.get(0, c), a.get(0, c));
            }
        }
    }

    @Test
    void quantize_columnsNotWholeBlocks_refusedAndKeptByTheLoaderPolicy() {
        try (Arena arena = Arena.ofConfined()) {
            Matrix m = f32(arena, 2, 48, new float[96]);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Int8Quantizer.quantize(m, 32, arena));
            assertTrue(e.getMessage().contains("48 columns are not a multiple of the int8 block 32"), e.getMessage());
            assertEquals(m, Quantization.INT8.apply(m, arena));
            assertThrows(IllegalArgumentException.class, () -> Int8Quantizer.quantize(m, 48, arena));
        }
    }

    @Test
    void rowSlice_keepsItsScales() {
        Random rnd = new Random(2);
        float[] v = new float[5 * 64];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) rnd.nextGaussian();
        }
        try (Arena arena = Arena.ofConfined()) {
            Matrix q = Int8Quantizer.quantize(f32(arena, 5, 64, v), 32, arena);
            Matrix s = q.rowSlice(2, 2, "s");
            for (int r = 0; r < 2; r++) {
                for (int c = 0; c < 64; c++) {
                    assertEquals(q.get(r + 2, c), s.get(r, c));
                }
            }
        }
    }
}
