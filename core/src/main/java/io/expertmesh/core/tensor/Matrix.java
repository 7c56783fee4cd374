package io.expertmesh.core.tensor;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * A dense row-major weight matrix of {@code rows × cols} elements stored in {@code data}, little-endian.
 *
 * <p>Kernels read only {@link DType#F32} and {@link DType#BF16}; the loader converts other checkpoint types
 * (F16, FP8 with block scales) into one of these once, at load. The segment is usually a slice of a
 * memory-mapped checkpoint file, so a matrix costs no heap.
 */
public record Matrix(String name, DType dtype, int rows, int cols, MemorySegment data) {

    public Matrix {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(data, "data");
        if (dtype != DType.F32 && dtype != DType.BF16) {
            throw new IllegalArgumentException(name + ": kernels read F32 or BF16 matrices, not " + dtype);
        }
        if (rows <= 0 || cols <= 0) {
            throw new IllegalArgumentException(name + ": bad shape " + rows + "x" + cols);
        }
        if (data.byteSize() != (long) rows * cols * dtype.bytes()) {
            throw new IllegalArgumentException(name + ": " + data.byteSize() + " bytes do not hold "
                    + rows + "x" + cols + " " + dtype);
        }
    }

    /** Bytes a full pass over this matrix reads. */
    public long byteSize() {
        return data.byteSize();
    }

    /** Element (r, c) as float; for tests and reference code, not hot loops. */
    public float get(int r, int c) {
        long i = (long) r * cols + c;
        return switch (dtype) {
            case F32 -> data.getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, i);
            case BF16 -> Bf16.toFloat(data.getAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, i));
            default -> throw new IllegalStateException();
        };
    }

    /** Rows [from, from + count) as a matrix sharing this one's memory. */
    public Matrix rowSlice(int from, int count, String sliceName) {
        long rowBytes = (long) cols * dtype.bytes();
        return new Matrix(sliceName, dtype, count, cols, data.asSlice(from * rowBytes, count * rowBytes));
    }
}
