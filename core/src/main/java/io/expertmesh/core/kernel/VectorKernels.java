package io.expertmesh.core.kernel;

import static io.expertmesh.core.kernel.VectorMath.F;
import static io.expertmesh.core.kernel.VectorMath.L;

import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.InterleavedRows;
import io.expertmesh.core.tensor.Matrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Collections;
import java.util.Map;
import java.util.Objects;
import java.util.WeakHashMap;
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
    /** Bytes of a matrix {@link #prepare} copies before releasing that part of the mapped source. */
    private static final long WEAVE_SLAB_BYTES = 4L << 20;

    private static final String NATIVE_KIND = "native AVX512-BF16";
    private static final String VECTOR_KIND = "Vector API";

    private final ComputePool pool;
    private final boolean nativeCode;
    /**
     * Interleaved copies made by {@link #prepare}, by source matrix, while the source is reachable: an expert
     * worker rebuilds a layer's runner from the same source matrices whenever its held experts change, and must
     * not copy the experts it kept again (an expert it drops takes its copy with it).
     */
    private final Map<Matrix, Matrix> prepared = Collections.synchronizedMap(new WeakHashMap<>());

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

    /**
     * With native kernels, a BF16 or FP8 matrix of at least one group of rows interleaved ({@link InterleavedRows}:
     * a batch-1 tile of rows reads one stream instead of one per row) into native memory of its own, copied by the
     * pool's threads (the cost is the first touch of that memory: see {@code weights.c}); the mapped original's
     * pages are then released ({@link MemorySegment#unload()}), so resident memory does not double. Otherwise
     * plain rows.
     */
    @Override
    public Matrix prepare(Matrix w) {
        int g = InterleavedRows.groupRows(w.dtype());
        if (!nativeCode || g == 0 || w.rows() < g) {
            return InterleavedRows.rowMajor(w);
        }
        if (w.interleaved()) {
            return w;
        }
        Matrix done = prepared.get(w);
        if (done != null) {
            return done;
        }
        int rows = w.rows();
        long rowBytes = w.dtype().bytes(w.cols());
        int groups = (rows + g - 1) / g;
        MemorySegment dst = NativeMatmul.allocateWeights(w.data().byteSize(), Arena.ofAuto());
        // Slab by slab, each slab's mapped source released once copied: at most a slab of the source is resident
        // beside the copy (whole, a 65 MB LM head was read in before its first page was let go).
        int slabGroups = (int) Math.max(1, WEAVE_SLAB_BYTES / (rowBytes * g));
        boolean mapped = w.data().isMapped();
        for (int first = 0; first < groups; first += slabGroups) {
            int slabFirst = first;
            int slab = Math.min(slabGroups, groups - first);
            int tasks = Math.min(slab, pool.threads() * CHUNKS_PER_THREAD);
            pool.parallelFor(tasks, t -> {
                int from = (slabFirst + (int) ((long) slab * t / tasks)) * g;
                int to = Math.min(rows, (slabFirst + (int) ((long) slab * (t + 1) / tasks)) * g);
                NativeMatmul.weaveRows(w.data(), rows, rowBytes, g, from, to, dst);
            });
            if (mapped) {
                long start = rowBytes * slabFirst * g;
                long end = Math.min(w.data().byteSize(), rowBytes * (slabFirst + slab) * g);
                w.data().asSlice(start, end - start).unload();
            }
        }
        Matrix woven = new Matrix(w.name(), w.dtype(), rows, w.cols(), dst, w.scales(), true);
        prepared.put(w, woven);
        return woven;
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
     * multiple of 8, so that int4's interleaved quads of rows ({@link Int4Matmul}) and the groups of interleaved
     * BF16 and FP8 rows ({@link InterleavedRows}: 8 and 4) are never split between threads. Chunks hold at least
     * {@link #MIN_CHUNK_ROWS} (8) rows before the rounding, so none becomes empty.
     */
    private static int chunkStart(int rows, int k, int chunks) {
        return k == chunks ? rows : (int) ((long) rows * k / chunks) & ~7;
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
                NativeMatmul.bf16Rows(w.data(), w.rows(), w.cols(), from, to, x, xOff, out, outOff, batch,
                        w.interleaved());
                return;
            }
            if (w.interleaved()) {
                throw interleavedForNative(w);
            }
            Bf16Matmul.rows(w.data(), w.rows(), w.cols(), from, to, x, xOff, even, odd, out, outOff, batch, lanes);
        } else if (w.dtype() == DType.F8_E4M3) {
            if (nativeCode) {
                NativeMatmul.fp8Rows(w.data(), w.scales(), w.rows(), w.cols(), from, to, x, xOff, out, outOff, batch,
                        w.interleaved());
            } else if (w.interleaved()) {
                throw interleavedForNative(w);
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

    private static IllegalStateException interleavedForNative(Matrix w) {
        return new IllegalStateException(w.name() + " is interleaved for the native kernels, which these kernels do "
                + "not run: a matrix must come from the prepare() of the kernels that multiply by it");
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
        return VectorMath.reduceInRegisters(a0.add(a1)) + tailDot(a, aOff, b, bOff, i, n);
    }

    /** The scalar tail of {@link #dotKernel}: fma over columns {@code [i, n)} from zero. */
    private static float tailDot(float[] a, int aOff, float[] b, int bOff, int i, int n) {
        float tail = 0f;
        for (; i < n; i++) {
            tail = Math.fma(a[aOff + i], b[bOff + i], tail);
        }
        return tail;
    }

    /**
     * Rows in pairs, queries in fours: each pair of rows is read from memory once for all the queries, and each
     * 2L-element step loads 4 query and 2 row vectors for 8 (query, row) sums (dotRows: 2 loads per sum). Every
     * sum keeps dotKernel's two accumulators and its order, so the bits are dotRows'.
     */
    @Override
    public void dotRowsMulti(float[] q, int qOff, int qStride, int nq, float[] k, int kOff, int stride, int count,
                             int dim, float scale, float[] out, int outOff, int outStride) {
        if (count <= 0 || nq <= 0) {
            return;
        }
        checkStrided(qOff, nq, qStride, dim, q.length);
        checkStrided(kOff, count, stride, dim, k.length);
        checkStrided(outOff, nq, outStride, count, out.length);
        int quads = nq & ~3;
        float[] lanes = KernelScratch.get().lanes;
        int r = 0;
        for (; r + 2 <= count; r += 2) {
            int k0 = kOff + r * stride;
            int j = 0;
            for (; j < quads; j += 4) {
                dot4x2(q, qOff + j * qStride, qStride, k, k0, k0 + stride, dim, scale, out,
                        outOff + j * outStride + r, outStride, lanes);
            }
            for (; j < nq; j++) {
                int o = outOff + j * outStride + r;
                out[o] = dotKernel(q, qOff + j * qStride, k, k0, dim) * scale;
                out[o + 1] = dotKernel(q, qOff + j * qStride, k, k0 + stride, dim) * scale;
            }
        }
        if (r < count) {
            for (int j = 0; j < nq; j++) {
                out[outOff + j * outStride + r] = dotKernel(q, qOff + j * qStride, k, kOff + r * stride, dim) * scale;
            }
        }
    }

    /**
     * Scores of queries q0 .. q0 + 3·qs against rows r0 and r1: 16 accumulators (each sum's two of dotKernel).
     * The sums go through {@code lanes} (8·L floats) to {@link VectorMath#reduce8} (the lane tree of all 8 at once)
     * rather than through a helper taking vectors: a vector passed to a call the JIT does not inline is boxed.
     */
    private static void dot4x2(float[] q, int q0, int qs, float[] k, int r0, int r1, int n, float scale,
                               float[] out, int o, int os, float[] lanes) {
        int q1 = q0 + qs;
        int q2 = q1 + qs;
        int q3 = q2 + qs;
        int step = 2 * L;
        int main = n / step * step;
        FloatVector z = FloatVector.zero(F);
        FloatVector a00 = z, a01 = z, a10 = z, a11 = z, a20 = z, a21 = z, a30 = z, a31 = z;   // low halves
        FloatVector b00 = z, b01 = z, b10 = z, b11 = z, b20 = z, b21 = z, b30 = z, b31 = z;   // high halves
        for (int i = 0; i < main; i += step) {
            FloatVector x0 = FloatVector.fromArray(F, k, r0 + i);
            FloatVector x1 = FloatVector.fromArray(F, k, r1 + i);
            FloatVector y = FloatVector.fromArray(F, q, q0 + i);
            a00 = y.fma(x0, a00);
            a01 = y.fma(x1, a01);
            y = FloatVector.fromArray(F, q, q1 + i);
            a10 = y.fma(x0, a10);
            a11 = y.fma(x1, a11);
            y = FloatVector.fromArray(F, q, q2 + i);
            a20 = y.fma(x0, a20);
            a21 = y.fma(x1, a21);
            y = FloatVector.fromArray(F, q, q3 + i);
            a30 = y.fma(x0, a30);
            a31 = y.fma(x1, a31);
            x0 = FloatVector.fromArray(F, k, r0 + i + L);
            x1 = FloatVector.fromArray(F, k, r1 + i + L);
            y = FloatVector.fromArray(F, q, q0 + i + L);
            b00 = y.fma(x0, b00);
            b01 = y.fma(x1, b01);
            y = FloatVector.fromArray(F, q, q1 + i + L);
            b10 = y.fma(x0, b10);
            b11 = y.fma(x1, b11);
            y = FloatVector.fromArray(F, q, q2 + i + L);
            b20 = y.fma(x0, b20);
            b21 = y.fma(x1, b21);
            y = FloatVector.fromArray(F, q, q3 + i + L);
            b30 = y.fma(x0, b30);
            b31 = y.fma(x1, b31);
        }
        int i = main;
        if (i + L <= n) {
            FloatVector x0 = FloatVector.fromArray(F, k, r0 + i);
            FloatVector x1 = FloatVector.fromArray(F, k, r1 + i);
            FloatVector y = FloatVector.fromArray(F, q, q0 + i);
            a00 = y.fma(x0, a00);
            a01 = y.fma(x1, a01);
            y = FloatVector.fromArray(F, q, q1 + i);
            a10 = y.fma(x0, a10);
            a11 = y.fma(x1, a11);
            y = FloatVector.fromArray(F, q, q2 + i);
            a20 = y.fma(x0, a20);
            a21 = y.fma(x1, a21);
            y = FloatVector.fromArray(F, q, q3 + i);
            a30 = y.fma(x0, a30);
            a31 = y.fma(x1, a31);
            i += L;
        }
        a00.add(b00).intoArray(lanes, 0);
        a01.add(b01).intoArray(lanes, L);
        a10.add(b10).intoArray(lanes, 2 * L);
        a11.add(b11).intoArray(lanes, 3 * L);
        a20.add(b20).intoArray(lanes, 4 * L);
        a21.add(b21).intoArray(lanes, 5 * L);
        a30.add(b30).intoArray(lanes, 6 * L);
        a31.add(b31).intoArray(lanes, 7 * L);
        VectorMath.reduce8(lanes, 0);
        out[o] = (lanes[0] + tailDot(q, q0, k, r0, i, n)) * scale;
        out[o + 1] = (lanes[1] + tailDot(q, q0, k, r1, i, n)) * scale;
        out[o + os] = (lanes[2] + tailDot(q, q1, k, r0, i, n)) * scale;
        out[o + os + 1] = (lanes[3] + tailDot(q, q1, k, r1, i, n)) * scale;
        out[o + 2 * os] = (lanes[4] + tailDot(q, q2, k, r0, i, n)) * scale;
        out[o + 2 * os + 1] = (lanes[5] + tailDot(q, q2, k, r1, i, n)) * scale;
        out[o + 3 * os] = (lanes[6] + tailDot(q, q3, k, r0, i, n)) * scale;
        out[o + 3 * os + 1] = (lanes[7] + tailDot(q, q3, k, r1, i, n)) * scale;
    }

    /** Index check of {@code count} runs of {@code len} elements, {@code stride} apart, from {@code off}. */
    private static void checkStrided(int off, int count, int stride, int len, int length) {
        if (stride < 0) {
            throw new IllegalArgumentException("stride must be >= 0, got " + stride);
        }
        long last = (long) (count - 1) * stride + len;
        Objects.checkFromIndexSize(off, last > Integer.MAX_VALUE ? -1 : (int) last, length);
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
        axpyRowsFrom(w, wOff, v, vOff, stride, count, dim, y, yOff, 0);
    }

    /** {@link #axpyRows} over columns {@code [j0, dim)}, unchecked. */
    private static void axpyRowsFrom(float[] w, int wOff, float[] v, int vOff, int stride, int count, int dim,
                                     float[] y, int yOff, int j0) {
        // Columns outer, rows inner: four vectors of y stay in registers over all the rows, so y is loaded and
        // stored once per call instead of once per row (attention's weighted sum: hundreds of rows of 512 floats,
        // measured a fifth of decode time at 8 streams, rows inner). Each y[j] still takes fma(w[i], v[i][j], .) in
        // row order, so the bits are those of count calls of axpy.
        int bound = F.loopBound(dim);
        int j = j0;
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

    /**
     * Rows in chunks of {@link #AXPY_CHUNK_ROWS} (they stay in L2 while every group of four weight vectors passes
     * over them), four weight vectors at a time over four column vectors: each row's vectors are loaded once for
     * the four (axpyRows: once per weight vector). Each y element still takes its rows' products in row order,
     * so the bits are axpyRows'.
     */
    @Override
    public void axpyRowsMulti(float[] w, int wOff, int wStride, int nq, float[] v, int vOff, int stride, int count,
                              int dim, float[] y, int yOff, int yStride) {
        if (count <= 0 || nq <= 0) {
            return;
        }
        checkStrided(wOff, nq, wStride, count, w.length);
        checkStrided(vOff, count, stride, dim, v.length);
        checkStrided(yOff, nq, yStride, dim, y.length);
        for (int r = 0; r < count; r += AXPY_CHUNK_ROWS) {
            int n = Math.min(AXPY_CHUNK_ROWS, count - r);
            int rowOff = vOff + r * stride;
            int j = 0;
            for (; j + 4 <= nq; j += 4) {
                axpy4(w, wOff + j * wStride + r, wStride, v, rowOff, stride, n, dim, y, yOff + j * yStride, yStride);
            }
            for (; j < nq; j++) {
                axpyRowsFrom(w, wOff + j * wStride + r, v, rowOff, stride, n, dim, y, yOff + j * yStride, 0);
            }
        }
    }

    /** Rows of one chunk per {@link #axpyRowsMulti} call: 32 rows of 576 floats (MLA) are 72 KiB. */
    private static final int AXPY_CHUNK_ROWS = 32;

    /** Four weight vectors (w0 + j·ws) into four y rows (y0 + j·ys) over the same {@code count} rows. */
    private static void axpy4(float[] w, int w0, int ws, float[] v, int vOff, int stride, int count, int dim,
                              float[] y, int y0, int ys) {
        int w1 = w0 + ws;
        int w2 = w1 + ws;
        int w3 = w2 + ws;
        int y1 = y0 + ys;
        int y2 = y1 + ys;
        int y3 = y2 + ys;
        int bound = F.loopBound(dim);
        int j = 0;
        for (; j + 4 * L <= bound; j += 4 * L) {
            FloatVector c00 = FloatVector.fromArray(F, y, y0 + j);
            FloatVector c01 = FloatVector.fromArray(F, y, y0 + j + L);
            FloatVector c02 = FloatVector.fromArray(F, y, y0 + j + 2 * L);
            FloatVector c03 = FloatVector.fromArray(F, y, y0 + j + 3 * L);
            FloatVector c10 = FloatVector.fromArray(F, y, y1 + j);
            FloatVector c11 = FloatVector.fromArray(F, y, y1 + j + L);
            FloatVector c12 = FloatVector.fromArray(F, y, y1 + j + 2 * L);
            FloatVector c13 = FloatVector.fromArray(F, y, y1 + j + 3 * L);
            FloatVector c20 = FloatVector.fromArray(F, y, y2 + j);
            FloatVector c21 = FloatVector.fromArray(F, y, y2 + j + L);
            FloatVector c22 = FloatVector.fromArray(F, y, y2 + j + 2 * L);
            FloatVector c23 = FloatVector.fromArray(F, y, y2 + j + 3 * L);
            FloatVector c30 = FloatVector.fromArray(F, y, y3 + j);
            FloatVector c31 = FloatVector.fromArray(F, y, y3 + j + L);
            FloatVector c32 = FloatVector.fromArray(F, y, y3 + j + 2 * L);
            FloatVector c33 = FloatVector.fromArray(F, y, y3 + j + 3 * L);
            for (int i = 0; i < count; i++) {
                int row = vOff + i * stride + j;
                FloatVector x0 = FloatVector.fromArray(F, v, row);
                FloatVector x1 = FloatVector.fromArray(F, v, row + L);
                FloatVector x2 = FloatVector.fromArray(F, v, row + 2 * L);
                FloatVector x3 = FloatVector.fromArray(F, v, row + 3 * L);
                FloatVector a = FloatVector.broadcast(F, w[w0 + i]);
                c00 = a.fma(x0, c00);
                c01 = a.fma(x1, c01);
                c02 = a.fma(x2, c02);
                c03 = a.fma(x3, c03);
                a = FloatVector.broadcast(F, w[w1 + i]);
                c10 = a.fma(x0, c10);
                c11 = a.fma(x1, c11);
                c12 = a.fma(x2, c12);
                c13 = a.fma(x3, c13);
                a = FloatVector.broadcast(F, w[w2 + i]);
                c20 = a.fma(x0, c20);
                c21 = a.fma(x1, c21);
                c22 = a.fma(x2, c22);
                c23 = a.fma(x3, c23);
                a = FloatVector.broadcast(F, w[w3 + i]);
                c30 = a.fma(x0, c30);
                c31 = a.fma(x1, c31);
                c32 = a.fma(x2, c32);
                c33 = a.fma(x3, c33);
            }
            c00.intoArray(y, y0 + j);
            c01.intoArray(y, y0 + j + L);
            c02.intoArray(y, y0 + j + 2 * L);
            c03.intoArray(y, y0 + j + 3 * L);
            c10.intoArray(y, y1 + j);
            c11.intoArray(y, y1 + j + L);
            c12.intoArray(y, y1 + j + 2 * L);
            c13.intoArray(y, y1 + j + 3 * L);
            c20.intoArray(y, y2 + j);
            c21.intoArray(y, y2 + j + L);
            c22.intoArray(y, y2 + j + 2 * L);
            c23.intoArray(y, y2 + j + 3 * L);
            c30.intoArray(y, y3 + j);
            c31.intoArray(y, y3 + j + L);
            c32.intoArray(y, y3 + j + 2 * L);
            c33.intoArray(y, y3 + j + 3 * L);
        }
        if (j < dim) {
            // The last columns (fewer than four vectors' worth): axpyRows' own loops, one weight vector at a time.
            for (int q = 0; q < 4; q++) {
                axpyRowsFrom(w, w0 + q * ws, v, vOff, stride, count, dim, y, y0 + q * ys, j);
            }
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
