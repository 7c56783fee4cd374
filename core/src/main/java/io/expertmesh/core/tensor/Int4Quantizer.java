package io.expertmesh.core.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Makes {@link DType#I4} matrices at load ({@code --quantize int4}), llama.cpp's Q4_0 rule: per block of
 * {@code block} consecutive columns of a row, {@code m} the value of largest magnitude, {@code scale = m / -8}
 * rounded to F16, and {@code q = round(w / scale)} clamped to [-8, 7]. {@code m} itself becomes exactly -8·scale;
 * using the sign of {@code m} buys the 16th level that a symmetric {@code max|w| / 7} scale would leave unused. The
 * error of a weight is at most scale/2, except for weights near {@code -m}, which clamp to 7 (at most one scale).
 *
 * <p><b>Why F16 scales.</b> Decode is bound by the bytes it reads: with F16 a weight costs 0.5 + 2/32 = 0.5625
 * bytes, with F32 0.625 (11% more). The scale's own rounding (11 significant bits, relative 2^-12) is far below the
 * 4-bit step (1/16 of the block's range), and the values are quantized against the rounded scale, so they do not
 * add up. F16 cannot hold a scale above 65504 (weights above 524k, refused) and holds scales below 6e-5 (blocks
 * whose largest weight is under 5e-4) with fewer bits; real checkpoints' weights sit well inside that range.
 *
 * <p><b>Layout.</b> Each row is {@code cols / 2} bytes. Within a row, each full group of 128 columns is 64 bytes
 * read as 16 little-endian ints: nibble {@code n} (bits {@code 4n..4n+3}) of int {@code j} holds column
 * {@code 16n + j}, so one 64-byte int vector load gives eight vectors of 16 consecutive columns and the activations
 * need no reordering. A last partial group (K not a multiple of 128: 32, 64 or 96 columns) is stored as 16-byte
 * sub-blocks of 32 columns in Q4_0's order: byte {@code i} holds column {@code i} in its low nibble and
 * {@code 16 + i} in its high one. {@link #nibble} maps a column to its place within its row.
 *
 * <p><b>Rows in fours.</b> Decode runs four rows at a time (one activation load serves four rows' weights), and
 * four rows read side by side from memory the prefetcher follows only as one stream: so rows {@code 4k..4k+3}
 * (all but the last {@code rows % 4}) are interleaved group by group, row {@code 4k+i}'s group {@code g} at
 * {@code 4k·cols/2 + 256g + 64i}, then the four rows' partial groups one after the other. The four rows occupy the
 * same {@code 2·cols} bytes as before, so a quad is a permutation within its own bytes; the last
 * {@code rows % 4} rows are stored plainly. {@link #groupOffset} and {@link #partialOffset} say where a row's pieces
 * are. Measured in a probe loop on one AVX-512 core (1024 columns, from DRAM): four rows side by side in the
 * plain layout 22 G weights/s, interleaved 32, one row at a time 28.
 * The scales are separate ({@link Matrix#scales()}), F16, row-major.
  */
public final class Int4Quantizer {
    /** Columns per scale: 32, like Q4_0. Finer than int8 needs: 4 bits leave an outlier fewer levels to spare. */
    public static final int DEFAULT_BLOCK = 32;

    /** Columns of one interleaved group: 16 int lanes × 8 nibbles. */
    public static final int GROUP = 128;

    /** Columns of a sub-block of the last partial group. */
    public static final int SUB_BLOCK = 32;

    /** Rows interleaved together (see "Rows in fours"). */
    public static final int QUAD = 4;

    /** Bytes of one row's 128-column group. */
    private static final int GROUP_BYTES = GROUP / 2;

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Largest finite F16. */
    private static final float F16_MAX = 65504f;

    private Int4Quantizer() {
    }

    /**
     * Nibble index within its row (byte {@code index / 2}, the high nibble when odd) of column {@code c} of a row
     * of {@code cols} columns.
     */
    public static int nibble(int cols, int c) {
        int full = cols / GROUP * GROUP;
        if (c < full) {
            int w = c % GROUP;
            return c - w + 8 * (w % 16) + w / 16;
        }
        int i = (c - full) % SUB_BLOCK;
        return c - i + 2 * (i % 16) + i / 16;
    }

    /** Rows stored interleaved in fours: all but the last {@code rows % 4}. */
    public static int quadRows(int rows) {
        return rows / QUAD * QUAD;
    }

    /** Byte offset of row {@code r}'s 128-column group {@code g} in a matrix of {@code rows × cols}. */
    public static long groupOffset(int rows, int cols, int r, int g) {
        if (r < quadRows(rows)) {
            return (long) (r & ~(QUAD - 1)) * (cols / 2) + (long) g * QUAD * GROUP_BYTES
                    + (r & (QUAD - 1)) * GROUP_BYTES;
        }
        return (long) r * (cols / 2) + (long) g * GROUP_BYTES;
    }

    /** Byte distance between row {@code r}'s consecutive groups: 256 inside a quad, 64 for the plain last rows. */
    public static int groupStride(int rows, int r) {
        return r < quadRows(rows) ? QUAD * GROUP_BYTES : GROUP_BYTES;
    }

    /** Byte offset of row {@code r}'s last partial group (its {@code (cols % 128) / 2} bytes are contiguous). */
    public static long partialOffset(int rows, int cols, int r) {
        int groups = cols / GROUP;
        int partialBytes = cols % GROUP / 2;
        if (r < quadRows(rows)) {
            return (long) (r & ~(QUAD - 1)) * (cols / 2) + (long) groups * QUAD * GROUP_BYTES
                    + (r & (QUAD - 1)) * partialBytes;
        }
        return (long) r * (cols / 2) + (long) groups * GROUP_BYTES;
    }

    /** Byte offset of the byte holding element (r, c); its low nibble when {@link #nibble} is even. */
    static long byteOffset(int rows, int cols, int r, int c) {
        int n = nibble(cols, c);
        int full = cols / GROUP * GROUP;
        return c < full
                ? groupOffset(rows, cols, r, c / GROUP) + (n - c / GROUP * GROUP) / 2
                : partialOffset(rows, cols, r) + (n - full) / 2;
    }

    /** The signed 4-bit value (not yet scaled) of element (r, c) of an I4 matrix of {@code rows × cols}. */
    public static int value(MemorySegment data, int rows, int cols, int r, int c) {
        int b = data.get(ValueLayout.JAVA_BYTE, byteOffset(rows, cols, r, c));
        return ((nibble(cols, c) & 1) == 0 ? b << 28 : b << 24) >> 28;
    }

    /** Whether a matrix of {@code cols} columns splits into whole blocks of {@code block}. */
    public static boolean fits(int cols, int block) {
        return cols % block == 0;
    }

    /**
     * The int4 copy of {@code m} (F32, BF16 or F8_E4M3) in {@code arena}, which must be readable by the compute pool's
     * threads (shared, global or automatic).
     *
     * @throws IllegalArgumentException when {@code block} is not a positive multiple of 32, the columns are not a
     *                                  multiple of it, or a weight is not finite or too large for an F16 scale
     */
    public static Matrix quantize(Matrix m, int block, Arena arena) {
        SourceRows.check(m, block, "int4");
        int rows = m.rows();
        int cols = m.cols();
        int perRow = cols / block;
        MemorySegment q = arena.allocate((long) rows * cols / 2, 64);
        MemorySegment s = arena.allocate((long) rows * perRow * Short.BYTES, 64);
        float[] row = new float[cols];
        byte[] qs = new byte[cols];
        byte[] packed = new byte[cols / 2];
        for (int r = 0; r < rows; r++) {
            SourceRows.readRow(m, r, row);
            for (int j = 0; j < perRow; j++) {
                short scale = quantizeBlock(row, j * block, block, qs, m.name(), r);
                s.setAtIndex(I16, (long) r * perRow + j, scale);
            }
            java.util.Arrays.fill(packed, (byte) 0);
            for (int c = 0; c < cols; c++) {
                int n = nibble(cols, c);
                packed[n >> 1] |= (byte) ((qs[c] & 0xF) << ((n & 1) * 4));
            }
            // packed is the row in plain order (group after group, then the partial group): place its pieces.
            int groups = cols / GROUP;
            for (int g = 0; g < groups; g++) {
                MemorySegment.copy(packed, g * GROUP_BYTES, q, ValueLayout.JAVA_BYTE, groupOffset(rows, cols, r, g),
                        GROUP_BYTES);
            }
            int partialBytes = cols % GROUP / 2;
            if (partialBytes > 0) {
                MemorySegment.copy(packed, groups * GROUP_BYTES, q, ValueLayout.JAVA_BYTE,
                        partialOffset(rows, cols, r), partialBytes);
            }
        }
        return new Matrix(m.name(), DType.I4, rows, cols, q, s);
    }

    /**
     * Quantizes {@code w[from, from+n)} into {@code q[from, from+n)} (values in [-8, 7]); returns the block's F16
     * scale bits.
     */
    static short quantizeBlock(float[] w, int from, int n, byte[] q, String name, int row) {
        float max = 0f;
        for (int i = from; i < from + n; i++) {
            if (!Float.isFinite(w[i])) {
                throw new IllegalArgumentException(name + ": row " + row + " column " + i + " is " + w[i]
                        + ", which int4 cannot hold");
            }
            if (Math.abs(w[i]) > Math.abs(max)) {
                max = w[i];
            }
        }
        float d = max == 0f ? 0f : max / -8f;  // +0 for an all-zero block, not -0
        if (Math.abs(d) > F16_MAX) {
            throw new IllegalArgumentException(name + ": row " + row + " has a weight of " + max
                    + ", beyond an int4 block's F16 scale (|w| up to " + 8 * F16_MAX + ")");
        }
        short bits = Float.floatToFloat16(d);
        float scale = Float.float16ToFloat(bits);
        for (int i = from; i < from + n; i++) {
            // Division, not a multiply by 1/scale, as Int8Quantizer: the rounded reciprocal can move a tie.
            int v = scale == 0f ? 0 : Math.round(w[i] / scale);
            q[i] = (byte) Math.max(-8, Math.min(7, v));
        }
        return bits;
    }

    /** The F32 matrix that {@code q} (I4) stands for, in {@code arena}: the reference the kernels are checked by. */
    public static Matrix dequantize(Matrix q, Arena arena) {
        if (q.dtype() != DType.I4) {
            throw new IllegalArgumentException(q.name() + " is " + q.dtype() + ", not I4");
        }
        MemorySegment out = arena.allocate((long) q.rows() * q.cols() * Float.BYTES, 64);
        for (int r = 0; r < q.rows(); r++) {
            for (int c = 0; c < q.cols(); c++) {
                out.setAtIndex(F32, (long) r * q.cols() + c, q.get(r, c));
            }
        }
        return new Matrix(q.name(), DType.F32, q.rows(), q.cols(), out);
    }
}
