package io.expertmesh.gpucheck;

import io.expertmesh.core.kernel.ScalarKernels;
import io.expertmesh.core.model.Gate;
import io.expertmesh.core.config.ModelConfig.Scoring;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Matrix;
import io.expertmesh.cuda.AttentionOps;
import io.expertmesh.cuda.CudaDevice;
import io.expertmesh.cuda.DeviceBuffer;
import io.expertmesh.cuda.ElementwiseOps;
import io.expertmesh.cuda.LinearOps;
import io.expertmesh.cuda.MlaDecode;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Every GPU kernel against its CPU reference, on fresh random inputs at sizes that are not multiples of 8, 16 or
 * 32, with every output poisoned with NaN before the run. The JUnit tests and {@code GpuCheck} (the GPU host's
 * check without Maven) both run these. Float32 kernels must agree to 1e-5 relative L2; kernels with bf16 operands
 * on the tensor cores to 1e-2 (METHOD.md: bf16 operands land between 1e-3 and 1e-2).
 */
public final class KernelChecks {
    static final double F32_TOL = 1e-5;
    static final double ATTENTION_F32_TOL = 1e-4;  // long sums of exp(): float32 rounding, order differs
    static final double BF16_TOL = 1e-2;

    private final CudaDevice device;
    private final RandomData rnd;
    private final ScalarKernels cpu = new ScalarKernels();

    public KernelChecks(CudaDevice device, long seed) {
        this.device = device;
        this.rnd = new RandomData(seed);
    }

    /**
     * Runs every check. A check that throws (a CUDA error, a bad launch) is reported as failed with the message
     * and the rest still run: after a sticky error (an illegal address) they will fail too, but the first failure
     * names the culprit.
     */
    public List<CheckResult> all() {
        List<Supplier<CheckResult>> checks = List.of(
                () -> rmsNorm(7, 1001),
                () -> rope(true, 5, 3, 66),
                () -> rope(false, 5, 3, 66),
                () -> swiglu(10_007),
                () -> topkGate("v3 sigmoid+bias+groups", 37, 64, 6, true, true, 8, 3, true, 2.5f),
                () -> topkGate("v3 full 256", 5, 256, 8, true, true, 8, 4, true, 2.5f),
                () -> topkGate("mixtral softmax top2", 37, 8, 2, false, false, 1, 1, true, 1f),
                () -> topkGate("qwen2 softmax no-renorm", 37, 60, 4, false, false, 1, 1, false, 1f),
                () -> linear(true, 333, 1001, 11),
                () -> linear(true, 257, 1024, 9),
                () -> linear(false, 129, 1000, 3),
                () -> linear(true, 70, 1000, 37),
                () -> linearKernelsAgree(true, 333, 1001, 37),
                () -> linearKernelsAgree(false, 70, 1536, 17),
                () -> gemmBf16(100, 77, 1001),
                () -> gemmBf16(257, 130, 72),
                () -> groupedGemm(new int[]{3, 0, 70, 17, 1}, 96, 200),
                () -> mlaDecode(new int[]{1, 63, 64, 200, 1000}, 20, 16, 0),
                () -> mlaDecode(new int[]{1, 5, 130}, 16, 64, 3),
                () -> mlaDecode(new int[]{777}, 128, 16, 0),
                () -> mlaDecode(new int[]{4096, 4095, 3000}, 16, 64, 0),
                () -> mlaDecode(new int[]{1, 8000, 0, 3, 64}, 16, 64, 0),  // very different lengths, one empty
                () -> mlaDecode(new int[]{1, 63, 64, 200, 1000}, 20, 16, 0, true),
                () -> gqaDecode(new int[]{1, 45, 300}, 12, 4, 72, 16),
                () -> gqaDecode(new int[]{17, 2}, 8, 8, 128, 32),
                () -> prefill(45, 19, 6, 2, 72, 40),
                () -> prefill(33, 0, 4, 4, 128, 128));
        List<CheckResult> r = new ArrayList<>();
        for (int i = 0; i < checks.size(); i++) {
            try {
                r.add(checks.get(i).get());
            } catch (RuntimeException e) {
                r.add(new CheckResult("check " + i, Double.NaN, 0, "error: " + e));
            }
        }
        return r;
    }

    /**
     * Tiny cases of the kernels whose synchronisation the CPU model cannot judge (shared-memory tiles, cp.async
     * pipelines, warp reductions), by name, for compute-sanitizer's racecheck and synccheck, which run each
     * launch 100-1000× slower: the MLA split kernels (register and shared-memory accumulators, a forced split
     * so the merge runs), the tensor-core GEMMs, the top-k gate and the staged product (activations in shared
     * memory, two chunks and two batch passes).
     */
    public Map<String, Supplier<CheckResult>> sanitizerCases() {
        Map<String, Supplier<CheckResult>> cases = new LinkedHashMap<>();
        cases.put("mla-reg-o", () -> mlaDecode(new int[]{1, 70}, 16, 64, 2));
        cases.put("mla-smem-o", () -> mlaDecode(new int[]{1, 70}, 16, 64, 2, true));
        cases.put("gemm", () -> gemmBf16(33, 40, 72));
        cases.put("grouped-gemm", () -> groupedGemm(new int[]{3, 0, 17}, 32, 72));
        cases.put("topk", () -> topkGate("v3 sigmoid+bias+groups", 3, 64, 6, true, true, 8, 3, true, 2.5f));
        cases.put("linear-staged", () -> linearKernelsAgree(true, 37, 1000, 17));
        return cases;
    }

    private static float[] nan(int n) {
        float[] a = new float[n];
        Arrays.fill(a, Float.NaN);
        return a;
    }

    private static DeviceBuffer poisoned(long floats) {
        DeviceBuffer b = DeviceBuffer.allocate(floats * 4);
        b.fill(Float.NaN);
        return b;
    }

    private float[] download(DeviceBuffer b, int n) {
        device.synchronize();
        float[] out = nan(n);
        b.download(out, 0, n);
        return out;
    }

    public CheckResult rmsNorm(int rows, int n) {
        float[] x = rnd.gaussian(rows * n, 1.5);
        float[] w = rnd.gaussian(n, 1);
        float[] ref = new float[rows * n];
        for (int r = 0; r < rows; r++) {
            cpu.rmsNorm(x, r * n, w, 1e-6f, ref, r * n, n);
        }
        try (DeviceBuffer dx = DeviceBuffer.of(x); DeviceBuffer dw = DeviceBuffer.of(w);
             DeviceBuffer out = poisoned(rows * n)) {
            new ElementwiseOps(device).rmsNorm(dx, dw, out, rows, n, 1e-6f);
            return new CheckResult("rms_norm " + rows + "x" + n, Errors.relativeL2(download(out, rows * n), ref),
                    F32_TOL, "");
        }
    }

    public CheckResult rope(boolean interleaved, int rows, int heads, int dim) {
        int offset = 5;
        int headStride = dim + 3;
        int rowStride = offset + heads * headStride + 7;
        int csStride = dim / 2 + 1;
        float[] x = rnd.gaussian(rows * rowStride, 1);
        float[] cos = rnd.gaussian(rows * csStride, 1);
        float[] sin = rnd.gaussian(rows * csStride, 1);
        float[] ref = x.clone();
        for (int r = 0; r < rows; r++) {
            for (int h = 0; h < heads; h++) {
                int off = r * rowStride + offset + h * headStride;
                if (interleaved) {
                    cpu.ropeInterleaved(ref, off, dim, cos, sin, r * csStride);
                } else {
                    cpu.ropeHalf(ref, off, dim, cos, sin, r * csStride);
                }
            }
        }
        try (DeviceBuffer dx = DeviceBuffer.of(x); DeviceBuffer dc = DeviceBuffer.of(cos);
             DeviceBuffer ds = DeviceBuffer.of(sin)) {
            new ElementwiseOps(device).rope(interleaved, dx, dc, ds, rows, heads, rowStride, headStride, offset, dim,
                    csStride);
            // In place: elements outside the rotated ranges must be untouched, so the whole buffer is compared.
            return new CheckResult((interleaved ? "rope_interleaved " : "rope_half ") + rows + "x" + heads + "x" + dim,
                    Errors.relativeL2(download(dx, x.length), ref), F32_TOL, "");
        }
    }

    public CheckResult swiglu(int n) {
        float[] g = rnd.gaussian(n, 2);
        float[] u = rnd.gaussian(n, 1);
        float[] ref = new float[n];
        cpu.swiglu(g, 0, u, 0, ref, 0, n);
        try (DeviceBuffer dg = DeviceBuffer.of(g); DeviceBuffer du = DeviceBuffer.of(u); DeviceBuffer out = poisoned(n)) {
            new ElementwiseOps(device).swiglu(dg, du, out, n);
            return new CheckResult("swiglu " + n, Errors.relativeL2(download(out, n), ref), F32_TOL, "");
        }
    }

    public CheckResult topkGate(String what, int tokens, int experts, int k, boolean sigmoid, boolean withBias,
                                int nGroup, int topkGroup, boolean normalize, float scale) {
        float[] logits = rnd.gaussian(tokens * experts, 2);
        float[] bias = withBias ? rnd.gaussian(experts, 0.1) : null;
        int[] refIds = new int[tokens * k];
        float[] refW = new float[tokens * k];
        // core's Gate is the definition of routing; its weight is unused when the logits are given
        Matrix none = new Matrix("gate", DType.F32, experts, 1, MemorySegment.ofArray(new float[experts]));
        new Gate(none, bias, sigmoid ? Scoring.SIGMOID : Scoring.SOFTMAX, k, nGroup, topkGroup, normalize, scale)
                .routeLogits(logits, tokens, refIds, refW);
        try (DeviceBuffer dl = DeviceBuffer.of(logits); DeviceBuffer db = bias == null ? null : DeviceBuffer.of(bias);
             DeviceBuffer ids = DeviceBuffer.allocate((long) tokens * k * 4);
             DeviceBuffer w = poisoned((long) tokens * k)) {
            ids.fill(Float.NaN);
            new ElementwiseOps(device).topkGate(dl, db, tokens, experts, k, sigmoid, nGroup, topkGroup, normalize,
                    scale, ids, w);
            float[] gotW = download(w, tokens * k);
            int[] gotIds = new int[tokens * k];
            ids.download(gotIds);
            int wrong = 0;
            for (int i = 0; i < gotIds.length; i++) {
                if (gotIds[i] != refIds[i]) {
                    wrong++;
                }
            }
            double err = wrong > 0 ? Double.NaN : Errors.relativeL2(gotW, refW);
            return new CheckResult("topk_gate " + what + " " + tokens + "x" + experts + " k" + k, err, F32_TOL,
                    wrong > 0 ? wrong + " expert ids differ" : "");
        }
    }

    public CheckResult linear(boolean bf16, int rows, int cols, int batch) {
        Matrix w;
        DeviceBuffer dw;
        if (bf16) {
            short[] bits = rnd.bf16(rows * cols, 0.05);
            w = new Matrix("w", DType.BF16, rows, cols, MemorySegment.ofArray(bits));
            dw = DeviceBuffer.of(bits);
        } else {
            float[] f = rnd.gaussian(rows * cols, 0.05);
            w = new Matrix("w", DType.F32, rows, cols, MemorySegment.ofArray(f));
            dw = DeviceBuffer.of(f);
        }
        float[] x = rnd.gaussian(batch * cols, 1);
        float[] ref = new float[batch * rows];
        cpu.matmul(w, x, 0, ref, 0, batch);
        try (dw; DeviceBuffer dx = DeviceBuffer.of(x); DeviceBuffer out = poisoned((long) batch * rows)) {
            new LinearOps(device).linear(dw, bf16, dx, out, rows, cols, batch);
            return new CheckResult("linear " + (bf16 ? "bf16" : "f32") + "w " + rows + "x" + cols + " b" + batch,
                    Errors.relativeL2(download(out, batch * rows), ref), F32_TOL, "");
        }
    }

    /**
     * The staged kernel ({@code linear_*w_f32_xs}, batches above 8) against the warp-per-row kernel on the same
     * data: they accumulate in the same order, so the tolerance is 0 (a request's output must not depend on the
     * kernel its batch size picked).
     */
    public CheckResult linearKernelsAgree(boolean bf16, int rows, int cols, int batch) {
        DeviceBuffer dw = bf16 ? DeviceBuffer.of(rnd.bf16(rows * cols, 0.05))
                : DeviceBuffer.of(rnd.gaussian(rows * cols, 0.05));
        float[] x = rnd.gaussian(batch * cols, 1);
        try (dw; DeviceBuffer dx = DeviceBuffer.of(x); DeviceBuffer warpRow = poisoned((long) batch * rows);
             DeviceBuffer staged = poisoned((long) batch * rows)) {
            LinearOps ops = new LinearOps(device);
            ops.linear(dw, bf16, dx, warpRow, rows, cols, batch, false);
            ops.linear(dw, bf16, dx, staged, rows, cols, batch, true);
            float[] a = download(warpRow, batch * rows);
            float[] b = download(staged, batch * rows);
            int differ = 0;
            for (int i = 0; i < a.length; i++) {
                if (Float.floatToRawIntBits(a[i]) != Float.floatToRawIntBits(b[i])) {
                    differ++;
                }
            }
            double err = Errors.relativeL2(b, a);
            return new CheckResult("linear " + (bf16 ? "bf16" : "f32") + "w staged = warp-row " + rows + "x" + cols
                    + " b" + batch, differ > 0 && !(err > 0) ? Double.NaN : err, 0,
                    differ > 0 ? differ + " outputs differ in bits" : "");
        }
    }

    public CheckResult gemmBf16(int m, int n, int k) {
        short[] a = rnd.bf16(m * k, 1);
        short[] b = rnd.bf16(n * k, 0.05);
        double[] ref = References.gemm(RandomData.toDouble(a), RandomData.toDouble(b), m, n, k);
        try (DeviceBuffer da = DeviceBuffer.of(a); DeviceBuffer db = DeviceBuffer.of(b);
             DeviceBuffer c = poisoned((long) m * n)) {
            new LinearOps(device).gemmBf16(da, db, c, m, n, k);
            // Exact bf16 inputs and float32 accumulation: only summation order differs from the reference.
            return new CheckResult("gemm_bf16_tc " + m + "x" + n + "x" + k,
                    Errors.relativeL2(download(c, m * n), ref), F32_TOL, "");
        }
    }

    public CheckResult groupedGemm(int[] rowsPerExpert, int n, int k) {
        int experts = rowsPerExpert.length;
        int[] offsets = new int[experts + 1];
        for (int e = 0; e < experts; e++) {
            offsets[e + 1] = offsets[e] + rowsPerExpert[e];
        }
        int total = offsets[experts];
        short[] a = rnd.bf16(total * k, 1);
        short[] w = rnd.bf16(experts * n * k, 0.05);
        double[] ad = RandomData.toDouble(a);
        double[] wd = RandomData.toDouble(w);
        double[] ref = new double[total * n];
        for (int e = 0; e < experts; e++) {
            int m = rowsPerExpert[e];
            if (m == 0) {
                continue;
            }
            double[] c = References.gemm(Arrays.copyOfRange(ad, offsets[e] * k, offsets[e + 1] * k),
                    Arrays.copyOfRange(wd, e * n * k, (e + 1) * n * k), m, n, k);
            System.arraycopy(c, 0, ref, offsets[e] * n, c.length);
        }
        try (DeviceBuffer da = DeviceBuffer.of(a); DeviceBuffer dw = DeviceBuffer.of(w);
             DeviceBuffer doff = DeviceBuffer.of(offsets); DeviceBuffer c = poisoned((long) total * n)) {
            new LinearOps(device).groupedGemmBf16(da, dw, c, doff, offsets, n, k);
            return new CheckResult("grouped_gemm_bf16_tc " + Arrays.toString(rowsPerExpert) + "x" + n + "x" + k,
                    Errors.relativeL2(download(c, total * n), ref), F32_TOL, "");
        }
    }

    /** Paged MLA decode; {@code forcedSplits} 0 = the planner's choice. Pages are handed out shuffled. */
    public CheckResult mlaDecode(int[] lens, int heads, int pageSize, int forcedSplits) {
        return mlaDecode(lens, heads, pageSize, forcedSplits, false);
    }

    public CheckResult mlaDecode(int[] lens, int heads, int pageSize, int forcedSplits, boolean smemAccumulators) {
        int batch = lens.length;
        int row = MlaDecode.ROW;
        int maxLen = Arrays.stream(lens).max().orElseThrow();
        int maxPages = (maxLen + pageSize - 1) / pageSize;
        int pages = batch * maxPages + 3;
        int[] perm = rnd.permutation(pages);
        int[] table = new int[batch * maxPages];
        for (int i = 0; i < table.length; i++) {
            table[i] = perm[i];
        }
        short[] q = rnd.bf16(batch * heads * row, 1);
        short[] cache = rnd.bf16(pages * pageSize * row, 1);
        float scale = (float) (1 / Math.sqrt(192));
        double[] ref = References.mlaDecode(RandomData.toDouble(q), RandomData.toDouble(cache), table, lens, batch,
                heads, MlaDecode.LATENT, row, maxPages, pageSize, scale);
        MlaDecode mla = new MlaDecode(device, smemAccumulators);
        int splits = forcedSplits > 0 ? forcedSplits : mla.splitsFor(lens, batch, heads);  // as CudaOps plans
        int outN = batch * heads * MlaDecode.LATENT;
        try (DeviceBuffer dq = DeviceBuffer.of(q); DeviceBuffer dc = DeviceBuffer.of(cache);
             DeviceBuffer dt = DeviceBuffer.of(table); DeviceBuffer dl = DeviceBuffer.of(lens);
             DeviceBuffer out = poisoned(outN);
             DeviceBuffer oPart = poisoned(MlaDecode.partialFloats(batch, heads, splits));
             DeviceBuffer lse = poisoned((long) batch * heads * splits)) {
            mla.run(dq, dc, dt, dl, out, oPart, lse, batch, heads, maxPages, pageSize, pages, splits, scale);
            return new CheckResult("mla_decode lens " + Arrays.toString(lens) + " h" + heads + " page" + pageSize,
                    Errors.relativeL2(download(out, outN), ref), BF16_TOL,
                    mla.kernelName() + ", splits " + splits);
        }
    }

    public CheckResult gqaDecode(int[] lens, int heads, int kvHeads, int dim, int pageSize) {
        int batch = lens.length;
        int maxLen = Arrays.stream(lens).max().orElseThrow();
        int maxPages = (maxLen + pageSize - 1) / pageSize;
        int pages = batch * maxPages + 2;
        int[] perm = rnd.permutation(pages);
        int[] table = Arrays.copyOf(perm, batch * maxPages);
        float[] q = rnd.gaussian(batch * heads * dim, 1);
        short[] cache = rnd.bf16(pages * pageSize * 2 * kvHeads * dim, 1);
        float scale = (float) (1 / Math.sqrt(dim));
        double[] ref = References.gqaDecode(q, RandomData.toDouble(cache), table, lens, batch, heads, kvHeads, dim,
                maxPages, pageSize, scale);
        int outN = batch * heads * dim;
        try (DeviceBuffer dq = DeviceBuffer.of(q); DeviceBuffer dc = DeviceBuffer.of(cache);
             DeviceBuffer dt = DeviceBuffer.of(table); DeviceBuffer dl = DeviceBuffer.of(lens);
             DeviceBuffer out = poisoned(outN)) {
            new AttentionOps(device).gqaDecode(dq, dc, dt, dl, out, batch, heads, kvHeads, dim, maxPages, pageSize,
                    pages, scale);
            return new CheckResult("gqa_decode lens " + Arrays.toString(lens) + " h" + heads + "/" + kvHeads + " d"
                    + dim, Errors.relativeL2(download(out, outN), ref), ATTENTION_F32_TOL, "");
        }
    }

    public CheckResult prefill(int tokens, int past, int heads, int kvHeads, int dk, int dv) {
        int keys = past + tokens;
        short[] q = rnd.bf16(tokens * heads * dk, 1);
        short[] k = rnd.bf16(keys * kvHeads * dk, 1);
        short[] v = rnd.bf16(keys * kvHeads * dv, 1);
        float scale = (float) (1 / Math.sqrt(dk));
        double[] ref = References.prefill(RandomData.toDouble(q), RandomData.toDouble(k), RandomData.toDouble(v),
                tokens, past, heads, kvHeads, dk, dv, scale);
        int outN = tokens * heads * dv;
        try (DeviceBuffer dq = DeviceBuffer.of(q); DeviceBuffer dk2 = DeviceBuffer.of(k);
             DeviceBuffer dv2 = DeviceBuffer.of(v); DeviceBuffer out = poisoned(outN)) {
            new AttentionOps(device).prefill(dq, dk2, dv2, out, tokens, past, heads, kvHeads, dk, dv, scale);
            return new CheckResult("prefill_causal T" + tokens + " past" + past + " h" + heads + "/" + kvHeads + " d"
                    + dk + "/" + dv, Errors.relativeL2(download(out, outN), ref), ATTENTION_F32_TOL, "");
        }
    }
}
