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

/**
 * The interleaved BF16 layout: every element has its own place (a permutation of the plain one), {@link Matrix#get}
 * reads the same values in both layouts, the round trip gives the plain bytes back, and the layout's chunks are
 * where the native kernel reads them (eight rows' chunk k one after another), at row counts around the group of 8
 * and column counts around the 32-column chunk.
 */
class Bf16InterleaveTest {
    private static final int[] ROWS = {1, 7, 8, 9, 16, 21, 67};
    private static final int[] COLS = {1, 2, 31, 32, 33, 64, 70, 100};

    @Test
    void interleave_keepsEveryValue_andRoundTrips() {
        Random rnd = new Random(1);
        try (Arena arena = Arena.ofConfined()) {
            for (int rows : ROWS) {
                for (int cols : COLS) {
                    Matrix m = bf16(arena, rows, cols, rnd);
                    Matrix woven = Bf16Interleave.interleave(m, arena);
                    assertTrue(woven.interleaved());
                    assertEquals(m.data().byteSize(), woven.data().byteSize());
                    for (int r = 0; r < rows; r++) {
                        for (int c = 0; c < cols; c++) {
                            assertEquals(Float.floatToRawIntBits(m.get(r, c)),
                                    Float.floatToRawIntBits(woven.get(r, c)), rows + "x" + cols + " at " + r + "," + c);
                        }
                    }
                    Matrix back = Bf16Interleave.rowMajor(woven);
                    assertFalse(back.interleaved());
                    assertEquals(-1L, back.data().mismatch(m.data()), rows + "x" + cols);
                    if (rows >= 16 && cols > 32) {
                        // rows 0-7 are woven: the bytes move (otherwise the layout would be the plain one)
                        assertNotEquals(-1L, woven.data().mismatch(m.data()), rows + "x" + cols);
                    }
                }
            }
        }
    }

    @Test
    void index_isAPermutation_withAGroupsChunksConsecutive() {
        for (int rows : ROWS) {
            for (int cols : COLS) {
                Set<Long> seen = new HashSet<>();
                for (int r = 0; r < rows; r++) {
                    for (int c = 0; c < cols; c++) {
                        long i = Bf16Interleave.index(rows, cols, r, c);
                        assertTrue(i >= 0 && i < (long) rows * cols, "in range");
                        assertTrue(seen.add(i), rows + "x" + cols + ": " + r + "," + c + " collides");
                    }
                }
                int rows8 = rows / 8 * 8;
                for (int r = 0; r < rows8; r++) {
                    // chunk k of the group's rows 0..7: 256k + 32i from the group's start
                    long group = (long) (r / 8 * 8) * cols;
                    for (int c = 0; c + 32 <= cols; c += 32) {
                        assertEquals(group + 8L * c + 32L * (r % 8), Bf16Interleave.index(rows, cols, r, c));
                    }
                }
                for (int r = rows8; r < rows; r++) {
                    assertEquals((long) r * cols + cols - 1, Bf16Interleave.index(rows, cols, r, cols - 1),
                            "the last rows % 8 stay plain");
                }
            }
        }
    }

    @Test
    void interleaved_refusesWhatItCannotBe() {
        try (Arena arena = Arena.ofConfined()) {
            Matrix m = bf16(arena, 16, 40, new Random(2));
            Matrix woven = Bf16Interleave.interleave(m, arena);
            IllegalArgumentException slice = assertThrows(IllegalArgumentException.class,
                    () -> woven.rowSlice(0, 8, "s"));
            assertTrue(slice.getMessage().contains("interleaved"), slice.getMessage());
            assertThrows(IllegalArgumentException.class, () -> Bf16Interleave.interleave(woven, arena));
            Matrix f32 = new Matrix("f", DType.F32, 8, 4, arena.allocate(8 * 4 * 4));
            assertThrows(IllegalArgumentException.class, () -> Bf16Interleave.interleave(f32, arena));
            assertThrows(IllegalArgumentException.class,
                    () -> new Matrix("f", DType.F32, 8, 4, arena.allocate(8 * 4 * 4), null, true));
            assertSame(m, Bf16Interleave.rowMajor(m));
        }
    }

    private static Matrix bf16(Arena arena, int rows, int cols, Random rnd) {
        MemorySegment seg = arena.allocate(2L * rows * cols, 64);
        for (long i = 0; i < (long) rows * cols; i++) {
            seg.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, Bf16.fromFloat((float) rnd.nextGaussian()));
        }
        return new Matrix("w", DType.BF16, rows, cols, seg);
    }
}
