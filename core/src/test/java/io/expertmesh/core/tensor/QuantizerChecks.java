package io.expertmesh.core.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** What the int8 and int4 quantizer tests check alike, and the F32 matrices they quantize. */
final class QuantizerChecks {
    private QuantizerChecks() {
    }

    /** A quantizer under test: {@link Int8Quantizer#quantize} or {@link Int4Quantizer#quantize}. */
    @FunctionalInterface
    interface Quantizer {
        Matrix quantize(Matrix m, int block, Arena arena);
    }

    /** An F32 matrix of {@code v} (row-major) in {@code arena}. */
    static Matrix f32(Arena arena, int rows, int cols, float[] v) {
        MemorySegment seg = arena.allocate((long) rows * cols * 4, 64);
        MemorySegment.copy(v, 0, seg, ValueLayout.JAVA_FLOAT_UNALIGNED, 0, v.length);
        return new Matrix("w", DType.F32, rows, cols, seg);
    }

    /** An all-zero block gets a zero scale and zero values. */
    static void assertZeroBlockZeroScaleAndValues(Quantizer quantizer) {
        try (Arena arena = Arena.ofConfined()) {
            Matrix q = quantizer.quantize(f32(arena, 1, 64, new float[64]), 32, arena);
            assertEquals(0f, q.scale(0, 0));
            assertEquals(0f, q.get(0, 63));
        }
    }

    /** A BF16 row of {@code cols} columns quantizes exactly as the F32 row of its values. */
    static void assertBf16SourceSameAsItsFloats(Quantizer quantizer, int cols) {
        try (Arena arena = Arena.ofConfined()) {
            float[] v = new float[cols];
            MemorySegment seg = arena.allocate(2L * cols, 64);
            for (int i = 0; i < cols; i++) {
                short b = Bf16.fromFloat((float) Math.sin(i));
                seg.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, b);
                v[i] = Bf16.toFloat(b);
            }
            Matrix a = quantizer.quantize(new Matrix("b", DType.BF16, 1, cols, seg), 32, arena);
            Matrix b = quantizer.quantize(f32(arena, 1, cols, v), 32, arena);
            for (int c = 0; c < cols; c++) {
                assertEquals(b.get(0, c), a.get(0, c));
            }
        }
    }

    /**
     * 48 columns, not whole blocks of 32, are refused with a clear message, as is a block of 48 (not a multiple of
     * 32); {@code policy} keeps such a matrix as it is.
     */
    static void assertColumnsNotWholeBlocksRefused(Quantizer quantizer, Quantization policy) {
        try (Arena arena = Arena.ofConfined()) {
            Matrix m = f32(arena, 2, 48, new float[96]);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> quantizer.quantize(m, 32, arena));
            String expected = "48 columns are not a multiple of the " + policy.label() + " block 32";
            assertTrue(e.getMessage().contains(expected), e.getMessage());
            assertEquals(m, policy.apply(m, arena));
            assertThrows(IllegalArgumentException.class, () -> quantizer.quantize(m, 48, arena));
        }
    }

    /** Rows {@code [from, from + n)} of {@code q} as a slice keep their values (and so their scales). */
    static Matrix assertRowSliceKeepsScales(Matrix q, int from, int n) {
        Matrix s = q.rowSlice(from, n, "s");
        for (int r = 0; r < n; r++) {
            for (int c = 0; c < q.cols(); c++) {
                assertEquals(q.get(r + from, c), s.get(r, c));
            }
        }
        return s;
    }
}
