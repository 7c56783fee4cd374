package io.expertmesh.cuda.forward;

/**
 * A flat array on a compute device: float32, bf16 or int32 elements. What it is backed by (device memory, or Java
 * arrays for the host emulation) is the business of the {@link DeviceOps} that made it; tensors of one ops
 * instance are only ever passed back to that instance.
 */
public interface DeviceTensor extends AutoCloseable {

    /** Element types a device tensor holds. */
    enum Kind {
        F32(4), BF16(2), I32(4);

        private final int bytes;

        Kind(int bytes) {
            this.bytes = bytes;
        }

        public int bytes() {
            return bytes;
        }
    }

    Kind kind();

    /** Number of elements. */
    long length();

    /** Frees the memory; closing twice is harmless. */
    @Override
    void close();
}
