package io.expertmesh.cuda.forward;

import io.expertmesh.cuda.DeviceBuffer;

/**
 * A {@link DeviceTensor} of {@link CudaOps}: one {@link DeviceBuffer} of {@code length} elements of {@code kind}
 * (the buffer is rounded up to whole 4-byte words so a bf16 tensor of odd length is zeroed completely).
 */
public final class CudaTensor implements DeviceTensor {
    private final Kind kind;
    private final long length;
    private final DeviceBuffer buffer;
    private boolean closed;

    CudaTensor(Kind kind, long length) {
        OpShapes.tensor(kind, length);
        this.kind = kind;
        this.length = length;
        this.buffer = DeviceBuffer.allocate((length * kind.bytes() + 3) / 4 * 4);
    }

    @Override
    public Kind kind() {
        return kind;
    }

    @Override
    public long length() {
        return length;
    }

    /** The device memory (for launchers outside {@link CudaOps}, e.g. the benchmark). */
    public DeviceBuffer buffer() {
        if (closed) {
            throw new IllegalStateException("tensor already closed");
        }
        return buffer;
    }

    boolean closed() {
        return closed;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            buffer.close();
        }
    }

    @Override
    public String toString() {
        return "CudaTensor[" + kind + " x " + length + (closed ? ", closed" : "") + "]";
    }
}
