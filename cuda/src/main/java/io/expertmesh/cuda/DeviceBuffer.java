package io.expertmesh.cuda;

import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemsetD32;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;

/** Device memory from {@code cuMemAlloc} (256-byte aligned), with typed copies to and from Java arrays. */
public final class DeviceBuffer implements AutoCloseable {
    private final CUdeviceptr ptr;
    /** {@code ptr}'s address, read once, for kernel arguments. */
    private final long address;
    private final long bytes;
    private boolean freed;

    private DeviceBuffer(long bytes) {
        if (bytes <= 0) {
            throw new IllegalArgumentException("buffer size must be positive, got " + bytes);
        }
        CudaDevice.get().makeCurrent();
        this.ptr = new CUdeviceptr();
        this.bytes = bytes;
        cuMemAlloc(ptr, bytes);
        this.address = DeviceAddress.of(ptr);
    }

    public static DeviceBuffer allocate(long bytes) {
        return new DeviceBuffer(bytes);
    }

    public static DeviceBuffer of(float[] a) {
        DeviceBuffer b = new DeviceBuffer((long) a.length * Float.BYTES);
        b.upload(a, 0, a.length);
        return b;
    }

    public static DeviceBuffer of(int[] a) {
        DeviceBuffer b = new DeviceBuffer((long) a.length * Integer.BYTES);
        b.check(b.bytes);
        cuMemcpyHtoD(b.ptr, Pointer.to(a), b.bytes);
        return b;
    }

    /** bf16 values given as their 16-bit patterns. */
    public static DeviceBuffer of(short[] a) {
        DeviceBuffer b = new DeviceBuffer((long) a.length * Short.BYTES);
        cuMemcpyHtoD(b.ptr, Pointer.to(a), b.bytes);
        return b;
    }

    /** Copies raw bytes from a host pointer (e.g. a memory-mapped weight). */
    public static DeviceBuffer of(Pointer host, long bytes) {
        DeviceBuffer b = new DeviceBuffer(bytes);
        cuMemcpyHtoD(b.ptr, host, bytes);
        return b;
    }

    public CUdeviceptr pointer() {
        return ptr;
    }

    /** The device address, for a kernel argument; a freed buffer has none. */
    public long address() {
        if (freed) {
            throw new IllegalStateException("device buffer already freed");
        }
        return address;
    }

    public long bytes() {
        return bytes;
    }

    public void upload(float[] a, int off, int n) {
        check((long) n * Float.BYTES);
        cuMemcpyHtoD(ptr, Pointer.to(a).withByteOffset((long) off * Float.BYTES), (long) n * Float.BYTES);
    }

    public void download(float[] a, int off, int n) {
        check((long) n * Float.BYTES);
        cuMemcpyDtoH(Pointer.to(a).withByteOffset((long) off * Float.BYTES), ptr, (long) n * Float.BYTES);
    }

    public void download(int[] a) {
        check((long) a.length * Integer.BYTES);
        cuMemcpyDtoH(Pointer.to(a), ptr, (long) a.length * Integer.BYTES);
    }

    /** Fills every 32-bit word with {@code v}'s bits (tests poison outputs with NaN). */
    public void fill(float v) {
        check(0);
        cuMemsetD32(ptr, Float.floatToRawIntBits(v), bytes / 4);
    }

    private void check(long n) {
        // Any thread may copy (the engine's step thread is not the loading thread): the context must be current.
        CudaDevice.get().makeCurrent();
        if (freed) {
            throw new IllegalStateException("device buffer already freed");
        }
        if (n > bytes) {
            throw new IllegalArgumentException("copy of " + n + " bytes into a buffer of " + bytes);
        }
    }

    @Override
    public void close() {
        if (!freed) {
            CudaDevice.get().makeCurrent();
            freed = true;
            cuMemFree(ptr);
        }
    }
}
