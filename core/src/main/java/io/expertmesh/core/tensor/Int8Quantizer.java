package io.expertmesh.core.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Makes {@link DType#I8} matrices at load: per block of {@code block} consecutive columns of a row,
 * {@code scale = max|w| / 127} and {@code q = round(w / scale)} (to nearest, as llama.cpp's
 * {@code quantize_row_q8_0}; ties, which are rare, go up), so the largest magnitude of every block is exactly
 * ±127·scale and the error of any weight is at most scale/2.
 *
 * <p>The block runs along K (the input dimension, the columns) because that is the direction a dot product
 * walks: a kernel loads one scale per block and multiplies whole vectors of widened values by it. The block must
 * be a multiple of 32 and the columns a multiple of the block; a matrix that does not split into whole blocks
 * cannot be quantized ({@link #fits}) and the loader keeps it as it is (see {@link Quantization}). Real models'
 * K are multiples of 128.
 *
 * <p><b>Layout.</b> Within a row, each full group of 64 columns is stored interleaved by 4: byte {@code 4j + k}
 * of the group holds column {@code 16k + j} ({@code j < 16, k < 4}). One 64-byte int vector load then widens
 * into four float vectors of 16 consecutive columns with two shifts each ({@code (p << 24-8k) >> 24}, then
 * int-to-float), the fastest widening the Vector API compiled to here (in a single-thread microbenchmark, best of
 * 10: 15 G weights/s against 10-12 for 16-byte vector loads converted byte-to-float), and the activations need
 * no reordering. A last group of 32 columns (K an odd multiple of 32, only in tiny test models) is stored in
 * plain order. {@link #position} maps a column to its byte within the row.
 *
 * <p><b>Rows in fours.</b> The rows themselves are woven together four at a time, a 64-byte group at a time
 * ({@link InterleavedRows}' layout with groups of {@link #QUAD}: group {@code g} of row {@code 4q + i} at
 * {@code 4q · cols + 4g + 64i}, a last half group at {@code 4q · cols + 4 full + 32i}; the last {@code rows % 4}
 * rows plain), so that the native kernel's 4-row batch-1 tile reads one stream from memory instead of four: in a C
 * loop of that tile (two threads, 800 matrices of 704×1024) 44-46 GB/s of weights and scales against 38-39 from
 * plain rows (3 warm passes each, alternated). {@link #offset} maps an element to its byte.
 */
public final class Int8Quantizer {
    /**
     * Columns per scale: 32, like Q8_0 (1.125 bytes per weight with F32 scales; 64: 1.0625, 128: 1.03). The
     * kernels' work does not depend on the block (they load two scales per 64-column group whatever it is), so the
     * choice is bytes against accuracy: a finer block keeps one outlier from coarsening more weights, and 128
     * would read about 8% fewer bytes per token on the benchmark model (144 instead of 158 MB), so at best about
     * 8% faster decode, which is bandwidth-bound (README, CPU performance). Kept at 32 for accuracy; 64 and 128
     * were not measured end to end.
     */
    public static final int DEFAULT_BLOCK = 32;

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Int8Quantizer() {
    }

    /** Columns of one interleaved group: 16 int lanes × 4 bytes. */
    public static final int GROUP = 64;

    /** Rows woven together (see "Rows in fours"). */
    public static final int QUAD = 4;

    /** Byte offset in an I8 matrix's data of element (r, c) of {@code rows × cols}. */
    public static long offset(int rows, int cols, int r, int c) {
        return InterleavedRows.byteOffset(rows, cols, QUAD, r, position(cols, c));
    }

    /**
     * Where row {@code r}'s 64-column groups start: group {@code g} (a multiple of 64) at
     * {@code rowStart + g · groupStep(rows, r)}.
     */
    public static long rowStart(int rows, int cols, int r) {
        // Not byteOffset(.., 0): with no whole group (cols 32) that is the half group, and this the groups' origin.
        return r < rows / QUAD * QUAD ? (long) (r & ~(QUAD - 1)) * cols + (long) GROUP * (r & (QUAD - 1))
                : (long) r * cols;
    }

    /** 4 for a row woven with its quad, 1 for one of the plain last {@code rows % 4}. */
    public static int groupStep(int rows, int r) {
        return r < rows / QUAD * QUAD ? QUAD : 1;
    }

    /** Where row {@code r}'s plain-order last 32 columns start (K an odd multiple of 32). */
    public static long halfGroupStart(int rows, int cols, int r) {
        return InterleavedRows.byteOffset(rows, cols, QUAD, r, cols / GROUP * GROUP);
    }

    /** Byte position within its row of column {@code c} of a row of {@code cols} columns. */
    public static int position(int cols, int c) {
        int g = c / GROUP;
        if ((g + 1) * GROUP > cols) {
            return c;
        }
        int w = c - g * GROUP;
        return g * GROUP + 4 * (w % 16) + w / 16;
    }

    /** Whether a matrix of {@code cols} columns splits into whole blocks of {@code block}. */
    public static boolean fits(int cols, int block) {
        return cols % block == 0;
    }

    /**
     * The int8 copy of {@code m} (F32, BF16 or F8_E4M3, read as the floats the kernels see) in {@code arena}, which must be readable by the compute pool's
     * threads (shared, global or automatic).
     *
     * @throws IllegalArgumentException when {@code block} is not a positive multiple of 32, or the columns are not
     *                                  a multiple of it
     */
    public static Matrix quantize(Matrix m, int block, Arena arena) {
        SourceRows.check(m, block, "int8");
        int rows = m.rows();
        int cols = m.cols();
        int perRow = cols / block;
        MemorySegment q = arena.allocate((long) rows * cols, 64);
        MemorySegment s = arena.allocate((long) rows * perRow * Float.BYTES, 64);
        float[] row = new float[cols];
        byte[] qs = new byte[cols];
        for (int r = 0; r < rows; r++) {
            SourceRows.readRow(m, r, row);
            for (int j = 0; j < perRow; j++) {
                s.setAtIndex(F32, (long) r * perRow + j, quantizeBlock(row, j * block, block, qs));
            }
            for (int c = 0; c < cols; c++) {
                q.set(ValueLayout.JAVA_BYTE, offset(rows, cols, r, c), qs[c]);
            }
        }
        return new Matrix(m.name(), DType.I8, rows, cols, q, s);
    }

    /** Quantizes {@code w[from, from+n)} into {@code q[from, from+n)}; returns the block's scale. */
    static float quantizeBlock(float[] w, int from, int n, byte[] q) {
        float amax = 0f;
        for (int i = from; i < from + n; i++) {
            amax = Math.max(amax, Math.abs(w[i]));
        }
        float scale = amax / 127f;
        for (int i = from; i < from + n; i++) {
            // Division, not a multiply by 1/scale: the rounded reciprocal can push amax/scale past 127.5.
            int v = scale == 0f ? 0 : Math.round(w[i] / scale);
            q[i] = (byte) Math.max(-127, Math.min(127, v));
        }
        return scale;
    }
}
