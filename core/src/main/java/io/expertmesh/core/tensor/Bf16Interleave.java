package io.expertmesh.core.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The interleaved layout of a BF16 matrix ({@link Matrix#interleaved()}), in which the native kernels read it
 * fastest: rows in groups of {@link #ROWS}, each group's rows woven together 32 columns (64 bytes, one cache
 * line) at a time, so that a register tile of eight rows reads one sequential stream instead of eight.
 *
 * <p>Why: a batch-1 product reads every weight once from memory, eight rows at a time, and eight streams 2 KiB
 * apart read less per second than one: with two threads on the 2-core AMD EPYC (Zen 5), the eight-row tile read
 * 40-47 GB/s interleaved against 33-44 in plain rows (a C loop of the kernel over 280 MB, alternated), and the
 * whole benchmark model decoded 7-22% faster at batch 1 (README, "Interleaved BF16 rows").
 *
 * <p>The layout: group {@code g} holds rows {@code [8g, 8g + 8)} in the same bytes as plain rows would
 * ({@code 8 · cols} elements from element {@code 8g · cols}); within it, 32-column chunk {@code k} of row
 * {@code 8g + i} starts at element {@code 256k + 32i}, and a last partial chunk of {@code t = cols mod 32}
 * columns at {@code 8 · (cols - t) + t · i}. The last {@code rows mod 8} rows stay plain. The values, and so every
 * product's bits, are those of the plain matrix.
 */
public final class Bf16Interleave {
    /** Rows woven together. */
    public static final int ROWS = 8;
    /** Columns of one chunk: 64 bytes of BF16. */
    public static final int CHUNK = 32;

    private Bf16Interleave() {
    }

    /** Element index of (r, c) of an interleaved {@code rows × cols} matrix. */
    public static long index(int rows, int cols, int r, int c) {
        if (r >= rows / ROWS * ROWS) {
            return (long) r * cols + c;
        }
        long group = (long) (r & ~(ROWS - 1)) * cols;
        int i = r & (ROWS - 1);
        int full = cols / CHUNK * CHUNK;
        if (c < full) {
            return group + (long) (c / CHUNK) * CHUNK * ROWS + (long) i * CHUNK + c % CHUNK;
        }
        return group + (long) ROWS * full + (long) (cols - full) * i + (c - full);
    }

    /** {@code m} (BF16, plain rows) interleaved into a new segment of {@code arena}. */
    public static Matrix interleave(Matrix m, Arena arena) {
        if (m.dtype() != DType.BF16 || m.interleaved()) {
            throw new IllegalArgumentException(m.name() + ": only a plain BF16 matrix can be interleaved, this is "
                    + m.dtype() + (m.interleaved() ? " (interleaved)" : ""));
        }
        MemorySegment dst = arena.allocate(m.data().byteSize(), 64);
        copy(m, dst, true);
        return new Matrix(m.name(), DType.BF16, m.rows(), m.cols(), dst, null, true);
    }

    /** {@code m} itself when it is plain, else its plain copy (for code that reads rows directly: the GPU's). */
    public static Matrix rowMajor(Matrix m) {
        if (!m.interleaved()) {
            return m;
        }
        MemorySegment dst = Arena.ofAuto().allocate(m.data().byteSize(), 64);
        copy(m, dst, false);
        return new Matrix(m.name(), DType.BF16, m.rows(), m.cols(), dst);
    }

    /**
     * Copies the matrix between its plain and interleaved forms a chunk at a time ({@code toInterleaved}: from
     * {@code m}'s plain rows into {@code dst}; else from {@code m}'s interleaved rows into plain {@code dst}).
     */
    private static void copy(Matrix m, MemorySegment dst, boolean toInterleaved) {
        int rows = m.rows();
        int cols = m.cols();
        MemorySegment src = m.data();
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c += CHUNK) {
                long plain = 2 * ((long) r * cols + c);
                long woven = 2 * index(rows, cols, r, c);
                long bytes = 2L * Math.min(CHUNK, cols - c);
                if (toInterleaved) {
                    MemorySegment.copy(src, plain, dst, woven, bytes);
                } else {
                    MemorySegment.copy(src, woven, dst, plain, bytes);
                }
            }
        }
    }
}
