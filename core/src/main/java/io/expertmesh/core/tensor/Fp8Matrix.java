package io.expertmesh.core.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Makes and converts {@link DType#F8_E4M3} matrices (layout on {@link Matrix}): from the checkpoint's bytes and
 * {@code weight_scale_inv} grid, to BF16 (the old load path, and where a block-aligned FP8 form cannot exist), and
 * transposed. Pure computation on segments; the loader ({@code Checkpoint}) decides which to use.
 */
public final class Fp8Matrix {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final long NAN_BYTES = 0x7F7F7F7F7F7F7F7FL;
    private static final long ONES = 0x0101010101010101L;
    private static final long HIGHS = 0x8080808080808080L;

    private Fp8Matrix() {
    }

    /**
     * Whether every multiplier of {@code scaleInv} stays finite once multiplied by 2^120 ({@link Fp8E4M3#SCALE_FOLD}):
     * true unless one is at least 2^8, i.e. a block's largest weight is beyond 448 · 256 ≈ 115 000, which no
     * trained model has; the loader dequantizes such a tensor instead.
     */
    public static boolean foldable(float[] scaleInv) {
        for (float s : scaleInv) {
            if (!Float.isFinite(s * Fp8E4M3.SCALE_FOLD)) {
                return false;
            }
        }
        return true;
    }

    /**
     * The FP8 matrix over {@code bytes} (row-major e4m3, not copied) with {@code scaleInv} (the
     * {@code ⌈rows/128⌉ × ⌈cols/128⌉} dequant multipliers, row-major) folded into a grid in {@code arena}.
     *
     * @throws IllegalArgumentException when a multiplier is not {@link #foldable}
     */
    public static Matrix of(String name, int rows, int cols, MemorySegment bytes, float[] scaleInv, Arena arena) {
        if (!foldable(scaleInv)) {
            throw new IllegalArgumentException(name + ": a block scale times 2^120 overflows a float");
        }
        MemorySegment grid = arena.allocate((long) scaleInv.length * Float.BYTES, 64);
        for (int i = 0; i < scaleInv.length; i++) {
            // A power of two: exact, including for denormal multipliers.
            grid.setAtIndex(F32, i, scaleInv[i] * Fp8E4M3.SCALE_FOLD);
        }
        return new Matrix(name, DType.F8_E4M3, rows, cols, bytes, grid);
    }

    /**
     * Index of the first NaN code (0x7F or 0xFF) in {@code bytes}, or -1. Eight bytes at a time: a byte is a NaN
     * code exactly when its low 7 bits are all ones, i.e. when {@code (b & 0x7F) ^ 0x7F} is zero, and the classic
     * zero-byte test over a long finds whether any of its 8 bytes is.
     */
    public static long firstNaN(MemorySegment bytes) {
        long n = bytes.byteSize();
        long i = 0;
        for (; i + 8 <= n; i += 8) {
            long v = (bytes.get(ValueLayout.JAVA_LONG_UNALIGNED, i) & NAN_BYTES) ^ NAN_BYTES;
            if (((v - ONES) & ~v & HIGHS) != 0) {
                break;
            }
        }
        for (; i < n; i++) {
            if (Fp8E4M3.isNaN(bytes.get(ValueLayout.JAVA_BYTE, i))) {
                return i;
            }
        }
        return -1;
    }

    /**
     * A BF16 copy of FP8 matrix {@code m} in {@code arena}: each element {@code e4m3 · scale_inv} rounded to nearest
     * even, bit for bit what the loader made before FP8 stayed FP8.
     */
    public static Matrix toBf16(Matrix m, Arena arena) {
        return widen(m, DType.BF16, arena);
    }

    /**
     * An F32 copy of FP8 matrix {@code m} in {@code arena}: each element exactly the float the FP8 kernels use, so a
     * product with it differs from the FP8 kernels' only in summation order.
     */
    public static Matrix toF32(Matrix m, Arena arena) {
        return widen(m, DType.F32, arena);
    }

    /** FP8 matrix {@code m} as {@code dtype} (BF16 or F32), element by element from {@link Matrix#get}. */
    private static Matrix widen(Matrix m, DType dtype, Arena arena) {
        requireFp8(m);
        int rows = m.rows();
        int cols = m.cols();
        MemorySegment dst = arena.allocate((long) rows * cols * dtype.bytes(), 64);
        for (int r = 0; r < rows; r++) {
            long base = (long) r * cols;
            for (int c = 0; c < cols; c++) {
                if (dtype == DType.BF16) {
                    dst.setAtIndex(I16, base + c, Bf16.fromFloat(m.get(r, c)));
                } else {
                    dst.setAtIndex(F32, base + c, m.get(r, c));
                }
            }
        }
        return new Matrix(m.name(), dtype, rows, cols, dst);
    }

    /**
     * The transpose of FP8 matrix {@code m} in {@code arena}, still FP8 and exact: a 128×128 block of {@code m} is
     * a 128×128 block of the transpose, so the scale grid is transposed too.
     */
    public static Matrix transpose(Matrix m, Arena arena, String name) {
        requireFp8(m);
        int rows = m.rows();
        int cols = m.cols();
        MemorySegment src = m.data();
        MemorySegment dst = arena.allocate((long) rows * cols, 64);
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                byte b = src.get(ValueLayout.JAVA_BYTE, (long) r * cols + c);
                dst.set(ValueLayout.JAVA_BYTE, (long) c * rows + r, b);
            }
        }
        int gr = Matrix.fp8Blocks(rows);
        int gc = Matrix.fp8Blocks(cols);
        MemorySegment grid = arena.allocate((long) gr * gc * Float.BYTES, 64);
        for (int i = 0; i < gr; i++) {
            for (int j = 0; j < gc; j++) {
                grid.setAtIndex(F32, (long) j * gr + i, m.scales().getAtIndex(F32, (long) i * gc + j));
            }
        }
        return new Matrix(name, DType.F8_E4M3, cols, rows, dst, grid);
    }

    private static void requireFp8(Matrix m) {
        if (m.dtype() != DType.F8_E4M3) {
            throw new IllegalArgumentException(m.name() + " is " + m.dtype() + ", not F8_E4M3");
        }
    }
}
