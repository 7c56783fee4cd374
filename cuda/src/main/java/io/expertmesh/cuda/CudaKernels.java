package io.expertmesh.cuda;

import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;

import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Fp8Matrix;
import io.expertmesh.core.tensor.InterleavedRows;
import io.expertmesh.core.tensor.Matrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashMap;
import java.util.Map;
import jcuda.Pointer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * core's {@link Kernels} seam on the GPU: the matrix products (the forward pass's weight traffic, all but a few
 * percent of its time) run in {@code linear.cu} with each weight uploaded to device memory once, on first use,
 * and kept there; activations are copied in and out per call.
 *
 * <p>The seam passes host {@code float[]} activations per primitive, so the small row operations (norms, RoPE,
 * softmax, the attention dot products) stay on the CPU kernels: a round trip per 576-element row would cost more
 * than the work. The products use float32 activations and accumulation, so logits match the CPU to float32
 * rounding and greedy tokens are the same. Calls are serialised (one device, one stream). One instance serves
 * one loaded model: weights are cached by the address of their mapped bytes, so a model closed and another
 * mapped at the same address must get a new instance (close this one).
 *
 * <p>Why this exists beside {@link io.expertmesh.cuda.forward.DeviceForward}, which is the GPU serving path
 * ({@code --device cuda} for run, serve and worker): it runs the CPU forward pass with only the products swapped,
 * so {@code bench-model}'s per-kernel table and {@code GpuCheck} can compare each GPU product with its CPU twin
 * inside an otherwise identical model; nothing serves through it.
 */
public final class CudaKernels implements Kernels, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(CudaKernels.class);
    private static final long UPLOAD_CHUNK = 64L << 20;

    private final Kernels cpu;
    private final CudaDevice device;
    private final LinearOps linear;
    private final Map<WeightKey, DeviceBuffer> weights = new HashMap<>();
    private DeviceBuffer xBuf;
    private DeviceBuffer outBuf;
    private long weightBytes;

    /** Identity of a weight's memory: the same mapped bytes are uploaded once however many Matrix views name them. */
    private record WeightKey(Object heapBase, long address, long bytes, DType dtype) {
    }

    /** Throws {@link CudaException} with the probe's reason when there is no usable GPU. */
    public CudaKernels(ComputePool pool) {
        this.device = CudaDevice.get();
        this.cpu = new VectorKernels(pool);
        this.linear = new LinearOps(device);
    }

    @Override
    public ComputePool pool() {
        return cpu.pool();
    }

    @Override
    public synchronized void matmul(Matrix w, float[] x, int xOff, float[] out, int outOff, int batch) {
        device.makeCurrent();
        DeviceBuffer dw = weight(w);
        xBuf = atLeast(xBuf, (long) batch * w.cols());
        outBuf = atLeast(outBuf, (long) batch * w.rows());
        xBuf.upload(x, xOff, batch * w.cols());
        // FP8 is uploaded as its BF16 copy (weight()).
        linear.linear(dw, w.dtype() == DType.BF16 || w.dtype() == DType.F8_E4M3, xBuf, outBuf, w.rows(), w.cols(),
                batch);
        // cuMemcpyDtoH waits for the kernel; a failed launch surfaces here as a CUDA error.
        outBuf.download(out, outOff, batch * w.rows());
    }

    @Override
    public void matmulRows(Matrix w, int rowFrom, int rowTo, float[] x, int xOff, float[] out, int outOff,
                           int batch) {
        // The GPU computes all rows in one launch; only the requested ones are written back.
        float[] full = new float[batch * w.rows()];
        matmul(w, x, xOff, full, 0, batch);
        for (int b = 0; b < batch; b++) {
            System.arraycopy(full, b * w.rows() + rowFrom, out, outOff + b * w.rows() + rowFrom, rowTo - rowFrom);
        }
    }

    private DeviceBuffer weight(Matrix w) {
        if (w.dtype().blockQuantized()) {
            throw new IllegalArgumentException(w.name() + " is " + w.dtype() + " (--quantize int8/int4), which only "
                    + "the CPU kernels read; load the model with --quantize none for the GPU");
        }
        MemorySegment seg = w.data();
        WeightKey key = new WeightKey(seg.heapBase().orElse(null), seg.address(), seg.byteSize(), w.dtype());
        DeviceBuffer b = weights.get(key);
        if (b == null) {
            // Keyed by the host matrix, converted (interleaved rows to plain ones, FP8 to BF16) only when first
            // uploaded.
            Matrix plain = InterleavedRows.rowMajor(w);
            seg = plain.dtype() == DType.F8_E4M3 ? Fp8Matrix.toBf16(plain, Arena.ofAuto()).data() : plain.data();
            b = DeviceBuffer.allocate(seg.byteSize());
            // Chunked through the heap: a mapped segment has no JCuda Pointer, and one copy of a whole
            // multi-gigabyte tensor would not fit a Java array.
            for (long o = 0; o < seg.byteSize(); o += UPLOAD_CHUNK) {
                long n = Math.min(UPLOAD_CHUNK, seg.byteSize() - o);
                byte[] chunk = seg.asSlice(o, n).toArray(ValueLayout.JAVA_BYTE);
                cuMemcpyHtoD(b.pointer().withByteOffset(o), Pointer.to(chunk), n);
            }
            weights.put(key, b);
            weightBytes += seg.byteSize();
            if (weights.size() % 64 == 0) {
                LOG.debug("{} weights uploaded, {} MiB of device memory", weights.size(), weightBytes >> 20);
            }
        }
        return b;
    }

    private static DeviceBuffer atLeast(DeviceBuffer b, long floats) {
        if (b != null && b.bytes() >= floats * 4) {
            return b;
        }
        if (b != null) {
            b.close();
        }
        // Grow geometrically so a batch that creeps up does not reallocate every step.
        return DeviceBuffer.allocate(Math.max(floats * 4, b == null ? 0 : b.bytes() * 2));
    }

    /** Weights uploaded so far and the device memory they take. */
    public synchronized String residency() {
        return weights.size() + " weights, " + (weightBytes >> 20) + " MiB on " + device.info().name();
    }

    @Override
    public float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        return cpu.dot(a, aOff, b, bOff, n);
    }

    @Override
    public void dotRows(float[] q, int qOff, float[] k, int kOff, int stride, int count, int dim, float scale,
                        float[] out, int outOff) {
        cpu.dotRows(q, qOff, k, kOff, stride, count, dim, scale, out, outOff);
    }

    @Override
    public void axpyRows(float[] w, int wOff, float[] v, int vOff, int stride, int count, int dim, float[] y,
                         int yOff) {
        cpu.axpyRows(w, wOff, v, vOff, stride, count, dim, y, yOff);
    }

    @Override
    public void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
        cpu.axpy(alpha, x, xOff, y, yOff, n);
    }

    @Override
    public void rmsNorm(float[] x, int xOff, float[] weight, float eps, float[] out, int outOff, int n) {
        cpu.rmsNorm(x, xOff, weight, eps, out, outOff, n);
    }

    @Override
    public void swiglu(float[] gate, int gateOff, float[] up, int upOff, float[] out, int outOff, int n) {
        cpu.swiglu(gate, gateOff, up, upOff, out, outOff, n);
    }

    @Override
    public void softmax(float[] x, int off, int n) {
        cpu.softmax(x, off, n);
    }

    @Override
    public void ropeInterleaved(float[] x, int off, int dim, float[] cos, float[] sin, int csOff) {
        cpu.ropeInterleaved(x, off, dim, cos, sin, csOff);
    }

    @Override
    public void ropeHalf(float[] x, int off, int dim, float[] cos, float[] sin, int csOff) {
        cpu.ropeHalf(x, off, dim, cos, sin, csOff);
    }

    @Override
    public synchronized void close() {
        weights.values().forEach(DeviceBuffer::close);
        weights.clear();
        if (xBuf != null) {
            xBuf.close();
        }
        if (outBuf != null) {
            outBuf.close();
        }
        xBuf = null;
        outBuf = null;
    }
}
