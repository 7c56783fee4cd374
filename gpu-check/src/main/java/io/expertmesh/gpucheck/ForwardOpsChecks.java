package io.expertmesh.gpucheck;

import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Matrix;
import io.expertmesh.cuda.CudaDevice;
import io.expertmesh.cuda.forward.CudaOps;
import io.expertmesh.cuda.forward.DeviceOps;
import io.expertmesh.cuda.forward.DeviceTensor;
import io.expertmesh.cuda.forward.DeviceTensor.Kind;
import io.expertmesh.cuda.forward.HostOps;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Supplier;

/**
 * Every {@link CudaOps} operation against {@link HostOps} (the scalar reference of the same {@link DeviceOps}
 * contract) on the same fresh random inputs, at sizes that are not multiples of 8, 16 or 32. Outputs the
 * operation writes whole are poisoned with NaN on the GPU before the run (an element left unwritten fails);
 * outputs written in part (strided views, in-place updates, the KV pool) start from the same random background
 * on both sides and are compared whole, so an element written that should not be fails too. Tolerances as
 * {@link KernelChecks}: 1e-5 relative L2 for float32 ops, 1e-4 for attention (long sums of exp()), 1e-2 where
 * the GPU rounds an operand to bf16 (the fast MLA kernel's query and probabilities), exact for bf16 stores.
 */
public final class ForwardOpsChecks implements AutoCloseable {
    private final DeviceOps gpu;
    private final DeviceOps gpuGeneric;
    private final HostOps host = new HostOps();
    private final RandomData rnd;
    private final List<DeviceTensor> open = new ArrayList<>();

    /** CudaOps as it serves (fast MLA kernel for 512 + 64), and one with the generic MLA kernel for every shape. */
    public ForwardOpsChecks(CudaDevice device, long seed) {
        this(new CudaOps(device), new CudaOps(device, false), seed);
    }

    /**
     * Checks {@code ops} (and {@code genericMlaOps} for the generic MLA checks at 512 + 64) against HostOps; the
     * tests run the checks themselves this way on HostOps, without a GPU. {@link #close} closes both.
     */
    ForwardOpsChecks(DeviceOps ops, DeviceOps genericMlaOps, long seed) {
        this.gpu = ops;
        this.gpuGeneric = genericMlaOps;
        this.rnd = new RandomData(seed);
    }

    /** The same tensor on the host reference and on the GPU. */
    private record Both(DeviceTensor h, DeviceTensor g) {
    }

    /** Runs every check; one that throws is reported failed with its message and the rest still run. */
    public List<CheckResult> all() {
        List<Supplier<CheckResult>> checks = List.of(
                this::copyRoundTrip,
                () -> zero(1001, 777),
                () -> embed(false, 37, 45, 13),
                () -> embed(true, 37, 45, 13),
                () -> rmsNorm(7, 301, 311, 307, false),
                () -> rmsNorm(5, 301, 311, 311, true),
                () -> rope(true, 5, 3, 66),
                () -> rope(false, 5, 3, 66),
                () -> linear(true, 133, 301, 11),
                () -> linear(false, 67, 1001, 3),
                () -> headLinear(true, 5, 37, 29, 11),
                () -> headLinear(false, 3, 19, 131, 9),
                () -> copyStrided(7, 3, 19),
                () -> addBias(9, 333),
                () -> add(10_007),
                () -> swiglu(10_007, false),
                () -> swiglu(1001, true),
                () -> kvWrite(13, 27, 41, 9),
                () -> mla(false, new int[]{1, 37, 200, 129}, 5, 23, 10, 7),
                () -> mla(false, new int[]{64, 65, 1000}, 3, 32, 16, 16),
                () -> mla(false, new int[]{1, 100, 700}, 20, 512, 64, 16),
                () -> mla(true, new int[]{1, 100, 700}, 20, 512, 64, 16),
                () -> mla(true, new int[]{65, 3}, 3, 512, 64, 7),
                () -> gqa(new int[]{1, 45, 300}, 12, 4, 72, 16),
                () -> gqa(new int[]{17, 2}, 8, 8, 128, 7),
                () -> topkGate("v3 sigmoid+bias+groups", 37, 64, 6, true, true, 8, 3, true, 2.5f),
                () -> topkGate("mixtral softmax top2", 37, 8, 2, false, false, 1, 1, true, 1f),
                () -> topkGate("qwen2 softmax no-renorm", 37, 60, 4, false, false, 1, 1, false, 1f),
                () -> gatherRows(41, 37, 13, 3),
                () -> scatterAddRows(29, 37, 13, 5),
                () -> gatedAdd(11, 301),
                () -> routeByExpert(37, 6, 64, true),
                () -> routeByExpert(64, 8, 256, false),
                () -> routedExperts(true, 37, 4, 16, 45, 33),
                () -> routedExperts(false, 9, 2, 8, 1001, 20),
                () -> routedExperts(true, 70, 8, 16, 200, 37));  // 35 rows per expert: the staged products
        List<CheckResult> r = new ArrayList<>();
        for (int i = 0; i < checks.size(); i++) {
            try {
                r.add(checks.get(i).get());
            } catch (RuntimeException e) {
                r.add(new CheckResult("forward check " + i, Double.NaN, 0, "error: " + e));
            } finally {
                release();
            }
        }
        return r;
    }

    /** Frees every tensor the last check made (the checks themselves stay short). */
    public void release() {
        open.forEach(DeviceTensor::close);
        open.clear();
    }

    // ---- tensors on both sides -------------------------------------------------------------------------------------

    private <T extends DeviceTensor> T keep(T t) {
        open.add(t);
        return t;
    }

    private Both f32(float[] a) {
        return new Both(keep(host.upload(a)), keep(gpu.upload(a)));
    }

    private Both i32(int[] a) {
        Both b = new Both(keep(host.allocate(Kind.I32, a.length)), keep(gpu.allocate(Kind.I32, a.length)));
        host.copyIn(a, b.h, a.length);
        gpu.copyIn(a, b.g, a.length);
        return b;
    }

    private Both bf16(short[] a) {
        Both b = new Both(keep(host.allocate(Kind.BF16, a.length)), keep(gpu.allocate(Kind.BF16, a.length)));
        host.copyIn(a, 0, b.h, 0, a.length);
        gpu.copyIn(a, 0, b.g, 0, a.length);
        return b;
    }

    /** An output written whole: NaN on the GPU, so an element the kernel skips fails the comparison. */
    private Both poisoned(int n) {
        Both b = new Both(keep(host.allocate(Kind.F32, n)), keep(gpu.allocate(Kind.F32, n)));
        float[] nan = new float[n];
        Arrays.fill(nan, Float.NaN);
        gpu.copyIn(nan, 0, b.g, 0, n);
        return b;
    }

    private Both matrix(boolean bf16, int rows, int cols, double scale, String name) {
        Matrix m = bf16 ? new Matrix(name, DType.BF16, rows, cols, MemorySegment.ofArray(rnd.bf16(rows * cols, scale)))
                : new Matrix(name, DType.F32, rows, cols, MemorySegment.ofArray(rnd.gaussian(rows * cols, scale)));
        return new Both(keep(host.upload(m)), keep(gpu.upload(m)));
    }

    private CheckResult compare(String name, Both out, int n, double tol, String detail) {
        float[] want = new float[n];
        host.copyOut(out.h, 0, want, 0, n);
        float[] got = new float[n];
        Arrays.fill(got, Float.NaN);
        gpu.copyOut(out.g, 0, got, 0, n);
        return new CheckResult("ops " + name, Errors.relativeL2(got, want), tol, detail);
    }

    // ---- the checks ------------------------------------------------------------------------------------------------

    /** copyIn and copyOut at offsets: the float data lands where the offsets say and nowhere else. */
    public CheckResult copyRoundTrip() {
        int n = 1001;
        Both t = f32(rnd.gaussian(n, 1));
        float[] part = rnd.gaussian(300, 1);
        host.copyIn(part, 17, t.h, 333, 251);
        gpu.copyIn(part, 17, t.g, 333, 251);
        float[] got = new float[n];
        Arrays.fill(got, Float.NaN);
        gpu.copyOut(t.g, 5, got, 3, n - 5);
        float[] want = new float[n];
        host.copyOut(t.h, 5, want, 3, n - 5);
        // Elements outside [3, n - 2) were not copied: zero, as in want.
        for (int i = 0; i < n; i++) {
            if (i < 3 || i >= n - 2) {
                got[i] = 0;
            }
        }
        return new CheckResult("ops copyIn/copyOut offsets", Errors.relativeL2(got, want), 0, "");
    }

    public CheckResult zero(int length, int n) {
        Both x = f32(rnd.gaussian(length, 1));
        host.zero(x.h, n);
        gpu.zero(x.g, n);
        return compare("zero " + n + " of " + length, x, length, 0, "");
    }

    public CheckResult embed(boolean bf16, int vocab, int hidden, int rows) {
        Both table = matrix(bf16, vocab, hidden, 1, "embed");
        int[] ids = new int[rows];
        for (int i = 0; i < rows; i++) {
            ids[i] = rnd.random().nextInt(vocab);
        }
        ids[0] = vocab - 1;
        Both dIds = i32(ids);
        Both out = poisoned(rows * hidden);
        host.embed(table.h, dIds.h, out.h, rows, hidden);
        gpu.embed(table.g, dIds.g, out.g, rows, hidden);
        return compare("embed " + (bf16 ? "bf16" : "f32") + " " + vocab + "x" + hidden + " rows " + rows, out,
                rows * hidden, 0, "");
    }

    public CheckResult rmsNorm(int rows, int n, int xStride, int outStride, boolean inPlace) {
        Both x = f32(rnd.gaussian((rows - 1) * xStride + n, 1.5));
        Both w = f32(rnd.gaussian(n, 1));
        Both out = inPlace ? x : f32(rnd.gaussian((rows - 1) * outStride + n, 1));
        int len = (rows - 1) * (inPlace ? xStride : outStride) + n;
        host.rmsNorm(x.h, xStride, w.h, 1e-6f, out.h, inPlace ? xStride : outStride, rows, n);
        gpu.rmsNorm(x.g, xStride, w.g, 1e-6f, out.g, inPlace ? xStride : outStride, rows, n);
        return compare("rms_norm_strided " + rows + "x" + n + " strides " + xStride + "/" + outStride
                + (inPlace ? " in place" : ""), out, len, KernelChecks.F32_TOL, "");
    }

    public CheckResult rope(boolean interleaved, int rows, int heads, int dim) {
        int offset = 5;
        int headStride = dim + 3;
        int rowStride = offset + heads * headStride + 7;
        int csStride = dim / 2 + 1;
        Both x = f32(rnd.gaussian(rows * rowStride, 1));
        Both cos = f32(rnd.gaussian(rows * csStride, 1));
        Both sin = f32(rnd.gaussian(rows * csStride, 1));
        host.rope(interleaved, x.h, cos.h, sin.h, rows, heads, rowStride, headStride, offset, dim, csStride);
        gpu.rope(interleaved, x.g, cos.g, sin.g, rows, heads, rowStride, headStride, offset, dim, csStride);
        return compare((interleaved ? "rope_interleaved " : "rope_half ") + rows + "x" + heads + "x" + dim, x,
                rows * rowStride, KernelChecks.F32_TOL, "");
    }

    public CheckResult linear(boolean bf16, int rows, int cols, int batch) {
        Both w = matrix(bf16, rows, cols, 0.05, "w");
        Both x = f32(rnd.gaussian(batch * cols, 1));
        Both out = poisoned(batch * rows);
        host.linear(w.h, x.h, out.h, rows, cols, batch);
        gpu.linear(w.g, x.g, out.g, rows, cols, batch);
        return compare("linear " + (bf16 ? "bf16" : "f32") + "w " + rows + "x" + cols + " b" + batch, out,
                batch * rows, KernelChecks.F32_TOL, "");
    }

    /** Per-head product over strided views, weights uploaded stacked (one matrix per head). */
    public CheckResult headLinear(boolean bf16, int heads, int rows, int cols, int tokens) {
        Matrix[] ws = new Matrix[heads];
        for (int h = 0; h < heads; h++) {
            ws[h] = bf16 ? new Matrix("w" + h, DType.BF16, rows, cols, MemorySegment.ofArray(rnd.bf16(rows * cols, 0.1)))
                    : new Matrix("w" + h, DType.F32, rows, cols, MemorySegment.ofArray(rnd.gaussian(rows * cols, 0.1)));
        }
        Both w = new Both(keep(host.uploadStacked(ws)), keep(gpu.uploadStacked(ws)));
        int xOff = 2;
        int xHead = cols + 3;
        int xRow = heads * xHead + 5;
        int oOff = 1;
        int oHead = rows + 1;
        int oRow = heads * oHead + 3;
        Both x = f32(rnd.gaussian(tokens * xRow, 1));
        Both out = f32(rnd.gaussian(tokens * oRow, 1));
        host.headLinear(w.h, heads, rows, cols, x.h, xRow, xHead, xOff, out.h, oRow, oHead, oOff, tokens);
        gpu.headLinear(w.g, heads, rows, cols, x.g, xRow, xHead, xOff, out.g, oRow, oHead, oOff, tokens);
        return compare("head_linear " + (bf16 ? "bf16" : "f32") + "w h" + heads + " " + rows + "x" + cols + " t"
                + tokens, out, tokens * oRow, KernelChecks.F32_TOL, "");
    }

    public CheckResult copyStrided(int rows, int heads, int n) {
        int sOff = 3;
        int sHead = n + 2;
        int sRow = heads * sHead + 1;
        int dOff = 4;
        int dHead = n + 5;
        int dRow = heads * dHead + 7;
        Both src = f32(rnd.gaussian(rows * sRow, 1));
        Both dst = f32(rnd.gaussian(rows * dRow, 1));
        host.copyStrided(src.h, sRow, sHead, sOff, dst.h, dRow, dHead, dOff, rows, heads, n);
        gpu.copyStrided(src.g, sRow, sHead, sOff, dst.g, dRow, dHead, dOff, rows, heads, n);
        return compare("copy_strided " + rows + "x" + heads + "x" + n, dst, rows * dRow, 0, "");
    }

    public CheckResult addBias(int rows, int n) {
        Both x = f32(rnd.gaussian(rows * n + 3, 1));
        Both bias = f32(rnd.gaussian(n, 1));
        host.addBias(x.h, bias.h, rows, n);
        gpu.addBias(x.g, bias.g, rows, n);
        return compare("add_bias " + rows + "x" + n, x, rows * n + 3, KernelChecks.F32_TOL, "");
    }

    public CheckResult add(int n) {
        Both y = f32(rnd.gaussian(n + 5, 1));
        Both x = f32(rnd.gaussian(n, 1));
        host.add(y.h, x.h, n);
        gpu.add(y.g, x.g, n);
        return compare("add " + n, y, n + 5, KernelChecks.F32_TOL, "");
    }

    public CheckResult swiglu(int n, boolean outIsGate) {
        Both gate = f32(rnd.gaussian(n, 2));
        Both up = f32(rnd.gaussian(n, 1));
        Both out = outIsGate ? gate : poisoned(n);
        host.swiglu(gate.h, up.h, out.h, n);
        gpu.swiglu(gate.g, up.g, out.g, n);
        return compare("swiglu " + n + (outIsGate ? " into gate" : ""), out, n, KernelChecks.F32_TOL, "");
    }

    /**
     * Rows into the bf16 pool at scattered slots: the whole pool, background included, must equal the host
     * emulation's bit for bit. DeviceOps has no bf16 read-back; embedding every slot as a token (an exact bf16 to
     * float32 widening, checked on its own) reads the pool back on both sides.
     */
    public CheckResult kvWrite(int rows, int n, int poolRow, int dstOff) {
        int slotsInPool = rows * 3 + 1;
        int srcStride = n + 4;
        Both pool = bf16(rnd.bf16(slotsInPool * poolRow, 1));
        Both src = f32(rnd.gaussian(rows * srcStride, 3));
        Both slots = i32(Arrays.copyOf(rnd.permutation(slotsInPool), rows));
        host.kvWrite(src.h, srcStride, pool.h, poolRow, dstOff, slots.h, rows, n);
        gpu.kvWrite(src.g, srcStride, pool.g, poolRow, dstOff, slots.g, rows, n);
        int[] every = new int[slotsInPool];
        for (int i = 0; i < slotsInPool; i++) {
            every[i] = i;
        }
        Both ids = i32(every);
        Both back = poisoned(slotsInPool * poolRow);
        host.embed(pool.h, ids.h, back.h, slotsInPool, poolRow);
        gpu.embed(pool.g, ids.g, back.g, slotsInPool, poolRow);
        return compare("kv_write_bf16 " + rows + " rows of " + n + " into row " + poolRow, back,
                slotsInPool * poolRow, 0, "whole pool, bit-exact");
    }

    /** Pages of the pool handed out shuffled, one table row per token. */
    private int[] blockTable(int tokens, int maxBlocks, int poolBlocks) {
        int[] perm = rnd.permutation(poolBlocks);
        return Arrays.copyOf(perm, tokens * maxBlocks);
    }

    /**
     * MLA over the paged pool. {@code fast}: the production instance (tensor-core kernel at 512 + 64, query in
     * bf16: 1e-2); otherwise the generic float32-query kernel (1e-4).
     */
    public CheckResult mla(boolean fast, int[] lens, int heads, int latent, int rope, int blockSize) {
        int tokens = lens.length;
        int row = latent + rope;
        int maxLen = Arrays.stream(lens).max().orElseThrow();
        int maxBlocks = (maxLen + blockSize - 1) / blockSize + 1;  // one spare column: lengths need not fill it
        int poolBlocks = tokens * maxBlocks + 3;
        Both pool = bf16(rnd.bf16(poolBlocks * blockSize * row, 1));
        Both table = i32(blockTable(tokens, maxBlocks, poolBlocks));
        Both seqLens = i32(lens);
        Both q = f32(rnd.gaussian(tokens * heads * row, 1));
        Both out = poisoned(tokens * heads * latent);
        float scale = (float) (1 / Math.sqrt(row));
        DeviceOps ops = fast ? gpu : gpuGeneric;
        host.mlaAttention(q.h, pool.h, table.h, seqLens.h, out.h, tokens, heads, latent, rope, maxBlocks, blockSize,
                scale);
        ops.mlaAttention(q.g, pool.g, table.g, seqLens.g, out.g, tokens, heads, latent, rope, maxBlocks, blockSize,
                scale);
        boolean tensorCores = fast && latent == 512 && rope == 64;
        return compare("mla_attention " + (tensorCores ? "fast " : "generic ") + Arrays.toString(lens) + " h" + heads
                + " " + latent + "+" + rope + " block" + blockSize, out, tokens * heads * latent,
                tensorCores ? KernelChecks.BF16_TOL : KernelChecks.ATTENTION_F32_TOL, "");
    }

    public CheckResult gqa(int[] lens, int heads, int kvHeads, int dim, int blockSize) {
        int tokens = lens.length;
        int row = 2 * kvHeads * dim;
        int maxLen = Arrays.stream(lens).max().orElseThrow();
        int maxBlocks = (maxLen + blockSize - 1) / blockSize;
        int poolBlocks = tokens * maxBlocks + 2;
        Both pool = bf16(rnd.bf16(poolBlocks * blockSize * row, 1));
        Both table = i32(blockTable(tokens, maxBlocks, poolBlocks));
        Both seqLens = i32(lens);
        Both q = f32(rnd.gaussian(tokens * heads * dim, 1));
        Both out = poisoned(tokens * heads * dim);
        float scale = (float) (1 / Math.sqrt(dim));
        host.gqaAttention(q.h, pool.h, table.h, seqLens.h, out.h, tokens, heads, kvHeads, dim, maxBlocks, blockSize,
                scale);
        gpu.gqaAttention(q.g, pool.g, table.g, seqLens.g, out.g, tokens, heads, kvHeads, dim, maxBlocks, blockSize,
                scale);
        return compare("gqa_attention " + Arrays.toString(lens) + " h" + heads + "/" + kvHeads + " d" + dim
                + " block" + blockSize, out, tokens * heads * dim, KernelChecks.ATTENTION_F32_TOL, "");
    }

    public CheckResult topkGate(String what, int tokens, int experts, int k, boolean sigmoid, boolean withBias,
                                int nGroup, int topkGroup, boolean normalize, float scale) {
        Both logits = f32(rnd.gaussian(tokens * experts, 2));
        Both bias = withBias ? f32(rnd.gaussian(experts, 0.1)) : null;
        Both ids = new Both(keep(host.allocate(Kind.I32, tokens * k)), keep(gpu.allocate(Kind.I32, tokens * k)));
        int[] poison = new int[tokens * k];
        Arrays.fill(poison, -7);
        gpu.copyIn(poison, ids.g, poison.length);
        Both w = poisoned(tokens * k);
        host.topkGate(logits.h, bias == null ? null : bias.h, tokens, experts, k, sigmoid, nGroup, topkGroup,
                normalize, scale, ids.h, w.h);
        gpu.topkGate(logits.g, bias == null ? null : bias.g, tokens, experts, k, sigmoid, nGroup, topkGroup,
                normalize, scale, ids.g, w.g);
        int[] want = new int[tokens * k];
        int[] got = new int[tokens * k];
        host.copyOut(ids.h, want, want.length);
        gpu.copyOut(ids.g, got, got.length);
        int wrong = 0;
        for (int i = 0; i < want.length; i++) {
            if (want[i] != got[i]) {
                wrong++;
            }
        }
        CheckResult weights = compare("topk_gate " + what + " " + tokens + "x" + experts + " k" + k, w, tokens * k,
                KernelChecks.F32_TOL, "");
        return wrong == 0 ? weights : new CheckResult(weights.name(), Double.NaN, weights.tolerance(),
                wrong + " expert ids differ");
    }

    public CheckResult gatherRows(int srcRows, int n, int rows, int idxOff) {
        Both src = f32(rnd.gaussian(srcRows * n, 1));
        int[] idx = new int[idxOff + rows + 2];
        for (int i = 0; i < idx.length; i++) {
            idx[i] = rnd.random().nextInt(srcRows);  // repeats allowed: a token routed twice is gathered twice
        }
        idx[idxOff] = srcRows - 1;
        Both dIdx = i32(idx);
        Both dst = poisoned(rows * n);
        host.gatherRows(src.h, dIdx.h, idxOff, dst.h, rows, n);
        gpu.gatherRows(src.g, dIdx.g, idxOff, dst.g, rows, n);
        return compare("gather_rows " + rows + " of " + srcRows + "x" + n, dst, rows * n, 0, "");
    }

    public CheckResult scatterAddRows(int dstRows, int n, int rows, int idxOff) {
        Both src = f32(rnd.gaussian(rows * n, 1));
        int[] perm = rnd.permutation(dstRows);
        int[] idx = new int[idxOff + rows + 2];
        for (int i = 0; i < idx.length; i++) {
            idx[i] = i >= idxOff && i < idxOff + rows ? perm[i - idxOff] : rnd.random().nextInt(dstRows);
        }
        Both dIdx = i32(idx);
        Both w = f32(rnd.gaussian(idx.length, 1));
        Both dst = f32(rnd.gaussian(dstRows * n, 1));
        host.scatterAddRows(src.h, dIdx.h, w.h, idxOff, dst.h, rows, n);
        gpu.scatterAddRows(src.g, dIdx.g, w.g, idxOff, dst.g, rows, n);
        return compare("scatter_add_rows " + rows + " into " + dstRows + "x" + n, dst, dstRows * n,
                KernelChecks.F32_TOL, "");
    }

    public CheckResult gatedAdd(int rows, int n) {
        Both y = f32(rnd.gaussian(rows * n, 1));
        Both x = f32(rnd.gaussian(rows * n, 1));
        Both g = f32(rnd.gaussian(rows, 2));
        host.gatedAdd(y.h, x.h, g.h, rows, n);
        gpu.gatedAdd(y.g, x.g, g.g, rows, n);
        return compare("gated_add " + rows + "x" + n, y, rows * n, KernelChecks.F32_TOL, "");
    }

    /** Choices per token, distinct within a token (as the gate chooses), with one pair out of range if asked. */
    private int[] choices(int tokens, int k, int experts, boolean dropOne) {
        int[] ids = new int[tokens * k];
        for (int t = 0; t < tokens; t++) {
            int[] perm = rnd.permutation(experts);
            System.arraycopy(perm, 0, ids, t * k, k);
        }
        if (dropOne) {
            ids[ids.length / 2] = experts + 3;
        }
        return ids;
    }

    private int[] ints(DeviceOps ops, DeviceTensor t, int n) {
        int[] out = new int[n];
        Arrays.fill(out, Integer.MIN_VALUE);
        ops.copyOut(t, out, n);
        return out;
    }

    /** The device's grouping by expert: offsets, slots and tokens exactly as HostOps's. */
    public CheckResult routeByExpert(int tokens, int k, int experts, boolean dropOne) {
        int pairs = tokens * k;
        Both ids = i32(choices(tokens, k, experts, dropOne));
        Both offsets = i32(new int[experts + 1]);
        Both slotOfPair = i32(new int[pairs]);
        Both tokenOfSlot = i32(new int[pairs]);
        host.routeByExpert(ids.h, tokens, k, experts, offsets.h, slotOfPair.h, tokenOfSlot.h);
        gpu.routeByExpert(ids.g, tokens, k, experts, offsets.g, slotOfPair.g, tokenOfSlot.g);
        int wrong = 0;
        for (DeviceTensor[] t : new DeviceTensor[][]{{offsets.h, offsets.g}, {slotOfPair.h, slotOfPair.g},
                {tokenOfSlot.h, tokenOfSlot.g}}) {
            int n = (int) t[0].length();
            int[] want = ints(host, t[0], n);
            int[] got = ints(gpu, t[1], n);
            for (int i = 0; i < n; i++) {
                wrong += want[i] != got[i] ? 1 : 0;
            }
        }
        return new CheckResult("ops route_by_expert " + tokens + "x" + k + " of " + experts
                + (dropOne ? ", one id out of range" : ""), wrong == 0 ? 0 : Double.NaN, 0,
                wrong == 0 ? "" : wrong + " entries differ");
    }

    /** Routed experts as DeviceForward runs them: route, gather, grouped product, combine. */
    public CheckResult routedExperts(boolean bf16, int tokens, int k, int experts, int cols, int rows) {
        int pairs = tokens * k;
        Both ids = i32(choices(tokens, k, experts, false));
        Both weights = f32(rnd.gaussian(pairs, 1));
        Both x = f32(rnd.gaussian(tokens * cols, 1));
        Matrix[] ws = new Matrix[experts];
        for (int e = 0; e < experts; e++) {
            ws[e] = bf16 ? new Matrix("w" + e, DType.BF16, rows, cols, MemorySegment.ofArray(rnd.bf16(rows * cols, 0.05)))
                    : new Matrix("w" + e, DType.F32, rows, cols, MemorySegment.ofArray(rnd.gaussian(rows * cols, 0.05)));
        }
        Both w = new Both(keep(host.uploadStacked(ws)), keep(gpu.uploadStacked(ws)));
        Both offsets = i32(new int[experts + 1]);
        Both slotOfPair = i32(new int[pairs]);
        Both tokenOfSlot = i32(new int[pairs]);
        Both in = poisoned(pairs * cols);
        Both y = poisoned(pairs * rows);
        Both out = poisoned(tokens * rows);
        host.routeByExpert(ids.h, tokens, k, experts, offsets.h, slotOfPair.h, tokenOfSlot.h);
        gpu.routeByExpert(ids.g, tokens, k, experts, offsets.g, slotOfPair.g, tokenOfSlot.g);
        host.gatherRows(x.h, tokenOfSlot.h, 0, in.h, pairs, cols);
        gpu.gatherRows(x.g, tokenOfSlot.g, 0, in.g, pairs, cols);
        host.groupedLinear(w.h, experts, in.h, y.h, offsets.h, rows, cols, pairs);
        gpu.groupedLinear(w.g, experts, in.g, y.g, offsets.g, rows, cols, pairs);
        host.combineExperts(y.h, ids.h, weights.h, slotOfPair.h, tokens, k, out.h, rows);
        gpu.combineExperts(y.g, ids.g, weights.g, slotOfPair.g, tokens, k, out.g, rows);
        return compare("routed experts " + (bf16 ? "bf16" : "f32") + "w " + tokens + "x" + k + " of " + experts
                + ", " + rows + "x" + cols, out, tokens * rows, KernelChecks.F32_TOL, "");
    }

    /** Frees the GPU instances' scratch. */
    @Override
    public void close() {
        release();
        gpu.close();
        gpuGeneric.close();
    }
}
