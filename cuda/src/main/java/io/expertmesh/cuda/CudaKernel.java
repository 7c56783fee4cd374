package io.expertmesh.cuda;

import static jcuda.driver.JCudaDriver.cuFuncSetAttribute;

import java.util.concurrent.atomic.AtomicInteger;
import jcuda.Pointer;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;

/**
 * One loaded kernel: its function handle and {@link KernelSpec}, resolved once when the modules load (checked
 * against the PTX then), so a launch does no lookup by name and no signature parse. Launchers hold their kernels
 * in fields and launch with {@code kernel.launch(grid, threads, shared).ptr(a).i32(n).go()}: the arguments go
 * straight into the calling thread's native argument block ({@link KernelArgs}), unboxed.
 */
public final class CudaKernel {
    private final CudaDevice device;
    private final KernelSpec spec;
    private final CUfunction function;
    /** Dynamic shared memory this kernel is opted in to (above the 48 KB default); launches come from any thread. */
    private final AtomicInteger sharedOptIn = new AtomicInteger(48 * 1024);

    CudaKernel(CudaDevice device, KernelSpec spec, CUfunction function) {
        this.device = device;
        this.spec = spec;
        this.function = function;
    }

    public String name() {
        return spec.name();
    }

    public KernelSpec spec() {
        return spec;
    }

    /**
     * Starts a launch on a 1-D block of {@code threads} with grid (gx, gy, gz) and {@code sharedBytes} of dynamic
     * shared memory; add the arguments in the kernel's order, then {@link Launch#go()}. Asynchronous: errors of
     * the kernel itself surface at the next {@link CudaDevice#synchronize()}.
     */
    public Launch launch(int gx, int gy, int gz, int threads, int sharedBytes) {
        if (gx < 1 || gy < 1 || gz < 1 || gy > 65_535 || gz > 65_535 || threads < 1 || threads > 1024) {
            throw new CudaException(spec.name() + ": bad launch shape grid (" + gx + ", " + gy + ", " + gz + ") x "
                    + threads + " threads");
        }
        if (sharedBytes > sharedOptIn.get()) {
            optIn(sharedBytes);
        }
        return device.launchState().start(this, gx, gy, gz, threads, sharedBytes);
    }

    private void optIn(int sharedBytes) {
        if (sharedBytes > device.info().maxSharedPerBlockOptin()) {
            throw new CudaException(spec.name() + " needs " + sharedBytes + " bytes of shared memory; "
                    + device.info().name() + " allows " + device.info().maxSharedPerBlockOptin());
        }
        device.makeCurrent();
        cuFuncSetAttribute(function, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                sharedBytes);
        sharedOptIn.accumulateAndGet(sharedBytes, Math::max);
    }

    /**
     * A launch being filled in: one per thread, reused by every launch the thread makes (so a launch abandoned
     * half-way, an argument expression that threw, is simply overwritten by the next).
     */
    public static final class Launch {
        private final CudaDevice device;
        private final KernelArgs args = new KernelArgs();
        /** cuLaunchKernel's kernelParams: the address array of {@link #args}, wrapped once. */
        private final Pointer params = Pointer.to(args.slotsBuffer());
        private CudaKernel kernel;
        private int gx;
        private int gy;
        private int gz;
        private int threads;
        private int shared;

        Launch(CudaDevice device) {
            this.device = device;
        }

        Launch start(CudaKernel k, int gx, int gy, int gz, int threads, int shared) {
            this.kernel = k;
            this.gx = gx;
            this.gy = gy;
            this.gz = gz;
            this.threads = threads;
            this.shared = shared;
            args.reset(k.spec);
            return this;
        }

        public Launch ptr(DeviceBuffer b) {
            args.ptr(b.address());
            return this;
        }

        public Launch i32(int v) {
            args.i32(v);
            return this;
        }

        public Launch f32(float v) {
            args.f32(v);
            return this;
        }

        /** Issues the launch (every argument given). */
        public void go() {
            args.finish();
            CudaKernel k = kernel;
            kernel = null;
            device.issue(k.function, gx, gy, gz, threads, shared, params);
        }
    }
}
