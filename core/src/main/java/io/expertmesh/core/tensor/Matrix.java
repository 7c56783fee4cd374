package io.expertmesh.core.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * A dense row-major weight matrix of {@code rows × cols} elements stored in {@code data}, little-endian.
 *
 * <p>Kernels read {@link DType#F32}, {@link DType#BF16} and {@link DType#I8}; the loader converts other checkpoint
 * types (F16, FP8 with block scales) into one of these once, at load. The segment is usually a slice of a
 * memory-mapped checkpoint file, so a matrix costs no heap.
 *
 * <p>An {@link DType#I8} matrix (made by {@link Int8Quantizer}) keeps its int8 values row by row in {@code data}
 * (interleaved within 64-column groups, see {@link Int8Quantizer}) and its per-block F32 scales in
 * {@code scales}: {@code rows × (cols / block)} floats, row-major, block
 * {@code j} of row {@code r} covering columns {@code [j·block, (j+1)·block)}. Separate arrays (not llama.cpp's
 * interleaved 34-byte blocks) keep the value loads aligned full vectors. {@code scales} is null for other types.
 */
public record Matrix(String name, DType dtype, int rows, int cols, MemorySegment data, MemorySegment scales) {
    private static final ValueLayout.OfFloat SCALE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public Matrix {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(data, "data");
        if (dtype != DType.F32 && dtype != DType.BF16 && dtype != DType.I8) {
            throw new IllegalArgumentException(name + ": kernels read F32, BF16 or I8 matrices, not " + dtype);
        }
        if (rows <= 0 || cols <= 0) {
            throw new IllegalArgumentException(name + ": bad shape " + rows + "x" + cols);
        }
        if (data.byteSize() != (long) rows * cols * dtype.bytes()) {
            throw new IllegalArgumentException(name + ": " + data.byteSize() + " bytes do not hold "
                    + rows + "x" + cols + " " + dtype);
        }
        if (dtype == DType.I8) {
            Objects.requireNonNull(scales, name + ": an I8 matrix needs its block scales");
            long perRow = scales.byteSize() / Float.BYTES / rows;
            if (perRow <= 0 || scales.byteSize() != perRow * rows * Float.BYTES || cols % perRow != 0) {
                throw new IllegalArgumentException(name + ": " + scales.byteSize() + " bytes of scales do not "
                        + "divide " + rows + "x" + cols + " into whole blocks");
            }
        } else if (scales != null) {
            throw new IllegalArgumentException(name + ": only I8 matrices have block scales");
        }
    }

    /** An unquantized (F32 or BF16) matrix. */
    public Matrix(String name, DType dtype, int rows, int cols, MemorySegment data) {
        this(name, dtype, rows, cols, data, null);
    }

    /** Columns per scale block of an {@link DType#I8} matrix. */
    public int block() {
        if (dtype != DType.I8) {
            throw new IllegalStateException(name + " is " + dtype + ", not block-quantized");
        }
        return (int) (cols / (scales.byteSize() / Float.BYTES / rows));
    }

    /** Bytes a full pass over this matrix reads (values and, for I8, scales). */
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
            default -> throw new IllegalStateException();
        };
    }

    /** Scale of block {@code j} of row {@code r} of an {@link DType#I8} matrix. */
    public float scale(int r, int j) {
        int perRow = cols / block();
        return scales.getAtIndex(SCALE, (long) r * perRow + j);
    }

    /** Rows [from, from + count) as a matrix sharing this one's memory. */
    public Matrix rowSlice(int from, int count, String sliceName) {
        long rowBytes = (long) cols * dtype.bytes();
        MemorySegment s = null;
        if (dtype == DType.I8) {
            long scaleRowBytes = (long) (cols / block()) * Float.BYTES;
            s = scales.asSlice(from * scaleRowBytes, count * scaleRowBytes);
        }
        return new Matrix(sliceName, dtype, count, cols, data.asSlice(from * rowBytes, count * rowBytes), s);
    }
}
