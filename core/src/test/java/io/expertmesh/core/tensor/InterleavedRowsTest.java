package io.expertmesh.core.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The interleaved layout of BF16 (rows in eights) and FP8 (in fours): every byte has its own place (a permutation of
 * the plain layout), {@link Matrix#get} reads the same values in both layouts, the round trip gives the plain bytes
 * back, and the layout's chunks are where the native kernels read them (a group's rows' chunk k one after another),
 * at row counts around the groups and column counts around the 64-byte chunk.
 */
class InterleavedRowsTest {
    private static final int[] ROWS = {1, 7, 8, 9, 16, 21, 67};
    private static final int[] COLS = {1, 2, 31, 32, 33, 64, 70, 100, 129};

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F8_E4M3"})
    void interleave_keepsEveryValue_andRoundTrips(DType dtype) {
        Random rnd = new Random(1);
        int g = InterleavedRows.groupRows(dtype);
        try (Arena arena = Arena.ofConfined()) {
            for (int rows : ROWS) {
                for (int cols : COLS) {
                    Matrix m = dtype == DType.BF16 ? bf16(arena, rows, cols, rnd) : fp8(arena, rows, cols, rnd);
                    Matrix woven = InterleavedRows.interleave(m, arena);
                    assertTrue(woven.interleaved());
                    assertEquals(m.data().byteSize(), woven.data().byteSize());
                    for (int r = 0; r < rows; r++) {
                        for (int c = 0; c < cols; c++) {
                            assertEquals(Float.floatToRawIntBits(m.get(r, c)),
                                    Float.floatToRawIntBits(woven.get(r, c)), rows + "x" + cols + " at " + r + "," + c);
                        }
                    }
                    Matrix back = InterleavedRows.rowMajor(woven);
                    assertFalse(back.interleaved());
                    assertEquals(-1L, back.data().mismatch(m.data()), rows + "x" + cols);
                    if (rows >= 2 * g && cols > 64) {
                        // the first group is woven: the bytes move (otherwise the layout would be the plain one)
                        assertNotEquals(-1L, woven.data().mismatch(m.data()), rows + "x" + cols);
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {4, 8})
    void byteOffset_isAPermutation_withAGroupsChunksConsecutive(int g) {
        for (int rows : ROWS) {
            for (int rowBytes : COLS) {
                Set<Long> seen = new HashSet<>();
                for (int r = 0; r < rows; r++) {
                    for (int b = 0; b < rowBytes; b++) {
                        long i = InterleavedRows.byteOffset(rows, rowBytes, g, r, b);
                        assertTrue(i >= 0 && i < (long) rows * rowBytes, "in range");
                        assertTrue(seen.add(i), rows + "x" + rowBytes + ": " + r + "," + b + " collides");
                    }
                }
                int woven = rows / g * g;
                for (int r = 0; r < woven; r++) {
                    // chunk k of the group's row i: 64 (g k + i) bytes from the group's start
                    long group = (long) (r / g * g) * rowBytes;
                    for (int b = 0; b + 64 <= rowBytes; b += 64) {
                        assertEquals(group + 64L * (g * (b / 64) + r % g),
                                InterleavedRows.byteOffset(rows, rowBytes, g, r, b));
                    }
                }
                for (int r = woven; r < rows; r++) {
                    assertEquals((long) r * rowBytes + rowBytes - 1,
                            InterleavedRows.byteOffset(rows, rowBytes, g, r, rowBytes - 1), "the last rows stay plain");
                }
            }
        }
    }

    @Test
    void interleaved_refusesWhatItCannotBe() {
        try (Arena arena = Arena.ofConfined()) {
            Matrix m = bf16(arena, 16, 40, new Random(2));
            Matrix woven = InterleavedRows.interleave(m, arena);
            IllegalArgumentException slice = assertThrows(IllegalArgumentException.class,
                    () -> woven.rowSlice(0, 8, "s"));
            assertTrue(slice.getMessage().contains("interleaved"), slice.getMessage());
            assertThrows(IllegalArgumentException.class, () -> InterleavedRows.interleave(woven, arena));
            Matrix f32 = new Matrix("f", DType.F32, 8, 4, arena.allocate(8 * 4 * 4));
            assertThrows(IllegalArgumentException.class, () -> InterleavedRows.interleave(f32, arena));
            assertThrows(IllegalArgumentException.class,
                    () -> new Matrix("f", DType.F32, 8, 4, arena.allocate(8 * 4 * 4), null, true));
            assertThrows(IllegalArgumentException.class, () -> new Matrix("q", DType.I8, 8, 32,
                    arena.allocate(8 * 32), arena.allocate(8 * 4), true));
            assertSame(m, InterleavedRows.rowMajor(m));
        }
    }

    /** An FP8 matrix of random e4m3 codes (NaNs excluded) with random block scales. */
    private static Matrix fp8(Arena arena, int rows, int cols, Random rnd) {
        MemorySegment codes = arena.allocate((long) rows * cols, 64);
        for (long i = 0; i < (long) rows * cols; i++) {
            int code = rnd.nextInt(256);
            codes.set(ValueLayout.JAVA_BYTE, i, (byte) ((code & 0x7F) == 0x7F ? code - 1 : code));
        }
        float[] scaleInv = new float[Matrix.fp8Blocks(rows) * Matrix.fp8Blocks(cols)];
        for (int i = 0; i < scaleInv.length; i++) {
            scaleInv[i] = (float) (0.5 + rnd.nextDouble());
        }
        return Fp8Matrix.of("w", rows, cols, codes, scaleInv, arena);
    }

    private static Matrix bf16(Arena arena, int rows, int cols, Random rnd) {
        MemorySegment seg = arena.allocate(2L * rows * cols, 64);
        for (long i = 0; i < (long) rows * cols; i++) {
            seg.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, Bf16.fromFloat((float) rnd.nextGaussian()));
        }
        return new Matrix("w", DType.BF16, rows, cols, seg);
    }
}
