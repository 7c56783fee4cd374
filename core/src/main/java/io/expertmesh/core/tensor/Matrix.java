package io.expertmesh.core.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * A dense row-major weight matrix of {@code rows × cols} elements stored in {@code data}, little-endian.
 *
 * <p>Kernels read {@link DType#F32}, {@link DType#BF16}, {@link DType#I8}, {@link DType#I4} and
 * {@link DType#F8_E4M3}; the loader converts F16 into F32 once, at load. The segment is usually a slice of a
 * memory-mapped checkpoint file, so a matrix costs no heap.
 *
 * <p>An {@link DType#I8} matrix (made by {@link Int8Quantizer}) keeps its int8 values in {@code data}
 * (interleaved within 64-column groups, rows woven in fours, see {@link Int8Quantizer}) and its per-block F32
 * scales in {@code scales}: {@code rows × (cols / block)} floats, row-major, block
 * {@code j} of row {@code r} covering columns {@code [j·block, (j+1)·block)}. Separate arrays (not llama.cpp's
 * interleaved 34-byte blocks) keep the value loads aligned full vectors. An {@link DType#I4} matrix (made by
 * {@link Int4Quantizer}) is laid out the same way with two values per byte ({@code cols / 2} bytes a row, see
 * {@link Int4Quantizer} for the order) and F16 scales.
 *
 * <p>An {@link DType#F8_E4M3} matrix (DeepSeek-V3's format, kept as the checkpoint stores it) holds its e4m3 bytes
 * in plain row-major order in {@code data}, usually the mapped file itself, and in {@code scales} the F32 grid of
 * one multiplier per {@link #FP8_BLOCK}×{@link #FP8_BLOCK} block: {@code ⌈rows/128⌉ × ⌈cols/128⌉} floats,
 * row-major, each the checkpoint's {@code weight_scale_inv} times {@link Fp8E4M3#SCALE_FOLD} (2^120), so that
 * element (r, c) is {@code widened(data[r][c]) · scales[r/128][c/128]} with {@link Fp8E4M3#widenedBits}: the
 * exact product {@code e4m3 · scale_inv}, rounded once to float. {@code scales} is null for F32 and BF16.
 *
 * <p>A BF16 or FP8 matrix is {@code interleaved} when the native kernels will read it ({@link
 * io.expertmesh.core.kernel.Kernels#prepare}): rows woven together in eights (BF16) or fours (FP8), see
 * {@link InterleavedRows}. Its values are the same; {@link #get} reads either layout, code that reads {@code data}
 * by rows must not see it.
 */
public record Matrix(String name, DType dtype, int rows, int cols, MemorySegment data, MemorySegment scales,
                     boolean interleaved) {
    /** Edge of the square blocks of an {@link DType#F8_E4M3} matrix's scale grid (rows and columns). */
    public static final int FP8_BLOCK = 128;

    private static final ValueLayout.OfFloat SCALE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort SCALE16 =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public Matrix {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(data, "data");
        if (dtype != DType.F32 && dtype != DType.BF16 && dtype != DType.F8_E4M3 && !dtype.blockQuantized()) {
            throw new IllegalArgumentException(name + ": kernels read F32, BF16, I8, I4 or F8_E4M3 matrices, not "
                    + dtype);
        }
        if (rows <= 0 || cols <= 0) {
            throw new IllegalArgumentException(name + ": bad shape " + rows + "x" + cols);
        }
        if (dtype == DType.I4 && cols % 2 != 0) {
            throw new IllegalArgumentException(name + ": an I4 row packs two columns per byte, " + cols + " is odd");
        }
        if (data.byteSize() != dtype.bytes((long) rows * cols)) {
            throw new IllegalArgumentException(name + ": " + data.byteSize() + " bytes do not hold "
                    + rows + "x" + cols + " " + dtype);
        }
        if (dtype.blockQuantized()) {
            Objects.requireNonNull(scales, name + ": an " + dtype + " matrix needs its block scales");
            int width = scaleBytes(dtype);
            long perRow = scales.byteSize() / width / rows;
            if (perRow <= 0 || scales.byteSize() != perRow * rows * width || cols % perRow != 0) {
                throw new IllegalArgumentException(name + ": " + scales.byteSize() + " bytes of scales do not "
                        + "divide " + rows + "x" + cols + " into whole blocks");
            }
        } else if (dtype == DType.F8_E4M3) {
            Objects.requireNonNull(scales, name + ": an F8_E4M3 matrix needs its block scales");
            long expected = (long) fp8Blocks(rows) * fp8Blocks(cols) * Float.BYTES;
            if (scales.byteSize() != expected) {
                throw new IllegalArgumentException(name + ": " + scales.byteSize() + " bytes of scales, but "
                        + rows + "x" + cols + " in " + FP8_BLOCK + "x" + FP8_BLOCK + " blocks needs " + expected);
            }
        } else if (scales != null) {
            throw new IllegalArgumentException(name + ": only I8, I4 and F8_E4M3 matrices have block scales");
        }
        if (interleaved && InterleavedRows.groupRows(dtype) == 0) {
            throw new IllegalArgumentException(name + ": only BF16 and F8_E4M3 matrices are interleaved, not " + dtype);
        }
    }

    /** A matrix in plain row-major order. */
    public Matrix(String name, DType dtype, int rows, int cols, MemorySegment data, MemorySegment scales) {
        this(name, dtype, rows, cols, data, scales, false);
    }

    /** Blocks of {@link #FP8_BLOCK} covering {@code n} rows or columns. */
    public static int fp8Blocks(int n) {
        return (n + FP8_BLOCK - 1) / FP8_BLOCK;
    }

    /** Bytes of one block scale: F32 for I8, F16 for I4. */
    private static int scaleBytes(DType dtype) {
        return dtype == DType.I4 ? 2 : 4;
    }

    /** An unquantized (F32 or BF16) matrix. */
    public Matrix(String name, DType dtype, int rows, int cols, MemorySegment data) {
        this(name, dtype, rows, cols, data, null, false);
    }

    /** Columns per scale block of an {@link DType#I8}, {@link DType#I4} or {@link DType#F8_E4M3} matrix. */
    public int block() {
        if (dtype == DType.F8_E4M3) {
            return FP8_BLOCK;
        }
        if (!dtype.blockQuantized()) {
            throw new IllegalStateException(name + " is " + dtype + ", not block-quantized");
        }
        return (int) (cols / (scales.byteSize() / scaleBytes(dtype) / rows));
    }

    /** Bytes a full pass over this matrix reads (values and, for I8, I4 and F8_E4M3, scales). */
    public long byteSize() {
        return data.byteSize() + (scales == null ? 0 : scales.byteSize());
    }

    /** Element (r, c) as float; for tests and reference code, not hot loops. */
    public float get(int r, int c) {
        long i = (long) r * cols + c;
        return switch (dtype) {
            case F32 -> data.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
            case BF16 -> Bf16.toFloat(interleaved
                    ? data.get(ValueLayout.JAVA_SHORT_UNALIGNED, InterleavedRows.byteOffset(this, r, 2L * c))
                    : data.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i));
            case I8 -> data.get(ValueLayout.JAVA_BYTE, Int8Quantizer.offset(rows, cols, r, c))
                    * scale(r, c / block());
            case I4 -> Int4Quantizer.value(data, rows, cols, r, c) * scale(r, c / block());
            case F8_E4M3 -> Float.intBitsToFloat(Fp8E4M3.widenedBits(data.get(ValueLayout.JAVA_BYTE,
                    interleaved ? InterleavedRows.byteOffset(this, r, c) : i)))
                    * scales.getAtIndex(SCALE, (long) (r / FP8_BLOCK) * fp8Blocks(cols) + c / FP8_BLOCK);
            default -> throw new IllegalStateException();
        };
    }

    /**
     * Scale of block {@code j} of row {@code r} of an {@link DType#I8} or {@link DType#I4} matrix; of an
     * {@link DType#F8_E4M3} one, the folded multiplier of the block holding row {@code r} and columns
     * {@code [128j, 128j+128)}.
     */
    public float scale(int r, int j) {
        if (dtype == DType.F8_E4M3) {
            return scales.getAtIndex(SCALE, (long) (r / FP8_BLOCK) * fp8Blocks(cols) + j);
        }
        int perRow = cols / block();
        long i = (long) r * perRow + j;
        return dtype == DType.I4 ? Float.float16ToFloat(scales.getAtIndex(SCALE16, i)) : scales.getAtIndex(SCALE, i);
    }

    /**
     * Rows [from, from + count) as a matrix sharing this one's memory. An {@link DType#F8_E4M3} slice must cover
     * whole 128-row blocks of scales (it may end at the last row) or lie inside one: {@link #fp8RowSliceable}; an
     * {@link DType#I4} or {@link DType#I8} slice whole quads of interleaved rows (it may end at the last row); an
     * interleaved BF16 or FP8 matrix is not sliced.
     */
    public Matrix rowSlice(int from, int count, String sliceName) {
        if (interleaved) {
            throw new IllegalArgumentException(name + ": an interleaved matrix is not sliced (slice it before "
                    + "the kernels prepare it)");
        }
        if ((dtype == DType.I4 || dtype == DType.I8) && (from % Int4Quantizer.QUAD != 0
                || (count % Int4Quantizer.QUAD != 0 && from + count != rows))) {
            // Rows are interleaved in fours (Int4Quantizer, Int8Quantizer): a slice must keep whole quads.
            throw new IllegalArgumentException(name + ": rows [" + from + ", " + (from + count) + ") cut through "
                    + "a quad of interleaved " + dtype + " rows");
        }
        long rowBytes = dtype.bytes(cols);
        MemorySegment s = null;
        if (dtype.blockQuantized()) {
            long scaleRowBytes = (long) (cols / block()) * scaleBytes(dtype);
            s = scales.asSlice(from * scaleRowBytes, count * scaleRowBytes);
        } else if (dtype == DType.F8_E4M3) {
            if (!fp8RowSliceable(from, count)) {
                throw new IllegalArgumentException(name + ": rows [" + from + ", " + (from + count) + ") cut through "
                        + "a " + FP8_BLOCK + "-row block of FP8 scales");
            }
            long scaleRowBytes = (long) fp8Blocks(cols) * Float.BYTES;
            s = scales.asSlice(from / FP8_BLOCK * scaleRowBytes, fp8Blocks(count) * scaleRowBytes);
        }
        return new Matrix(sliceName, dtype, count, cols, data.asSlice(from * rowBytes, count * rowBytes), s);
    }

    /**
     * Whether rows [from, from + count) of an FP8 matrix can be a slice with its own scale grid: they start on a
     * scale block and end on one or at the end, or they lie inside one block (whose row of scales is then all the
     * slice's: MLA's per-head pieces of kv_b when a head's dimensions are smaller than a block).
     */
    public boolean fp8RowSliceable(int from, int count) {
        boolean aligned = from % FP8_BLOCK == 0 && (count % FP8_BLOCK == 0 || from + count == rows);
        boolean insideOneBlock = count > 0 && from / FP8_BLOCK == (from + count - 1) / FP8_BLOCK;
        return aligned || insideOneBlock;
    }
}
