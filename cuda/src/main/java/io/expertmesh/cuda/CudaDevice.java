package io.expertmesh.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuInit;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;
import java.util.List;
import java.util.Map;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The GPU this process uses (device 0, its primary context) and the kernels loaded on it.
 *
 * <p>{@link #probe()} runs once per process and caches its answer. Without the driver library the first JCuda
 * call throws {@link UnsatisfiedLinkError} and every later touch of the class {@link NoClassDefFoundError}, so the
 * probe catches {@link LinkageError} and nothing else in this package touches JCuda before the probe said yes.
 * The answer is logged once. A jar built without nvcc has no kernels: that is also "no GPU", with that reason.
 *
 * <p>All modules are loaded by the probe, so a driver that refuses one is found at start-up, not at the first
 * forward pass. On compute capability 9.x the probe loads the packaged fatbin: on 9.0 the driver runs its sm_90
 * machine code as built (what {@code ptxas.txt} in the jar reports: no JIT at start-up), on later 9.x it
 * JIT-compiles the compute_90 PTX inside. On 8.x it JIT-compiles the compute_80 PTX. Each kernel the launchers use
 * ({@link KernelSpecs}) is resolved and checked against its PTX parameters here, once ({@link #kernel}). Any
 * thread may launch: the context is made current on first use, and each thread fills its own argument block.
 */
public final class CudaDevice {
    private static final Logger LOG = LoggerFactory.getLogger(CudaDevice.class);
    /** The legacy default stream (handle 0): every launch, copy and timing event uses it, so they are ordered. */
    public static final CUstream DEFAULT_STREAM = new CUstream();
    private static CudaProbe probe;
    private static CudaDevice instance;

    private final CudaProbe info;
    private final CUcontext context;
    /** Every kernel of {@link KernelSpecs#ALL}, resolved and checked against the PTX when the modules loaded. */
    private final Map<String, CudaKernel> kernels = new HashMap<>();
    private final ThreadLocal<Boolean> current = ThreadLocal.withInitial(() -> false);
    /** Each launching thread's argument block, reused for all its launches. */
    private final ThreadLocal<CudaKernel.Launch> launchState =
            ThreadLocal.withInitial(() -> new CudaKernel.Launch(this));
    private final LongAdder launches = new LongAdder();
    private final LongAdder copiesToDevice = new LongAdder();
    private final LongAdder copiesToHost = new LongAdder();
    private final LongAdder syncs = new LongAdder();
    /** Work was launched since the last wait: a wait with nothing launched since is skipped (and not counted). */
    private final AtomicBoolean pending = new AtomicBoolean();

    private CudaDevice(CudaProbe info, CUcontext context, Map<String, CUfunction> functions) {
        this.info = info;
        this.context = context;
        for (KernelSpec spec : KernelSpecs.ALL) {
            kernels.put(spec.name(), new CudaKernel(this, spec, functions.get(spec.name())));
        }
    }

    /** Probes once (later calls return the cached answer); never throws. */
    public static synchronized CudaProbe probe() {
        if (probe == null) {
            probe = runProbe(CudaKernelCatalog.get());
            if (probe.available()) {
                LOG.info("GPU: {}; {}", probe.describe(), CudaKernelCatalog.get().describe());
            } else {
                LOG.info("GPU: {}", probe.describe());
            }
        }
        return probe;
    }

    public static boolean available() {
        return probe().available();
    }

    /** The device; throws {@link CudaException} with the probe's reason when there is none. */
    public static CudaDevice get() {
        CudaProbe p = probe();
        if (!p.available()) {
            throw new CudaException(p.describe());
        }
        return instance;
    }

    public CudaProbe info() {
        return info;
    }

    /** The probe proper; package-private so a test can show that a jar without kernels is "no GPU". */
    static CudaProbe runProbe(CudaKernelCatalog catalog) {
        if (!catalog.hasKernels()) {
            return CudaProbe.none(catalog.describe());
        }
        try {
            JCudaDriver.setExceptionsEnabled(true);
            cuInit(0);
            int[] count = {0};
            cuDeviceGetCount(count);
            if (count[0] == 0) {
                return CudaProbe.none("the CUDA driver reports no device");
            }
            CUdevice dev = new CUdevice();
            cuDeviceGet(dev, 0);
            byte[] nameBytes = new byte[256];
            cuDeviceGetName(nameBytes, nameBytes.length, dev);
            String name = new String(nameBytes, StandardCharsets.US_ASCII).replace("\0", "").strip();
            int major = attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
            int minor = attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
            if (major < 8) {
                return CudaProbe.none(name + " has compute capability " + major + "." + minor
                        + "; the kernels need 8.0 or newer");
            }
            CudaProbe found = new CudaProbe(null, name, major, minor,
                    attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT),
                    attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN));
            CUcontext ctx = new CUcontext();
            cuDevicePrimaryCtxRetain(ctx, dev);
            cuCtxSetCurrent(ctx);
            Map<String, CUfunction> fns = new HashMap<>();
            Map<String, List<String>> params = new HashMap<>();
            List<String> loaded = new ArrayList<>();
            for (String module : catalog.modules()) {
                CUmodule m = new CUmodule();
                byte[] fatbin = found.ptxTarget().equals("sm_90") ? catalog.fatbin(module) : null;
                String file = module + "." + found.ptxTarget() + ".ptx";
                if (fatbin != null) {
                    try {
                        // cuModuleLoadData takes a fatbin as well as PTX; it picks the SASS matching the device.
                        cuModuleLoadData(m, fatbin);
                        file = module + ".sm_90.fatbin";
                    } catch (jcuda.CudaException e) {
                        // Not fatal while the PTX loads: the same code, JIT-compiled by the driver.
                        LOG.warn("GPU: the driver rejected {}.sm_90.fatbin ({}); JIT-compiling its PTX", module,
                                e.getMessage());
                        m = new CUmodule();
                        fatbin = null;
                    }
                }
                if (fatbin == null) {
                    try {
                        cuModuleLoadData(m, catalog.ptx(module, found.ptxTarget()));
                    } catch (jcuda.CudaException e) {
                        return CudaProbe.none("the driver rejected module " + file + ": " + e.getMessage());
                    }
                }
                loaded.add(file);
                String text = new String(catalog.ptx(module, found.ptxTarget()), StandardCharsets.US_ASCII);
                for (String entry : PtxEntries.of(text)) {
                    CUfunction f = new CUfunction();
                    cuModuleGetFunction(f, m, entry);
                    fns.put(entry, f);
                }
                params.putAll(PtxEntries.signatures(text));
            }
            LOG.info("GPU modules loaded: {}", loaded);
            // The launchers' declared parameters against the loaded PTX, once: a launch checks only kinds.
            List<String> wrong = specMismatches(KernelSpecs.ALL, params);
            if (!wrong.isEmpty()) {
                return CudaProbe.none("kernel parameters differ from the launchers': " + String.join("; ", wrong));
            }
            instance = new CudaDevice(found, ctx, fns);
            instance.current.set(true);
            return found;
        } catch (LinkageError e) {
            return CudaProbe.none("CUDA driver not loadable (" + conciseLinkError(e) + ")");
        } catch (jcuda.CudaException e) {
            return CudaProbe.none("CUDA error during start-up: " + e.getMessage());
        } catch (RuntimeException e) {
            return CudaProbe.none("GPU start-up failed: " + e);
        }
    }

    /**
     * JCuda's UnsatisfiedLinkError message holds every load attempt with its stack trace; the line naming the
     * missing library (usually {@code libcuda.so.1: cannot open shared object file}) is the useful part.
     */
    static String conciseLinkError(LinkageError e) {
        String msg = String.valueOf(e.getMessage());
        for (String line : msg.split("\\R")) {
            int i = line.indexOf("cannot open shared object file");
            if (i >= 0) {
                String lib = line.substring(0, Math.max(0, i - 2));
                lib = lib.substring(lib.lastIndexOf(' ') + 1);
                return lib.replaceAll(":$", "") + ": cannot open shared object file";
            }
        }
        return e.getClass().getSimpleName() + ": " + msg.lines().findFirst().orElse("");
    }

    private static int attribute(CUdevice dev, int attr) {
        int[] v = {0};
        cuDeviceGetAttribute(v, attr, dev);
        return v[0];
    }

    /** Makes the context current on the calling thread (once per thread). */
    public void makeCurrent() {
        if (!current.get()) {
            cuCtxSetCurrent(context);
            current.set(true);
        }
    }

    /**
     * Each spec that the PTX signatures ({@link PtxEntries#signatures}, by kernel name) do not take, as a message;
     * empty when all fit. Run on the loaded modules at start-up (and by the tests on the packaged PTX).
     */
    static List<String> specMismatches(List<KernelSpec> specs, Map<String, List<String>> ptxSignatures) {
        List<String> wrong = new ArrayList<>();
        for (KernelSpec spec : specs) {
            String bad = spec.mismatch(ptxSignatures.get(spec.name()));
            if (bad != null) {
                wrong.add(bad);
            }
        }
        return wrong;
    }

    /** The loaded kernel {@code spec} names; launchers look theirs up once, when they are made. */
    public CudaKernel kernel(KernelSpec spec) {
        CudaKernel k = kernels.get(spec.name());
        if (k == null || !k.spec().equals(spec)) {
            throw new CudaException("no kernel " + spec.name() + " declared in KernelSpecs");
        }
        return k;
    }

    CudaKernel.Launch launchState() {
        return launchState.get();
    }

    /** cuLaunchKernel on the default stream with a filled argument block; counted. */
    void issue(CUfunction f, int gx, int gy, int gz, int threads, int sharedBytes, Pointer params) {
        makeCurrent();
        pending.set(true);
        cuLaunchKernel(f, gx, gy, gz, threads, 1, 1, sharedBytes, DEFAULT_STREAM, params, null);
        launches.increment();
    }

    /**
     * Waits for all launched work; throws with the driver's message when a kernel failed. Nothing launched since
     * the last wait: returns at once (a failure of earlier work surfaced at that wait), so the copies of one
     * layer's results wait once.
     */
    public void synchronize() {
        makeCurrent();
        if (pending.getAndSet(false)) {
            cuCtxSynchronize();
            syncs.increment();
        }
    }

    /** Counts a copy the callers made (they copy through JCuda directly, on the default stream). */
    public void countCopy(boolean toDevice) {
        (toDevice ? copiesToDevice : copiesToHost).increment();
    }

    /** Launches, copies and waits so far, over every thread (the difference of two is a step's work). */
    public DeviceCounts counts() {
        return new DeviceCounts(launches.sum(), copiesToDevice.sum(), copiesToHost.sum(), syncs.sum());
    }
}
