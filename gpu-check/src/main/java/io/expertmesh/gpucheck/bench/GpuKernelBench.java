package io.expertmesh.gpucheck.bench;

import static jcuda.driver.JCudaDriver.cuMemcpyDtoD;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;

import io.expertmesh.core.tensor.Bf16;
import io.expertmesh.cuda.AttentionOps;
import io.expertmesh.cuda.CudaDevice;
import io.expertmesh.cuda.CudaProbe;
import io.expertmesh.cuda.DeviceBuffer;
import io.expertmesh.cuda.ElementwiseOps;
import io.expertmesh.cuda.LinearOps;
import io.expertmesh.cuda.MlaDecode;
import io.expertmesh.cuda.forward.CudaOps;
import io.expertmesh.cuda.forward.DeviceTensor;
import io.expertmesh.cuda.forward.DeviceTensor.Kind;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import jcuda.Pointer;

/**
 * Kernel benchmark for the GPU host. Measures the device's copy bandwidth first (a 1 GiB device-to-device copy,
 * bytes read + written), then per kernel: median time, the bytes it must move and FLOPs it must do (each input
 * read once, each output written once), achieved GB/s and TFLOP/s, and GB/s as a percentage of the copy
 * bandwidth. MLA decode at batch 64 × 4096 context is the acceptance line (≥ 70 %).
 */
public final class GpuKernelBench {
    private final CudaDevice device;
    private final Random random = new Random(7);
    private final List<DeviceBuffer> buffers = new ArrayList<>();
    private double copyBandwidth;

    private GpuKernelBench(CudaDevice device) {
        this.device = device;
    }

    public static void main(String[] args) {
        CudaProbe probe = CudaDevice.probe();
        System.out.println("device: " + probe.describe());
        if (!probe.available()) {
            System.exit(3);
        }
        // --mla-only: the acceptance kernel's lines (both accumulator versions) and nothing else: the first check
        // on a GPU host has minutes, not the whole table's.
        new GpuKernelBench(CudaDevice.get()).run(args.length > 0 && args[0].equals("--mla-only"));
    }

    private void run(boolean mlaOnly) {
        copyBandwidth = copyBandwidth();
        System.out.printf("device-to-device copy: %.0f GB/s (read + write)%n%n", copyBandwidth / 1e9);
        System.out.printf("%-48s %10s %10s %9s %9s %8s%n", "kernel", "time us", "MB moved", "GB/s", "TFLOP/s",
                "% copy");
        double mla = mlaDecode(64, 4096, 16, 64, false);
        mlaDecode(64, 4096, 16, 64, true);
        if (mlaOnly) {
            verdict(mla);
            return;
        }
        mlaDecode(64, 4096, 128, 64, false);
        mlaDecode(1, 32768, 16, 64, false);
        mlaAttention(64, 4096, 16, 512, 64, 64, true);
        mlaAttention(64, 4096, 16, 512, 64, 64, false);
        mlaAttention(64, 4096, 16, 32, 16, 16, false);
        mlaAttention(4, 1024, 16, 32, 16, 16, false);
        gqaDecode(64, 4096, 32, 8, 128, 16);
        prefill(2048, 16, 16, 128, 128);
        prefill(2048, 16, 16, 192, 128);
        for (int batch : new int[]{1, 8, 16, 64}) {
            linear(7168, 7168, batch, false);
            linear(7168, 7168, batch, true);
        }
        gemm(4096, 7168, 7168);
        groupedGemm(64, 64, 2048, 7168);
        rmsNorm(4096, 7168);
        swiglu(64 << 20);
        topk(4096, 256, 8);
        verdict(mla);
    }

    private void verdict(double mla) {
        System.out.printf("%nMLA decode batch 64 x 4096 context, 16 heads: %.1f%% of measured copy bandwidth "
                + "(target >= 70%%): %s%n", mla * 100, mla >= 0.70 ? "MET" : "NOT MET");
        buffers.forEach(DeviceBuffer::close);
    }

    private DeviceBuffer buffer(long bytes) {
        DeviceBuffer b = DeviceBuffer.allocate(bytes);
        buffers.add(b);
        return b;
    }

    /** bf16 random values (never zeros: zeros can run faster than real data). A 16 MiB pattern tiles the buffer. */
    private DeviceBuffer randomBf16(long elements) {
        DeviceBuffer b = buffer(elements * 2);
        int n = (int) Math.min(elements, 8L << 20);
        short[] p = new short[n];
        for (int i = 0; i < n; i++) {
            p[i] = Bf16.fromFloat((float) random.nextGaussian());
        }
        for (long o = 0; o < elements; o += n) {
            long m = Math.min(n, elements - o);
            cuMemcpyHtoD(b.pointer().withByteOffset(o * 2), Pointer.to(p), m * 2);
        }
        return b;
    }

    private DeviceBuffer randomF32(long elements) {
        DeviceBuffer b = buffer(elements * 4);
        int n = (int) Math.min(elements, 4L << 20);
        float[] p = new float[n];
        for (int i = 0; i < n; i++) {
            p[i] = (float) random.nextGaussian();
        }
        for (long o = 0; o < elements; o += n) {
            long m = Math.min(n, elements - o);
            cuMemcpyHtoD(b.pointer().withByteOffset(o * 4), Pointer.to(p), m * 4);
        }
        return b;
    }

    private DeviceBuffer ints(int[] a) {
        DeviceBuffer b = DeviceBuffer.of(a);
        buffers.add(b);
        return b;
    }

    private double copyBandwidth() {
        long bytes = 1L << 30;
        try (DeviceBuffer a = DeviceBuffer.allocate(bytes); DeviceBuffer b = DeviceBuffer.allocate(bytes)) {
            a.fill(1.5f);
            double t = GpuTimer.median(device, 3, 20, () -> cuMemcpyDtoD(b.pointer(), a.pointer(), bytes));
            return 2.0 * bytes / t;
        }
    }

    /** Prints one line; returns the fraction of copy bandwidth achieved. */
    private double report(String name, double seconds, double bytes, double flops) {
        double gbs = bytes / seconds / 1e9;
        System.out.printf("%-48s %10.1f %10.1f %9.0f %9.2f %7.1f%%%n", name, seconds * 1e6, bytes / 1e6, gbs,
                flops / seconds / 1e12, 100 * bytes / seconds / copyBandwidth);
        return bytes / seconds / copyBandwidth;
    }

    private double mlaDecode(int batch, int len, int heads, int pageSize, boolean smemAccumulators) {
        MlaDecode mla = new MlaDecode(device, smemAccumulators);
        int maxPages = (len + pageSize - 1) / pageSize;
        int pages = batch * maxPages;
        int[] table = new int[pages];
        for (int i = 0; i < pages; i++) {
            table[i] = (int) ((i * 2654435761L) % pages);  // scattered pages, each used once
        }
        int[] lens = new int[batch];
        java.util.Arrays.fill(lens, len);
        DeviceBuffer q = randomBf16((long) batch * heads * MlaDecode.ROW);
        DeviceBuffer cache = randomBf16((long) pages * pageSize * MlaDecode.ROW);
        DeviceBuffer dt = ints(table);
        DeviceBuffer dl = ints(lens);
        int splits = mla.splitsFor(batch, heads, len);
        DeviceBuffer out = buffer((long) batch * heads * MlaDecode.LATENT * 4);
        DeviceBuffer oPart = buffer(MlaDecode.partialFloats(batch, heads, splits) * 4);
        DeviceBuffer lse = buffer((long) batch * heads * splits * 4);
        float scale = (float) (1 / Math.sqrt(192));
        double t = GpuTimer.median(device, 5, 50, () -> mla.run(q, cache, dt, dl, out, oPart, lse, batch, heads,
                maxPages, pageSize, pages, splits, scale));
        double bytes = (double) batch * len * MlaDecode.ROW * 2 + (double) batch * heads * MlaDecode.ROW * 2
                + (double) batch * heads * MlaDecode.LATENT * 4;
        double flops = 2.0 * batch * heads * len * (MlaDecode.ROW + MlaDecode.LATENT);
        double frac = report(String.format("mla_decode B%d L%d H%d %s splits %d", batch, len, heads,
                smemAccumulators ? "smem-O" : "reg-O", splits), t, bytes, flops);
        cache.close();
        buffers.remove(cache);
        return frac;
    }

    /**
     * MLA attention as the device-resident forward pass calls it ({@link CudaOps#mlaAttention}: float32 query).
     * {@code fast}: V3's 512 + 64 on the tensor-core split kernel, the query conversion and merge included;
     * otherwise the generic kernel (one block per token and head, online softmax over 64-position chunks).
     */
    private void mlaAttention(int batch, int len, int heads, int latent, int rope, int blockSize, boolean fast) {
        int row = latent + rope;
        int maxBlocks = (len + blockSize - 1) / blockSize;
        int blocks = batch * maxBlocks;
        int[] table = new int[blocks];
        for (int i = 0; i < blocks; i++) {
            table[i] = (int) ((i * 2654435761L) % blocks);
        }
        int[] lens = new int[batch];
        java.util.Arrays.fill(lens, len);
        try (CudaOps ops = new CudaOps(device, fast);
             DeviceTensor pool = ops.allocate(Kind.BF16, (long) blocks * blockSize * row);
             DeviceTensor q = ops.allocate(Kind.F32, (long) batch * heads * row);
             DeviceTensor out = ops.allocate(Kind.F32, (long) batch * heads * latent);
             DeviceTensor dt = ops.allocate(Kind.I32, blocks);
             DeviceTensor dl = ops.allocate(Kind.I32, batch)) {
            short[] pattern = new short[1 << 22];
            for (int i = 0; i < pattern.length; i++) {
                pattern[i] = Bf16.fromFloat((float) random.nextGaussian());
            }
            for (long o = 0; o < pool.length(); o += pattern.length) {
                ops.copyIn(pattern, 0, pool, o, (int) Math.min(pattern.length, pool.length() - o));
            }
            float[] qv = new float[(int) q.length()];
            for (int i = 0; i < qv.length; i++) {
                qv[i] = (float) random.nextGaussian();
            }
            ops.copyIn(qv, 0, q, 0, qv.length);
            ops.copyIn(table, dt, blocks);
            ops.copyIn(lens, dl, batch);
            float scale = (float) (1 / Math.sqrt(row));
            double t = GpuTimer.median(device, 2, 10, () -> ops.mlaAttention(q, pool, dt, dl, out, batch, heads,
                    latent, rope, maxBlocks, blockSize, scale));
            double bytes = (double) batch * len * row * 2 + (double) batch * heads * (row + latent) * 4;
            double flops = 2.0 * batch * heads * len * (row + latent);
            report(String.format("CudaOps.mla %s B%d L%d H%d %d+%d", fast && latent == 512 && rope == 64 ? "fast"
                    : "generic", batch, len, heads, latent, rope), t, bytes, flops);
        }
    }

    private void gqaDecode(int batch, int len, int heads, int kvHeads, int dim, int pageSize) {
        int maxPages = (len + pageSize - 1) / pageSize;
        int pages = batch * maxPages;
        int[] table = new int[pages];
        for (int i = 0; i < pages; i++) {
            table[i] = (int) ((i * 2654435761L) % pages);
        }
        int[] lens = new int[batch];
        java.util.Arrays.fill(lens, len);
        DeviceBuffer q = randomF32((long) batch * heads * dim);
        DeviceBuffer cache = randomBf16((long) pages * pageSize * 2 * kvHeads * dim);
        DeviceBuffer dt = ints(table);
        DeviceBuffer dl = ints(lens);
        DeviceBuffer out = buffer((long) batch * heads * dim * 4);
        AttentionOps ops = new AttentionOps(device);
        float scale = (float) (1 / Math.sqrt(dim));
        double t = GpuTimer.median(device, 3, 20, () -> ops.gqaDecode(q, cache, dt, dl, out, batch, heads, kvHeads,
                dim, maxPages, pageSize, pages, scale));
        double bytes = (double) batch * len * 2 * kvHeads * dim * 2 + 2.0 * batch * heads * dim * 4;
        report(String.format("gqa_decode B%d L%d H%d/%d D%d", batch, len, heads, kvHeads, dim), t, bytes,
                4.0 * batch * heads * len * dim);
        cache.close();
        buffers.remove(cache);
    }

    private void prefill(int tokens, int heads, int kvHeads, int dk, int dv) {
        DeviceBuffer q = randomBf16((long) tokens * heads * dk);
        DeviceBuffer k = randomBf16((long) tokens * kvHeads * dk);
        DeviceBuffer v = randomBf16((long) tokens * kvHeads * dv);
        DeviceBuffer out = buffer((long) tokens * heads * dv * 4);
        AttentionOps ops = new AttentionOps(device);
        float scale = (float) (1 / Math.sqrt(dk));
        double t = GpuTimer.median(device, 2, 10, () -> ops.prefill(q, k, v, out, tokens, 0, heads, kvHeads, dk, dv,
                scale));
        double bytes = 2.0 * tokens * (heads * dk + kvHeads * (dk + dv)) + 4.0 * tokens * heads * dv;
        // causal: half of the T x T score matrix
        double flops = 2.0 * heads * (double) tokens * tokens / 2 * (dk + dv);
        report(String.format("prefill_causal T%d H%d/%d D%d/%d", tokens, heads, kvHeads, dk, dv), t, bytes, flops);
    }

    /** Both product kernels at one batch size: where they cross sets {@code LinearOps.STAGED_ABOVE_BATCH}. */
    private void linear(int rows, int cols, int batch, boolean staged) {
        DeviceBuffer w = randomBf16((long) rows * cols);
        DeviceBuffer x = randomF32((long) batch * cols);
        DeviceBuffer out = buffer((long) batch * rows * 4);
        LinearOps ops = new LinearOps(device);
        double t = GpuTimer.median(device, 5, 50, () -> ops.linear(w, true, x, out, rows, cols, batch, staged));
        report(String.format("linear_bf16w_f32%s %dx%d batch %d", staged ? "_xs" : "", rows, cols, batch), t,
                2.0 * rows * cols + 4.0 * batch * (rows + cols), 2.0 * rows * cols * batch);
    }

    private void gemm(int m, int n, int k) {
        DeviceBuffer a = randomBf16((long) m * k);
        DeviceBuffer b = randomBf16((long) n * k);
        DeviceBuffer c = buffer((long) m * n * 4);
        LinearOps ops = new LinearOps(device);
        double t = GpuTimer.median(device, 2, 10, () -> ops.gemmBf16(a, b, c, m, n, k));
        report(String.format("gemm_bf16_tc %dx%dx%d", m, n, k), t, 2.0 * (m + n) * k + 4.0 * m * n,
                2.0 * m * n * k);
    }

    private void groupedGemm(int experts, int rowsPerExpert, int n, int k) {
        int[] offsets = new int[experts + 1];
        for (int e = 0; e < experts; e++) {
            offsets[e + 1] = offsets[e] + rowsPerExpert;
        }
        int total = offsets[experts];
        DeviceBuffer a = randomBf16((long) total * k);
        DeviceBuffer w = randomBf16((long) experts * n * k);
        DeviceBuffer c = buffer((long) total * n * 4);
        DeviceBuffer off = ints(offsets);
        LinearOps ops = new LinearOps(device);
        double t = GpuTimer.median(device, 2, 10, () -> ops.groupedGemmBf16(a, w, c, off, offsets, n, k));
        report(String.format("grouped_gemm_bf16_tc %d experts x %d rows, %dx%d", experts, rowsPerExpert, n, k), t,
                2.0 * total * k + 2.0 * experts * n * k + 4.0 * total * n, 2.0 * total * n * k);
    }

    private void rmsNorm(int rows, int n) {
        DeviceBuffer x = randomF32((long) rows * n);
        DeviceBuffer w = randomF32(n);
        DeviceBuffer out = buffer((long) rows * n * 4);
        ElementwiseOps ops = new ElementwiseOps(device);
        double t = GpuTimer.median(device, 3, 20, () -> ops.rmsNorm(x, w, out, rows, n, 1e-6f));
        report(String.format("rms_norm %dx%d", rows, n), t, 8.0 * rows * n, 4.0 * rows * n);
    }

    private void swiglu(int n) {
        DeviceBuffer g = randomF32(n);
        DeviceBuffer u = randomF32(n);
        DeviceBuffer out = buffer((long) n * 4);
        ElementwiseOps ops = new ElementwiseOps(device);
        double t = GpuTimer.median(device, 3, 20, () -> ops.swiglu(g, u, out, n));
        report(String.format("swiglu %d", n), t, 12.0 * n, 5.0 * n);
    }

    private void topk(int tokens, int experts, int k) {
        DeviceBuffer logits = randomF32((long) tokens * experts);
        DeviceBuffer bias = randomF32(experts);
        DeviceBuffer ids = buffer((long) tokens * k * 4);
        DeviceBuffer w = buffer((long) tokens * k * 4);
        ElementwiseOps ops = new ElementwiseOps(device);
        double t = GpuTimer.median(device, 3, 20, () -> ops.topkGate(logits, bias, tokens, experts, k, true, 8, 4,
                true, 2.5f, ids, w));
        report(String.format("topk_gate %d tokens x %d experts, k %d (v3 groups)", tokens, experts, k), t,
                4.0 * tokens * experts + 8.0 * tokens * k, 0);
    }
}
