package io.expertmesh.cuda.forward;

/** A {@link DeviceTensor} of {@link HostOps}: one Java array. */
final class HostTensor implements DeviceTensor {
    final Kind kind;
    final float[] f;
    final short[] h;
    final int[] i;

    HostTensor(Kind kind, long length) {
        if (length <= 0 || length > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("host tensor length must be in [1, 2^31 - 16], got " + length);
        }
        this.kind = kind;
        int n = (int) length;
        this.f = kind == Kind.F32 ? new float[n] : null;
        this.h = kind == Kind.BF16 ? new short[n] : null;
        this.i = kind == Kind.I32 ? new int[n] : null;
    }

    @Override
    public Kind kind() {
        return kind;
    }

    @Override
    public long length() {
        return switch (kind) {
            case F32 -> f.length;
            case BF16 -> h.length;
            case I32 -> i.length;
        };
    }

    /** Element j as float (F32, or BF16 widened). */
    float get(long j) {
        return kind == Kind.F32 ? f[(int) j] : io.expertmesh.core.tensor.Bf16.toFloat(h[(int) j]);
    }

    @Override
    public void close() {
        // Garbage-collected.
    }
}
