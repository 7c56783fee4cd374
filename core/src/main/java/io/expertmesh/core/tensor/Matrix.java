package io.expertmesh.core.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * A dense row-major weight matrix of {@code rows × cols} elements stored in {@code data}, little-endian.
 *
 * <p>Kernels read {@link DType#F32}, {@link DType#BF16}, {@link DType#I8} and {@link DType#I4}; the loader converts
 * other checkpoint types (F16, FP8 with block scales) into one of these once, at load. The segment is usually a
 * slice of a memory-mapped checkpoint file, so a matrix costs no heap.
 *
 * <p>An {@link DType#I8} matrix (made by {@link Int8Quantizer}) keeps its int8 values row by row in {@code data}
 * (interleaved within 64-column groups, see {@link Int8Quantizer}) and its per-block F32 scales in
 * {@code scales}: {@code rows × (cols / block)} floats, row-major, block
 * {@code j} of row {@code r} covering columns {@code [j·block, (j+1)·block)}. Separate arrays (not llama.cpp's
 * interleaved 34-byte blocks) keep the value loads aligned full vectors. An {@link DType#I4} matrix (made by
 * {@link Int4Quantizer}) is laid out the same way with two values per byte ({@code cols / 2} bytes a row, see
 * {@link Int4Quantizer} for the order) and F16 scales. {@code scales} is null for other types.
 */
public record Matrix(String name, DType dtype, int rows, int cols, MemorySegment data, MemorySegment scales) {
    private static final ValueLayout.OfFloat SCALE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort SCALE16 =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public Matrix {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(data, "data");
        if (dtype != DType.F32 && dtype != DType.BF16 && !dtype.blockQuantized()) {
            throw new IllegalArgumentException(name + ": kernels read F32, BF16, I8 or I4 matrices, not " + dtype);
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
        } else if (scales != null) {
            throw new IllegalArgumentException(name + ": only I8 and I4 matrices have block scales");
        }
    }

    /** Bytes of one block scale: F32 for I8, F16 for I4. */
    private static int scaleBytes(DType dtype) {
        return dtype == DType.I4 ? 2 : 4;
    }

    /** An unquantized (F32 or BF16) matrix. */
    public Matrix(String name, DType dtype, int rows, int cols, MemorySegment data) {
        this(name, dtype, rows, cols, data, null);
    }

    /** Columns per scale block of an {@link DType#I8} or {@link DType#I4} matrix. */
    public int block() {
        if (!dtype.blockQuantized()) {
            throw new IllegalStateException(name + " is " + dtype + ", not block-quantized");
        }
        return (int) (cols / (scales.byteSize() / scaleBytes(dtype) / rows));
    }

    /** Bytes a full pass over this matrix reads (values and, for I8 and I4, scales). */
    public long byteSize() {
        return data.byteSize() + (scales == null ? 0 : scales.byteSize());
    }

    /** Element (r, c) as float; for tests and reference code, not hot loops. */
    public float get(int r, int c) {
        long i = (long) r * cols + c;
        return switch (dtype) {
            case F32 -> data.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
            case BF16 -> Bf16.toFloat(data.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i));
            case I8 -> data.get(ValueLayout.JAVA_BYTE, (long) r * cols + Int8Quantizer.position(cols, c))
                    * scale(r, c / block());
            case I4 -> Int4Quantizer.value(data, cols, r, c) * scale(r, c / block());
            default -> throw new IllegalStateException();
        };
    }

    /** Scale of block {@code j} of row {@code r} of an {@link DType#I8} or {@link DType#I4} matrix. */
    public float scale(int r, int j) {
        int perRow = cols / block();
        long i = (long) r * perRow + j;
        return dtype == DType.I4 ? Float.float16ToFloat(scales.getAtIndex(SCALE16, i)) : scales.getAtIndex(SCALE, i);
    }

    /** Rows [from, from + count) as a matrix sharing this one's memory. */
    public Matrix rowSlice(int from, int count, String sliceName) {
        long rowBytes = dtype.bytes(cols);
        MemorySegment s = null;
        if (dtype.blockQuantized()) {
            long scaleRowBytes = (long) (cols / block()) * scaleBytes(dtype);
            s = scales.asSlice(from * scaleRowBytes, count * scaleRowBytes);
        }
        return new Matrix(sliceName, dtype, count, cols, data.asSlice(from * rowBytes, count * rowBytes), s);
    }
}
