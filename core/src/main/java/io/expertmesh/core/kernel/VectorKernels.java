package io.expertmesh.core.kernel;

import static io.expertmesh.core.kernel.VectorMath.F;
import static io.expertmesh.core.kernel.VectorMath.L;

import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Matrix;
import java.util.Objects;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * The fast CPU path: {@code jdk.incubator.vector} kernels ({@link FloatVector#SPECIES_PREFERRED}, 16 lanes with
 * AVX-512), the matmul spread over the {@link ComputePool}. Every loop has a scalar tail, so any size works.
 *
 * <p>Matmul is what decode spends its time on, and at batch 1 it is bound by memory bandwidth: each thread
 * streams a contiguous range of weight rows ({@link #CHUNKS_PER_THREAD} ranges per thread, claimed dynamically,
 * so a descheduled thread does not hold the rest back). BF16, FP8, int8 and (most) int4 rows run the native
 * AVX512-BF16 kernels of {@link NativeMatmul} where the CPU has them (the Vector API cannot emit their instruction).
 * Otherwise BF16 rows use the even/odd widening described in {@link Bf16Matmul}, int8 rows ({@code --quantize
 * int8}) the widen-and-scale loop of {@link Int8Matmul}, int4 rows ({@code --quantize int4}) the nibble version of
 * it in {@link Int4Matmul}, FP8 rows (a DeepSeek-V3 checkpoint as stored) the shift-widening of
 * {@link Fp8Matmul}; batch rows are tiled so a batch of B tokens reads each weight row from memory once.
 *
 * <p>Determinism: each output element is computed by one fixed sequence of operations that depends only on the
 * sizes, never on the batch, the position in the batch, the thread or the chunking; reductions use
 * {@link VectorMath#reduce} and {@code exp} uses {@link VectorMath#exp}, which have identical scalar twins for
 * tails. Element-wise kernels give the same bits for an element whether it falls in a vector or in the tail.
 *
 * <p>A matrix's segment must be readable from the pool's threads: memory-mapped through a shared, global or
 * automatic arena, not a confined one (a confined segment makes the workers fail with
 * {@link WrongThreadException}, which the call rethrows).
 *
 * <p>{@link #ropeInterleaved} stays scalar: its pairs are adjacent lanes, so vectorising needs lane shuffles
 * and it touches only a few hundred floats per head; {@link #ropeHalf} is vectorised.
 */
public final class VectorKernels implements Kernels {
    /** Row ranges per pool thread in a matmul: a few, so that a slow thread's share can be taken over. */
    private static final int CHUNKS_PER_THREAD = 4;
    /** Below this many multiply-adds, waking the pool costs more than it saves. */
    private static final long PARALLEL_MIN_WORK = 1 << 16;
    /** Fewest weight rows per chunk. */
    private static final int MIN_CHUNK_ROWS = 8;

    private static final String NATIVE_KIND = "native AVX512-BF16";
    private static final String VECTOR_KIND = "Vector API";

    private final ComputePool pool;
    private final boolean nativeCode;

    /**
     * Kernels on {@code pool}; BF16, FP8, int8 and int4 products run natively where {@link #bf16Kernel()} says so.
     */
    public VectorKernels(ComputePool pool) {
        this(pool, NativeMatmul.available());
    }

    /**
     * Kernels on {@code pool}, BF16, FP8, int8 and int4 products in native code only when {@code nativeCode} and
     * it is available: {@code false} keeps them in the Vector API ({@link Bf16Matmul}, {@link Fp8Matmul},
     * {@link Int8Matmul}, {@link Int4Matmul}), for tests and benchmarks of that path.
     */
    public VectorKernels(ComputePool pool, boolean nativeCode) {
        this.pool = Objects.requireNonNull(pool, "pool");
        this.nativeCode = nativeCode && NativeMatmul.available();
    }

    /**
     * Which kernels run BF16, FP8, int8 and int4 products in this process ({@code native AVX512-BF16}, or why the
     * Vector API).
     */
    public static String bf16Kernel() {
        return NativeMatmul.status();
    }

    /** {@link #matmulKind()} of kernels made with {@link #VectorKernels(ComputePool)} in this process. */
    public static String defaultMatmulKind() {
        return NativeMatmul.available() ? NATIVE_KIND : VECTOR_KIND;
    }

    @Override
    public String matmulKind() {
        return nativeCode ? NATIVE_KIND : VECTOR_KIND;
    }

    @Override
    public ComputePool pool() {
        return pool;
    }

    @Override
    public void matmul(Matrix w, float[] x, int xOff, float[] out, int outOff, int batch) {
        int rows = w.rows();
        checkMatmul(w, 0, rows, x, xOff, out, outOff, batch);
        if (batch == 0) {
            return;
        }
        KernelScratch scratch = KernelScratch.get();
        float[] even = null;
        float[] odd = null;
        if (w.dtype() == DType.BF16 && !nativeCode) {
            int half = Bf16Matmul.vectorCols(w.cols()) / 2 * batch;
            even = scratch.even(half);
            odd = scratch.odd(half);
            Bf16Matmul.splitEvenOdd(x, xOff, w.cols(), batch, even, odd);
        } else if (w.dtype() == DType.F8_E4M3 && !nativeCode) {
            // FP8 reorders its activations into one buffer (Fp8Matmul.splitPhases); it travels as "even".
            even = scratch.even(Fp8Matmul.vectorCols(w.cols()) * batch);
            Fp8Matmul.splitPhases(x, xOff, w.cols(), batch, even);
        }
        int tasks = chunks(rows, w.cols(), batch);
        if (tasks == 1) {
            computeRows(w, 0, rows, x, xOff, even, odd, out, outOff, batch, scratch.lanes);
            return;
        }
        float[] e = even;
        float[] o = odd;
        pool.parallelFor(tasks, t -> {
            int from = chunkStart(rows, t, tasks);
            int to = chunkStart(rows, t + 1, tasks);
            computeRows(w, from, to, x, xOff, e, o, out, outOff, batch, KernelScratch.get().lanes);
        });
    }

    @Override
    public void matmulRows(Matrix w, int rowFrom, int rowTo, float[] x, int xOff, float[] out, int outOff,
                           int batch) {
        checkMatmul(w, rowFrom, rowTo, x, xOff, out, outOff, batch);
        if (batch == 0 || rowFrom == rowTo) {
            return;
        }
        KernelScratch scratch = KernelScratch.get();
        float[] even = null;
        float[] odd = null;
        if (w.dtype() == DType.BF16 && !nativeCode) {
            int half = Bf16Matmul.vectorCols(w.cols()) / 2 * batch;
            even = scratch.even(half);
            odd = scratch.odd(half);
            Bf16Matmul.splitEvenOdd(x, xOff, w.cols(), batch, even, odd);
        } else if (w.dtype() == DType.F8_E4M3 && !nativeCode) {
            // FP8 reorders its activations into one buffer (Fp8Matmul.splitPhases); it travels as "even".
            even = scratch.even(Fp8Matmul.vectorCols(w.cols()) * batch);
            Fp8Matmul.splitPhases(x, xOff, w.cols(), batch, even);
        }
        computeRows(w, rowFrom, rowTo, x, xOff, even, odd, out, outOff, batch, scratch.lanes);
    }

    @Override
    public void matmuls(MatmulGroup g) {
        int n = g.size;
        KernelScratch scratch = KernelScratch.get();
        long total = 0;
        for (int i = 0; i < n; i++) {
            checkMatmul(g.w[i], 0, g.w[i].rows(), g.x[i], g.xOff[i], g.out[i], g.outOff[i], g.batch[i]);
            total += (long) g.w[i].rows() * g.w[i].cols() * g.batch[i];
        }
        int budget = pool.threads() == 1 || total < PARALLEL_MIN_WORK ? 0 : pool.threads() * CHUNKS_PER_THREAD;
        // Task table: each product gets chunks in proportion to its work (at least one).
        int tasks = 0;
        for (int i = 0; i < n; i++) {
            tasks += groupChunks(g.w[i], g.batch[i], budget, total);
        }
        scratch.ensureTasks(tasks, n);
        int t = 0;
        int splits = 0;
        for (int i = 0; i < n; i++) {
            Matrix w = g.w[i];
            boolean splitsInput = (w.dtype() == DType.BF16 || w.dtype() == DType.F8_E4M3) && !nativeCode;
            if (splitsInput && g.batch[i] > 0) {
                // Products that read the same activations share one split (of the same kind).
                int same = -1;
                for (int j = 0; j < i && same < 0; j++) {
                    if (g.x[j] == g.x[i] && g.xOff[j] == g.xOff[i] && g.batch[j] == g.batch[i]
                            && g.w[j].cols() == w.cols() && g.w[j].dtype() == w.dtype()) {
                        same = j;
                    }
                }
                if (same >= 0) {
                    scratch.jobEven[i] = scratch.jobEven[same];
                    scratch.jobOdd[i] = scratch.jobOdd[same];
                } else if (w.dtype() == DType.F8_E4M3) {
                    scratch.jobEven[i] = scratch.groupEven(splits, Fp8Matmul.vectorCols(w.cols()) * g.batch[i]);
                    scratch.jobOdd[i] = null;
                    splits++;
                    Fp8Matmul.splitPhases(g.x[i], g.xOff[i], w.cols(), g.batch[i], scratch.jobEven[i]);
                } else {
                    int half = Bf16Matmul.vectorCols(w.cols()) / 2 * g.batch[i];
                    scratch.jobEven[i] = scratch.groupEven(splits, half);
                    scratch.jobOdd[i] = scratch.groupOdd(splits, half);
                    splits++;
                    Bf16Matmul.splitEvenOdd(g.x[i], g.xOff[i], w.cols(), g.batch[i], scratch.jobEven[i],
                            scratch.jobOdd[i]);
                }
            } else {
                scratch.jobEven[i] = null;
                scratch.jobOdd[i] = null;
            }
            int c = groupChunks(w, g.batch[i], budget, total);
            for (int k = 0; k < c; k++) {
                scratch.taskJob[t] = i;
                scratch.taskFrom[t] = chunkStart(w.rows(), k, c);
                scratch.taskTo[t] = chunkStart(w.rows(), k + 1, c);
                t++;
            }
        }
        int[] job = scratch.taskJob;
        int[] from = scratch.taskFrom;
        int[] to = scratch.taskTo;
        float[][] even = scratch.jobEven;
        float[][] odd = scratch.jobOdd;
        if (budget == 0) {
            for (int k = 0; k < tasks; k++) {
                int i = job[k];
                computeRows(g.w[i], from[k], to[k], g.x[i], g.xOff[i], even[i], odd[i], g.out[i], g.outOff[i],
                        g.batch[i], scratch.lanes);
            }
            return;
        }
        pool.parallelFor(tasks, k -> {
            int i = job[k];
            computeRows(g.w[i], from[k], to[k], g.x[i], g.xOff[i], even[i], odd[i], g.out[i], g.outOff[i],
                    g.batch[i], KernelScratch.get().lanes);
        });
    }

    /**
     * First row of chunk {@code k} of {@code chunks} over {@code rows} ({@code rows} for {@code k == chunks}): a
     * multiple of 4, so that int4's interleaved quads of rows ({@link Int4Matmul}) are never split between
     * threads. Chunks hold at least {@link #MIN_CHUNK_ROWS} rows before the rounding, so none becomes empty.
     */
    private static int chunkStart(int rows, int k, int chunks) {
        return k == chunks ? rows : (int) ((long) rows * k / chunks) & ~3;
    }

    /** Chunks for one product of a group: its share of {@code budget} by work, at least one. */
    private static int groupChunks(Matrix w, int batch, int budget, long total) {
        if (budget == 0) {
            return 1;
        }
        long work = (long) w.rows() * w.cols() * batch;
        long share = Math.round((double) budget * work / total);
        return (int) Math.max(1, Math.min(w.rows() / MIN_CHUNK_ROWS, share));
    }

    private int chunks(int rows, int cols, int batch) {
        if (pool.threads() == 1 || (long) rows * cols * batch < PARALLEL_MIN_WORK) {
            return 1;
        }
        int byRows = Math.max(1, rows / MIN_CHUNK_ROWS);
        return Math.min(byRows, pool.threads() * CHUNKS_PER_THREAD);
    }

    private void computeRows(Matrix w, int from, int to, float[] x, int xOff, float[] even, float[] odd,
                             float[] out, int outOff, int batch, float[] lanes) {
        if (w.dtype() == DType.BF16) {
            if (nativeCode) {
                NativeMatmul.bf16Rows(w.data(), w.rows(), w.cols(), from, to, x, xOff, out, outOff, batch);
                return;
            }
            Bf16Matmul.rows(w.data(), w.rows(), w.cols(), from, to, x, xOff, even, odd, out, outOff, batch, lanes);
        } else if (w.dtype() == DType.F8_E4M3) {
            if (nativeCode) {
                NativeMatmul.fp8Rows(w.data(), w.scales(), w.rows(), w.cols(), from, to, x, xOff, out, outOff, batch);
            } else if (Fp8Matmul.supports()) {
                Fp8Matmul.rows(w.data(), w.scales(), w.rows(), w.cols(), from, to, x, xOff, even, out, outOff, batch,
                        lanes);
            } else {
                Fp8Matmul.rowsScalar(w, from, to, x, xOff, out, outOff, batch);
            }
        } else if (w.dtype() == DType.I8) {
            int block = w.block();
            if (nativeCode && NativeMatmul.int8(w.cols(), block)) {
                NativeMatmul.int8Rows(w.data(), w.scales(), w.rows(), w.cols(), block, from, to, x, xOff, out,
                        outOff, batch);
            } else if (Int8Matmul.supports(block)) {
                Int8Matmul.rows(w.data(), w.scales(), w.rows(), w.cols(), block, from, to, x, xOff, out, outOff,
                        batch, lanes);
            } else {
                Int8Matmul.rowsScalar(w.data(), w.scales(), w.rows(), w.cols(), block, from, to, x, xOff, out,
                        outOff, batch);
            }
        } else if (w.dtype() == DType.I4) {
            int block = w.block();
            if (nativeCode && NativeMatmul.int4(w.rows(), w.cols(), block)) {
                NativeMatmul.int4Rows(w.data(), w.scales(), w.rows(), w.cols(), from, to, x, xOff, out, outOff,
                        batch);
            } else if (Int4Matmul.supports(block)) {
                Int4Matmul.rows(w.data(), w.scales(), w.rows(), w.cols(), block, from, to, x, xOff, out, outOff,
                        batch, lanes);
            } else {
                Int4Matmul.rowsScalar(w.data(), w.scales(), w.rows(), w.cols(), block, from, to, x, xOff, out,
                        outOff, batch);
            }
        } else {
            F32Matmul.rows(w.data(), w.rows(), w.cols(), from, to, x, xOff, out, outOff, batch, lanes);
        }
    }

    private static void checkMatmul(Matrix w, int rowFrom, int rowTo, float[] x, int xOff, float[] out,
                                    int outOff, int batch) {
        if (batch < 0) {
            throw new IllegalArgumentException("batch must be >= 0, got " + batch);
        }
        Objects.checkFromToIndex(rowFrom, rowTo, w.rows());
        Objects.checkFromIndexSize(xOff, (long) batch * w.cols() > Integer.MAX_VALUE ? -1 : batch * w.cols(),
                x.length);
        Objects.checkFromIndexSize(outOff, (long) batch * w.rows() > Integer.MAX_VALUE ? -1 : batch * w.rows(),
                out.length);
    }

    @Override
    public float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        Objects.checkFromIndexSize(aOff, n, a.length);
        Objects.checkFromIndexSize(bOff, n, b.length);
        return dotKernel(a, aOff, b, bOff, n);
    }

    @Override
    public void dotRows(float[] q, int qOff, float[] k, int kOff, int stride, int count, int dim, float scale,
                        float[] out, int outOff) {
        if (count <= 0) {
            return;
        }
        Objects.checkFromIndexSize(qOff, dim, q.length);
        Objects.checkFromIndexSize(kOff, (count - 1) * stride + dim, k.length);
        Objects.checkFromIndexSize(outOff, count, out.length);
        for (int i = 0; i < count; i++) {
            out[outOff + i] = dotKernel(q, qOff, k, kOff + i * stride, dim) * scale;
        }
    }

    /**
     * Two accumulators over 2L-element steps, one L step, a scalar fma tail, the fixed lane tree (kept in
     * registers: attention calls this for every run of cached rows, and a per-call scratch lookup cost more than
     * the dot product of a short run).
     */
    private static float dotKernel(float[] a, int aOff, float[] b, int bOff, int n) {
        int step = 2 * L;
        int main = n / step * step;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        int i = 0;
        for (; i < main; i += step) {
            a0 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), a0);
            a1 = FloatVector.fromArray(F, a, aOff + i + L).fma(FloatVector.fromArray(F, b, bOff + i + L), a1);
        }
        if (i + L <= n) {
            a0 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), a0);
            i += L;
        }
        float tail = 0f;
        for (; i < n; i++) {
            tail = Math.fma(a[aOff + i], b[bOff + i], tail);
        }
        return VectorMath.reduceInRegisters(a0.add(a1)) + tail;
    }

    @Override
    public void axpyRows(float[] w, int wOff, float[] v, int vOff, int stride, int count, int dim, float[] y,
                         int yOff) {
        if (count <= 0) {
            return;
        }
        Objects.checkFromIndexSize(wOff, count, w.length);
        Objects.checkFromIndexSize(vOff, (count - 1) * stride + dim, v.length);
        Objects.checkFromIndexSize(yOff, dim, y.length);
        // Columns outer, rows inner: four vectors of y stay in registers over all the rows, so y is loaded and
        // stored once per call instead of once per row (attention's weighted sum: hundreds of rows of 512 floats,
        // measured a fifth of decode time at 8 streams, rows inner). Each y[j] still takes fma(w[i], v[i][j], .) in
        // row order, so the bits are those of count calls of axpy.
        int bound = F.loopBound(dim);
        int j = 0;
        for (; j + 4 * L <= bound; j += 4 * L) {
            FloatVector y0 = FloatVector.fromArray(F, y, yOff + j);
            FloatVector y1 = FloatVector.fromArray(F, y, yOff + j + L);
            FloatVector y2 = FloatVector.fromArray(F, y, yOff + j + 2 * L);
            FloatVector y3 = FloatVector.fromArray(F, y, yOff + j + 3 * L);
            for (int i = 0; i < count; i++) {
                FloatVector a = FloatVector.broadcast(F, w[wOff + i]);
                int row = vOff + i * stride + j;
                y0 = a.fma(FloatVector.fromArray(F, v, row), y0);
                y1 = a.fma(FloatVector.fromArray(F, v, row + L), y1);
                y2 = a.fma(FloatVector.fromArray(F, v, row + 2 * L), y2);
                y3 = a.fma(FloatVector.fromArray(F, v, row + 3 * L), y3);
            }
            y0.intoArray(y, yOff + j);
            y1.intoArray(y, yOff + j + L);
            y2.intoArray(y, yOff + j + 2 * L);
            y3.intoArray(y, yOff + j + 3 * L);
        }
        for (; j < bound; j += L) {
            FloatVector y0 = FloatVector.fromArray(F, y, yOff + j);
            for (int i = 0; i < count; i++) {
                y0 = FloatVector.broadcast(F, w[wOff + i]).fma(FloatVector.fromArray(F, v, vOff + i * stride + j), y0);
            }
            y0.intoArray(y, yOff + j);
        }
        for (; j < dim; j++) {
            float t = y[yOff + j];
            for (int i = 0; i < count; i++) {
                t = Math.fma(w[wOff + i], v[vOff + i * stride + j], t);
            }
            y[yOff + j] = t;
        }
    }

    @Override
    public void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
        Objects.checkFromIndexSize(xOff, n, x.length);
        Objects.checkFromIndexSize(yOff, n, y.length);
        axpyKernel(alpha, x, xOff, y, yOff, n);
    }

    private static void axpyKernel(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
        int bound = F.loopBound(n);
        FloatVector va = FloatVector.broadcast(F, alpha);
        int i = 0;
        for (; i < bound; i += L) {
            va.fma(FloatVector.fromArray(F, x, xOff + i), FloatVector.fromArray(F, y, yOff + i))
                    .intoArray(y, yOff + i);
        }
        for (; i < n; i++) {
            y[yOff + i] = Math.fma(alpha, x[xOff + i], y[yOff + i]);
        }
    }

    @Override
    public void rmsNorm(float[] x, int xOff, float[] weight, float eps, float[] out, int outOff, int n) {
        float ss = dot(x, xOff, x, xOff, n);
        float inv = (float) (1.0 / Math.sqrt(ss / n + eps));
        Objects.checkFromIndexSize(0, n, weight.length);
        Objects.checkFromIndexSize(outOff, n, out.length);
        int bound = F.loopBound(n);
        int i = 0;
        for (; i < bound; i += L) {
            FloatVector.fromArray(F, x, xOff + i).mul(inv).mul(FloatVector.fromArray(F, weight, i))
                    .intoArray(out, outOff + i);
        }
        for (; i < n; i++) {
            out[outOff + i] = x[xOff + i] * inv * weight[i];
        }
    }

    @Override
    public void swiglu(float[] gate, int gateOff, float[] up, int upOff, float[] out, int outOff, int n) {
        Objects.checkFromIndexSize(gateOff, n, gate.length);
        Objects.checkFromIndexSize(upOff, n, up.length);
        Objects.checkFromIndexSize(outOff, n, out.length);
        int bound = F.loopBound(n);
        int i = 0;
        for (; i < bound; i += L) {
            FloatVector g = FloatVector.fromArray(F, gate, gateOff + i);
            FloatVector silu = g.div(VectorMath.exp(g.neg()).add(1f));
            silu.mul(FloatVector.fromArray(F, up, upOff + i)).intoArray(out, outOff + i);
        }
        for (; i < n; i++) {
            float g = gate[gateOff + i];
            out[outOff + i] = g / (VectorMath.exp(-g) + 1f) * up[upOff + i];
        }
    }

    @Override
    public void softmax(float[] x, int off, int n) {
        Objects.checkFromIndexSize(off, n, x.length);
        int bound = F.loopBound(n);
        float max = Float.NEGATIVE_INFINITY;
        int i = 0;
        if (bound > 0) {
            FloatVector m = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
            for (; i < bound; i += L) {
                m = m.max(FloatVector.fromArray(F, x, off + i));
            }
            max = m.reduceLanes(VectorOperators.MAX);
        }
        for (; i < n; i++) {
            max = Math.max(max, x[off + i]);
        }
        FloatVector sum = FloatVector.zero(F);
        i = 0;
        for (; i < bound; i += L) {
            FloatVector e = VectorMath.exp(FloatVector.fromArray(F, x, off + i).sub(max));
            e.intoArray(x, off + i);
            sum = sum.add(e);
        }
        float tail = 0f;
        for (; i < n; i++) {
            float e = VectorMath.exp(x[off + i] - max);
            x[off + i] = e;
            tail += e;
        }
        float[] lanes = KernelScratch.get().lanes;
        sum.intoArray(lanes, 0);
        float inv = 1f / (VectorMath.reduce(lanes) + tail);
        i = 0;
        for (; i < bound; i += L) {
            FloatVector.fromArray(F, x, off + i).mul(inv).intoArray(x, off + i);
        }
        for (; i < n; i++) {
            x[off + i] *= inv;
        }
    }

    @Override
    public void ropeInterleaved(float[] x, int off, int dim, float[] cos, float[] sin, int csOff) {
        ScalarKernels.rotateInterleaved(x, off, dim, cos, sin, csOff);
    }

    @Override
    public void ropeHalf(float[] x, int off, int dim, float[] cos, float[] sin, int csOff) {
        int half = dim / 2;
        Objects.checkFromIndexSize(off, 2 * half, x.length);
        Objects.checkFromIndexSize(csOff, half, cos.length);
        Objects.checkFromIndexSize(csOff, half, sin.length);
        int bound = F.loopBound(half);
        int i = 0;
        for (; i < bound; i += L) {
            FloatVector a = FloatVector.fromArray(F, x, off + i);
            FloatVector b = FloatVector.fromArray(F, x, off + i + half);
            FloatVector c = FloatVector.fromArray(F, cos, csOff + i);
            FloatVector s = FloatVector.fromArray(F, sin, csOff + i);
            a.mul(c).sub(b.mul(s)).intoArray(x, off + i);
            a.mul(s).add(b.mul(c)).intoArray(x, off + i + half);
        }
        for (; i < half; i++) {
            float a = x[off + i];
            float b = x[off + i + half];
            float c = cos[csOff + i];
            float s = sin[csOff + i];
            x[off + i] = a * c - b * s;
            x[off + i + half] = a * s + b * c;
        }
    }
}
