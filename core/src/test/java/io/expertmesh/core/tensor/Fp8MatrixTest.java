package io.expertmesh.core.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** FP8 matrices' row slices and transposes (MLA's per-head kv_b pieces) keep every value exactly. */
class Fp8MatrixTest {

    private static Matrix random(Arena arena, int rows, int cols, Random rnd) {
        MemorySegment bytes = arena.allocate((long) rows * cols);
        for (long i = 0; i < bytes.byteSize(); i++) {
            byte b = (byte) rnd.nextInt(256);
            bytes.set(ValueLayout.JAVA_BYTE, i, Fp8E4M3.isNaN(b) ? 0 : b);
        }
        float[] s = new float[Matrix.fp8Blocks(rows) * Matrix.fp8Blocks(cols)];
        for (int i = 0; i < s.length; i++) {
            s[i] = 1e-3f * (i + 1);
        }
        return Fp8Matrix.of("w", rows, cols, bytes, s, arena);
    }

    @Test
    void rowSliceOnBlockBoundaries_andTransposeOfIt_keepEveryValue() {
        Random rnd = new Random(2);
        try (Arena arena = Arena.ofConfined()) {
            Matrix m = random(arena, 3 * 128 + 40, 300, rnd);
            Matrix slice = m.rowSlice(128, 2 * 128 + 40, "tail");
            Matrix t = Fp8Matrix.transpose(slice, arena, "tᵀ");
            assertEquals(300, t.rows());
            for (int r = 0; r < slice.rows(); r++) {
                for (int c = 0; c < 300; c++) {
                    assertEquals(m.get(128 + r, c), slice.get(r, c));
                    assertEquals(slice.get(r, c), t.get(c, r));
                }
            }
            assertEquals(m.get(256, 5), m.rowSlice(256, 128, "mid").get(0, 5));
        }
    }

    @Test
    void rowSliceInsideOneBlock_takesThatBlocksScales_andTransposeOfIt_keepEveryValue() {
        // MLA's kv_b pieces with 64 + 64 rows per head: W_UK of head 1 is rows [128, 192), W_UV rows [192, 256).
        Random rnd = new Random(4);
        try (Arena arena = Arena.ofConfined()) {
            Matrix m = random(arena, 3 * 128, 300, rnd);
            for (int from : new int[] {192, 130, 3 * 128 - 50}) {
                int count = from == 130 ? 100 : 50;
                Matrix piece = m.rowSlice(from, count, "piece");
                Matrix t = Fp8Matrix.transpose(piece, arena, "pieceᵀ");
                for (int r = 0; r < count; r++) {
                    for (int c = 0; c < 300; c++) {
                        assertEquals(m.get(from + r, c), piece.get(r, c), "row " + r + " col " + c);
                        assertEquals(piece.get(r, c), t.get(c, r));
                    }
                }
            }
        }
    }

    @Test
    void rowSliceThroughABlock_refused() {
        try (Arena arena = Arena.ofConfined()) {
            Matrix m = random(arena, 256, 64, new Random(3));
            assertThrows(IllegalArgumentException.class, () -> m.rowSlice(120, 16, "piece"));
            assertThrows(IllegalArgumentException.class, () -> m.rowSlice(0, 100 + 128, "piece"));
            assertThrows(IllegalArgumentException.class, () -> m.rowSlice(64, 128, "piece"));
        }
    }

    @Test
    void toBf16AndToF32_matchGet() {
        try (Arena arena = Arena.ofConfined()) {
            Matrix m = random(arena, 130, 131, new Random(4));
            Matrix b = Fp8Matrix.toBf16(m, arena);
            Matrix f = Fp8Matrix.toF32(m, arena);
            for (int r = 0; r < 130; r++) {
                for (int c = 0; c < 131; c++) {
                    assertEquals(m.get(r, c), f.get(r, c));
                    assertEquals(Bf16.round(m.get(r, c)), b.get(r, c));
                }
            }
        }
    }

    @Test
    void firstNaN_findsEitherCodeAnywhere() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(37);
            assertEquals(-1, Fp8Matrix.firstNaN(s));
            for (int at : new int[] {0, 7, 8, 20, 36}) {
                for (byte code : new byte[] {0x7F, (byte) 0xFF}) {
                    s.fill((byte) 0x7E);
                    s.set(ValueLayout.JAVA_BYTE, at, code);
                    assertEquals(at, Fp8Matrix.firstNaN(s), "at " + at);
                }
            }
            s.fill((byte) 0xFE);
            assertEquals(-1, Fp8Matrix.firstNaN(s));
        }
    }
}
