package io.expertmesh.core.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The interleaved layout of a BF16 or FP8 matrix ({@link Matrix#interleaved()}), in which the native kernels read
 * it fastest: rows in groups ({@link #groupRows}: 8 for BF16, 4 for FP8, the rows of the kernels' batch-1 register
 * tiles), each group's rows woven together 64 bytes (one cache line: 32 BF16 or 64 FP8 columns) at a time, so that
 * a tile reads one sequential stream instead of one per row.
 *
 * <p>Why: a batch-1 product reads every weight once from memory, a tile of rows at a time, and eight streams 2 KiB
 * apart read less per second than one: with two threads on the 2-core AMD EPYC (Zen 5), the BF16 eight-row tile
 * read 35-47 GB/s interleaved against 27-45 in plain rows (a C loop of the kernel over 280 MB, 10 alternated
 * passes; README, "Interleaved rows").
 *
 * <p>The layout, in bytes, for rows of {@code R} bytes woven {@code G} at a time: group {@code q} holds rows
 * {@code [Gq, Gq + G)} in the same bytes as plain rows would (from byte {@code Gq · R}); within it, 64-byte chunk
 * {@code k} of row {@code Gq + i} starts at byte {@code 64 (G k + i)}, and a last partial chunk of
 * {@code t = R mod 64} bytes at {@code G (R - t) + t i}. The last {@code rows mod G} rows stay plain. Within a row
 * the bytes keep their order (FP8 and BF16 store columns in order), so the values, and every product's bits, are
 * those of the plain matrix. {@link Int8Quantizer} stores every int8 matrix in this layout, in fours.
 */
public final class InterleavedRows {
    /** Bytes of one woven chunk: a cache line. */
    public static final int CHUNK_BYTES = 64;

    private InterleavedRows() {
    }

    /** Rows woven together for {@code dtype}: 8 for BF16, 4 for F8_E4M3, 0 for a dtype that is never interleaved. */
    public static int groupRows(DType dtype) {
        return switch (dtype) {
            case BF16 -> 8;
            case F8_E4M3 -> 4;
            default -> 0;
        };
    }

    /** Offset in {@code data} of byte {@code b} of row {@code r} of an interleaved matrix. */
    public static long byteOffset(Matrix m, int r, long b) {
        return byteOffset(m.rows(), m.dtype().bytes(m.cols()), groupRows(m.dtype()), r, b);
    }

    /** Offset of byte {@code b} of row {@code r} of {@code rows} rows of {@code rowBytes} bytes, woven by {@code g}. */
    public static long byteOffset(int rows, long rowBytes, int g, int r, long b) {
        if (r >= rows / g * g) {
            return r * rowBytes + b;
        }
        long group = (long) (r / g * g) * rowBytes;
        int i = r % g;
        long full = rowBytes / CHUNK_BYTES * CHUNK_BYTES;
        if (b < full) {
            return group + (b / CHUNK_BYTES * g + i) * CHUNK_BYTES + b % CHUNK_BYTES;
        }
        return group + g * full + (rowBytes - full) * i + (b - full);
    }

    /** {@code m} (BF16 or F8_E4M3, plain rows) interleaved into a new segment of {@code arena}; the reference. */
    public static Matrix interleave(Matrix m, Arena arena) {
        if (groupRows(m.dtype()) == 0 || m.interleaved()) {
            throw new IllegalArgumentException(m.name() + ": only a plain BF16 or F8_E4M3 matrix can be interleaved, "
                    + "this is " + m.dtype() + (m.interleaved() ? " (interleaved)" : ""));
        }
        MemorySegment dst = arena.allocate(m.data().byteSize(), 64);
        copy(m, dst, true);
        return new Matrix(m.name(), m.dtype(), m.rows(), m.cols(), dst, m.scales(), true);
    }

    /** {@code m} itself when it is plain, else its plain copy (for code that reads rows directly: the GPU's). */
    public static Matrix rowMajor(Matrix m) {
        if (!m.interleaved()) {
            return m;
        }
        MemorySegment dst = Arena.ofAuto().allocate(m.data().byteSize(), 64);
        copy(m, dst, false);
        return new Matrix(m.name(), m.dtype(), m.rows(), m.cols(), dst, m.scales(), false);
    }

    /**
     * Copies the matrix between its plain and interleaved forms a chunk at a time ({@code toInterleaved}: from
     * {@code m}'s plain rows into {@code dst}; else from {@code m}'s interleaved rows into plain {@code dst}).
     */
    private static void copy(Matrix m, MemorySegment dst, boolean toInterleaved) {
        int rows = m.rows();
        long rowBytes = m.dtype().bytes(m.cols());
        int g = groupRows(m.dtype());
        MemorySegment src = m.data();
        for (int r = 0; r < rows; r++) {
            for (long b = 0; b < rowBytes; b += CHUNK_BYTES) {
                long plain = r * rowBytes + b;
                long woven = byteOffset(rows, rowBytes, g, r, b);
                long bytes = Math.min(CHUNK_BYTES, rowBytes - b);
                if (toInterleaved) {
                    MemorySegment.copy(src, plain, dst, woven, bytes);
                } else {
                    MemorySegment.copy(src, woven, dst, plain, bytes);
                }
            }
        }
    }
}
