package io.expertmesh.core.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The matrices the int8 and int4 quantizers read (F32, BF16 or F8_E4M3), what they refuse, and a row of one as the
 * floats the kernels see.
 */
final class SourceRows {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private SourceRows() {
    }

    /**
     * Checks that {@code m} can be quantized to {@code format} ({@code "int8"}, {@code "int4"}) in blocks of
     * {@code block} columns.
     *
     * @throws IllegalArgumentException when {@code block} is not a positive multiple of 32, {@code m} is not F32,
     *                                  BF16 or F8_E4M3, or its columns are not a multiple of {@code block}
     */
    static void check(Matrix m, int block, String format) {
        if (block <= 0 || block % 32 != 0) {
            throw new IllegalArgumentException(format + " block must be a positive multiple of 32, got " + block);
        }
        if (m.dtype() != DType.F32 && m.dtype() != DType.BF16 && m.dtype() != DType.F8_E4M3) {
            throw new IllegalArgumentException(m.name() + ": " + format + " quantization reads F32, BF16 or F8_E4M3, "
                    + "not " + m.dtype());
        }
        if (m.cols() % block != 0) {
            throw new IllegalArgumentException(m.name() + ": " + m.cols() + " columns are not a multiple of the "
                    + format + " block " + block);
        }
    }

    /** Row {@code r} of {@code m} (F32, BF16 or F8_E4M3) as floats into {@code out[0, cols)}. */
    static void readRow(Matrix m, int r, float[] out) {
        int cols = m.cols();
        long base = (long) r * cols;
        MemorySegment src = m.data();
        if (m.dtype() == DType.BF16) {
            for (int c = 0; c < cols; c++) {
                out[c] = Bf16.toFloat(src.getAtIndex(I16, base + c));
            }
        } else if (m.dtype() == DType.F8_E4M3) {
            for (int c = 0; c < cols; c++) {
                out[c] = m.get(r, c);   // the exact e4m3 · scale_inv the FP8 kernels see
            }
        } else {
            MemorySegment.copy(src, F32, base * Float.BYTES, out, 0, cols);
        }
    }
}
