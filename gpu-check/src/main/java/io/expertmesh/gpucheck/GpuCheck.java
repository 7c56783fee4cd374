package io.expertmesh.gpucheck;

import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.synthetic.SyntheticModels;
import io.expertmesh.cuda.CudaDevice;
import io.expertmesh.cuda.CudaKernelCatalog;
import io.expertmesh.cuda.CudaKernels;
import io.expertmesh.cuda.CudaProbe;
import io.expertmesh.cuda.forward.CudaOps;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * The GPU host's check without Maven or JUnit: every kernel against its CPU reference ({@link KernelChecks}),
 * every operation of the device-resident forward pass against the host emulation ({@link ForwardOpsChecks}),
 * then greedy generation on each fixture model directory given, GPU against CPU: with CudaKernels under core's
 * forward pass ({@link GreedyComparison}) and with the device-resident forward pass on CudaOps
 * ({@link DeviceForwardCheck}). Exit 0 when everything passed, 1 when something failed, 3 when there is no
 * usable GPU. Usage: {@code GpuCheck [--seed S] [MODEL_DIR ...]}, or {@code GpuCheck --sanitize REGEX} to run only
 * {@link KernelChecks#sanitizerCases()} whose name matches (for compute-sanitizer; see deploy/gpu/sanitize.sh).
 */
public final class GpuCheck {
    private GpuCheck() {
    }

    public static void main(String[] args) throws Exception {
        long seed = System.nanoTime();
        String sanitize = null;
        List<Path> models = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--seed")) {
                seed = Long.parseLong(args[++i]);
            } else if (args[i].equals("--sanitize")) {
                sanitize = args[++i];
            } else {
                models.add(Path.of(args[i]));
            }
        }
        System.out.println("kernels: " + CudaKernelCatalog.get().describe());
        CudaProbe probe = CudaDevice.probe();
        System.out.println("device:  " + probe.describe());
        if (!probe.available()) {
            System.exit(3);
        }
        System.out.println("seed:    " + seed);
        if (sanitize != null) {
            System.exit(sanitizerCases(seed, sanitize));
        }
        List<CheckResult> results = new ArrayList<>();
        for (CheckResult r : new KernelChecks(CudaDevice.get(), seed).all()) {
            System.out.println(r);
            results.add(r);
        }
        try (ForwardOpsChecks forward = new ForwardOpsChecks(CudaDevice.get(), seed)) {
            for (CheckResult r : forward.all()) {
                System.out.println(r);
                results.add(r);
            }
        }
        int[] prompt = {1, 17, 42, 99, 5, 200, 3, 77};  // inside every fixture vocabulary (256)
        for (Path dir : models) {
            if (!Files.isDirectory(dir)) {
                throw new IllegalArgumentException("model directory " + dir + " does not exist");
            }
            try (ComputePool pool = ComputePool.create(Runtime.getRuntime().availableProcessors());
                 CudaKernels gpu = new CudaKernels(pool)) {
                CheckResult r = GreedyComparison.compare(dir, gpu, new VectorKernels(pool), prompt, 16);
                System.out.println(r);
                results.add(r);
            }
            try (ComputePool pool = ComputePool.create(Runtime.getRuntime().availableProcessors());
                 CudaOps ops = new CudaOps(CudaDevice.get())) {
                CheckResult r = DeviceForwardCheck.compare(dir, ops, new VectorKernels(pool), prompt, 16, 4);
                System.out.println(r);
                results.add(r);
                r = DeviceExpertsCheck.compare(dir, ops, new VectorKernels(pool), seed);
                System.out.println(r);
                results.add(r);
            }
        }
        // V3's attention shapes: the whole pass through the fast tensor-core MLA kernel, then the generic one.
        Path v3 = Files.createTempDirectory("expertmesh-v3-attention");
        SyntheticModels.writeModel(SyntheticModels.v3AttentionConfig(), seed, v3);
        for (boolean fast : new boolean[]{true, false}) {
            try (ComputePool pool = ComputePool.create(Runtime.getRuntime().availableProcessors());
                 CudaOps ops = new CudaOps(CudaDevice.get(), fast)) {
                // Random weights: near-tied top logits; the fast kernel rounds q and P to bf16. Logits decide.
                CheckResult r = DeviceForwardCheck.compare(v3, ops, new VectorKernels(pool), prompt, 16, 4, false);
                r = new CheckResult(r.name() + (fast ? " (fast MLA)" : " (generic MLA)"), r.error(), r.tolerance(),
                        r.detail());
                System.out.println(r);
                results.add(r);
            }
        }
        System.exit(verdict(results));
    }

    /** Runs the sanitizer cases whose name matches {@code filter}; the exit code. */
    private static int sanitizerCases(long seed, String filter) {
        Pattern p = Pattern.compile(filter);
        List<CheckResult> results = new ArrayList<>();
        new KernelChecks(CudaDevice.get(), seed).sanitizerCases().forEach((name, check) -> {
            if (p.matcher(name).find()) {
                CheckResult r = check.get();
                System.out.println(name + ": " + r);
                results.add(r);
            }
        });
        if (results.isEmpty()) {
            System.out.println("no sanitizer case matches " + filter);
            return 2;
        }
        return verdict(results);
    }

    private static int verdict(List<CheckResult> results) {
        long failed = results.stream().filter(r -> !r.passed()).count();
        System.out.println(failed == 0 ? "ALL " + results.size() + " GPU CHECKS PASSED"
                : failed + " OF " + results.size() + " GPU CHECKS FAILED");
        return failed == 0 ? 0 : 1;
    }
}
