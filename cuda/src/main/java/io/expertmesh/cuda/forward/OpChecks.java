package io.expertmesh.cuda.forward;

/** Argument checks shared by every {@link DeviceOps}: a wrong size is a clear error, never a read past a tensor. */
final class OpChecks {
    private OpChecks() {
    }

    static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException(message);
        }
    }

    static void positive(String what, int... values) {
        for (int v : values) {
            require(v > 0, what + " must be positive, got " + v);
        }
    }

    /** The tensor is of {@code kind} and holds at least {@code elements}. */
    static void fits(DeviceTensor t, DeviceTensor.Kind kind, long elements, String what) {
        require(t != null, what + " is missing");
        require(t.kind() == kind, what + " must be " + kind + ", got " + t.kind());
        require(t.length() >= elements, what + " needs " + elements + " elements; the tensor holds " + t.length());
    }

    /** A weight: F32 or BF16, at least {@code elements}. */
    static void weight(DeviceTensor t, long elements, String what) {
        require(t != null, what + " is missing");
        require(t.kind() == DeviceTensor.Kind.F32 || t.kind() == DeviceTensor.Kind.BF16,
                what + " must be F32 or BF16, got " + t.kind());
        require(t.length() >= elements, what + " needs " + elements + " elements; the tensor holds " + t.length());
    }

    /** Last element touched by a strided [rows, heads, n] view, plus one. */
    static long extent(int rows, int rowStride, int heads, int headStride, int offset, int n) {
        return (long) (rows - 1) * rowStride + (long) (heads - 1) * headStride + offset + n;
    }
}
