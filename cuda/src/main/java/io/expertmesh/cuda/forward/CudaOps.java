package io.expertmesh.cuda.forward;

import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;

import io.expertmesh.core.tensor.Matrix;
import io.expertmesh.cuda.AttentionOps;
import io.expertmesh.cuda.CudaDevice;
import io.expertmesh.cuda.CudaKernel;
import io.expertmesh.cuda.DeviceBuffer;
import io.expertmesh.cuda.ElementwiseOps;
import io.expertmesh.cuda.KernelSpecs;
import io.expertmesh.cuda.LinearOps;
import io.expertmesh.cuda.MlaDecode;
import io.expertmesh.cuda.forward.DeviceTensor.Kind;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import jcuda.Pointer;

/**
 * {@link DeviceOps} on the GPU: each operation is one or two kernel launches (forward.cu for the operations the
 * older launchers lack; elementwise.cu, linear.cu, attention.cu and mla_decode.cu through {@link ElementwiseOps},
 * {@link LinearOps}, {@link AttentionOps} and {@link MlaDecode}), all on the default stream, so they run in call
 * order and only {@code copyOut} waits. Every call checks its arguments first ({@link OpShapes}): a wrong size or
 * kind is an {@link IllegalArgumentException} naming the argument, never a kernel reading past a buffer.
 *
 * <p>MLA attention with V3's shapes (latent 512, rope 64) runs the tensor-core split-KV kernel (the query rounded
 * to bf16 first, its partial outputs in scratch this instance keeps); other shapes, or {@code fastMla = false},
 * run the generic float32-query kernel. The scratch buffers are the only state (guarded: two runners may share an
 * instance); every launch goes to the one default stream, so calls from several threads run in call order.
 */
public final class CudaOps implements DeviceOps {
    private static final long UPLOAD_CHUNK = 64L << 20;
    private static final int GRID_STRIDE_BLOCKS = 8192;
    private static final int MLA_THREADS = 128;
    private static final int HEAD_LINEAR_WARPS = 8;
    /** Weight rows per block of the staged grouped products (linear.cu's LX_WARPS x LX_ROWS). */
    private static final int STAGED_ROWS = 32;

    private final CudaDevice device;
    // Resolved once here: a launch looks nothing up.
    private final CudaKernel addBiasF32;
    private final CudaKernel addF32;
    private final CudaKernel combineExpertsF32;
    private final CudaKernel copyStridedF32;
    private final CudaKernel embedBf16;
    private final CudaKernel embedF32;
    private final CudaKernel f32ToBf16;
    private final CudaKernel gatedAddF32;
    private final CudaKernel gatherRowsF32;
    private final CudaKernel groupedLinearBf16wF32;
    private final CudaKernel groupedLinearBf16wF32Xs;
    private final CudaKernel groupedLinearF32wF32;
    private final CudaKernel groupedLinearF32wF32Xs;
    private final CudaKernel headLinearBf16wF32;
    private final CudaKernel headLinearF32wF32;
    private final CudaKernel kvWriteBf16;
    private final CudaKernel mlaAttentionF32q;
    private final CudaKernel rmsNormStridedF32;
    private final CudaKernel routeByExpert;
    private final CudaKernel scatterAddRowsF32;
    private final CudaKernel zeroF32;
    private final ElementwiseOps elementwise;
    private final LinearOps linear;
    private final AttentionOps attention;
    private final MlaDecode mla;
    private final boolean fastMla;
    private DeviceBuffer qBf16;
    private DeviceBuffer oPart;
    private DeviceBuffer lsePart;
    /** The lengths hinted for the next attention calls ({@link #attentionLengths}); hintTokens 0 when none. */
    private int[] hintLens = new int[0];
    private int hintTokens;
    /** The split planned from the hint for planHeads heads (0: not yet): every layer of a step shares it. */
    private int planSplits;
    private int planHeads;

    /** With the fast MLA kernel for V3's shapes. */
    public CudaOps(CudaDevice device) {
        this(device, true);
    }

    /** @param fastMla run latent 512 + rope 64 on the tensor-core split kernel (else the generic kernel) */
    public CudaOps(CudaDevice device, boolean fastMla) {
        this.device = device;
        this.addBiasF32 = device.kernel(KernelSpecs.ADD_BIAS_F32);
        this.addF32 = device.kernel(KernelSpecs.ADD_F32);
        this.combineExpertsF32 = device.kernel(KernelSpecs.COMBINE_EXPERTS_F32);
        this.copyStridedF32 = device.kernel(KernelSpecs.COPY_STRIDED_F32);
        this.embedBf16 = device.kernel(KernelSpecs.EMBED_BF16);
        this.embedF32 = device.kernel(KernelSpecs.EMBED_F32);
        this.f32ToBf16 = device.kernel(KernelSpecs.F32_TO_BF16);
        this.gatedAddF32 = device.kernel(KernelSpecs.GATED_ADD_F32);
        this.gatherRowsF32 = device.kernel(KernelSpecs.GATHER_ROWS_F32);
        this.groupedLinearBf16wF32 = device.kernel(KernelSpecs.GROUPED_LINEAR_BF16W_F32);
        this.groupedLinearBf16wF32Xs = device.kernel(KernelSpecs.GROUPED_LINEAR_BF16W_F32_XS);
        this.groupedLinearF32wF32 = device.kernel(KernelSpecs.GROUPED_LINEAR_F32W_F32);
        this.groupedLinearF32wF32Xs = device.kernel(KernelSpecs.GROUPED_LINEAR_F32W_F32_XS);
        this.headLinearBf16wF32 = device.kernel(KernelSpecs.HEAD_LINEAR_BF16W_F32);
        this.headLinearF32wF32 = device.kernel(KernelSpecs.HEAD_LINEAR_F32W_F32);
        this.kvWriteBf16 = device.kernel(KernelSpecs.KV_WRITE_BF16);
        this.mlaAttentionF32q = device.kernel(KernelSpecs.MLA_ATTENTION_F32Q);
        this.rmsNormStridedF32 = device.kernel(KernelSpecs.RMS_NORM_STRIDED_F32);
        this.routeByExpert = device.kernel(KernelSpecs.ROUTE_BY_EXPERT);
        this.scatterAddRowsF32 = device.kernel(KernelSpecs.SCATTER_ADD_ROWS_F32);
        this.zeroF32 = device.kernel(KernelSpecs.ZERO_F32);
        this.elementwise = new ElementwiseOps(device);
        this.linear = new LinearOps(device);
        this.attention = new AttentionOps(device);
        this.mla = new MlaDecode(device);
        this.fastMla = fastMla;
    }

    @Override
    public String name() {
        return device.info().name();
    }

    /**
     * The device memory of an open CudaTensor: anything else is a caller's mistake named by {@code what}. Tensors of
     * any CudaOps are accepted (there is one device per process, so their memory is the same kind).
     */
    private static DeviceBuffer b(DeviceTensor t, String what) {
        if (!(t instanceof CudaTensor c)) {
            throw new IllegalArgumentException(what + " is not a CudaOps tensor: " + t);
        }
        if (c.closed()) {
            throw new IllegalArgumentException(what + " is closed");
        }
        return c.buffer();
    }

    private static int rowThreads(int n) {
        return Math.clamp((n + 31) / 32 * 32, 32, 256);
    }

    private static int strideBlocks(long n) {
        return (int) Math.clamp((n + 255) / 256, 1, GRID_STRIDE_BLOCKS);
    }

    @Override
    public DeviceTensor allocate(Kind kind, long length) {
        CudaTensor t = new CudaTensor(kind, length);
        t.buffer().fill(0f);
        return t;
    }

    @Override
    public DeviceTensor upload(Matrix w) {
        return uploadStacked(new Matrix[]{w});
    }

    @Override
    public DeviceTensor uploadStacked(Matrix[] matrices) {
        Matrix[] ws = OpShapes.uploadable(matrices);
        long per = OpShapes.stacked(ws);
        CudaTensor t = new CudaTensor(OpShapes.kindOf(ws[0]), per * ws.length);
        device.makeCurrent();
        long bytesPer = ws[0].data().byteSize();
        for (int m = 0; m < ws.length; m++) {
            copySegment(ws[m].data(), t.buffer(), m * bytesPer);
        }
        return t;
    }

    /**
     * In chunks of at most 64 MiB (one JCuda copy takes a buffer of at most 2 GiB). A native segment (the mapped
     * checkpoint) is copied from where it lies, through a direct ByteBuffer view at position 0 (no heap copy); a
     * heap segment (tests, converted weights) through a heap array.
     */
    private static void copySegment(MemorySegment seg, DeviceBuffer dst, long dstByte) {
        for (long o = 0; o < seg.byteSize(); o += UPLOAD_CHUNK) {
            long n = Math.min(UPLOAD_CHUNK, seg.byteSize() - o);
            MemorySegment part = seg.asSlice(o, n);
            Pointer src = part.isNative() ? Pointer.to(part.asByteBuffer())
                    : Pointer.to(part.toArray(ValueLayout.JAVA_BYTE));
            cuMemcpyHtoD(dst.pointer().withByteOffset(dstByte + o), src, n);
            CudaDevice.get().countCopy(true);
        }
    }

    @Override
    public DeviceTensor upload(float[] v) {
        CudaTensor t = new CudaTensor(Kind.F32, v.length);
        t.buffer().upload(v, 0, v.length);
        return t;
    }

    @Override
    public void copyIn(float[] src, int srcOff, DeviceTensor dst, long dstOff, int n) {
        OpShapes.copyIn(src.length, srcOff, dst, Kind.F32, dstOff, n);
        DeviceBuffer d = b(dst, "copy destination");
        if (n > 0) {
            device.makeCurrent();
            cuMemcpyHtoD(d.pointer().withByteOffset(dstOff * Float.BYTES),
                    Pointer.to(src).withByteOffset((long) srcOff * Float.BYTES), (long) n * Float.BYTES);
            device.countCopy(true);
        }
    }

    @Override
    public void copyIn(int[] src, DeviceTensor dst, int n) {
        OpShapes.copyIn(src.length, 0, dst, Kind.I32, 0, n);
        DeviceBuffer d = b(dst, "copy destination");
        if (n > 0) {
            device.makeCurrent();
            cuMemcpyHtoD(d.pointer(), Pointer.to(src), (long) n * Integer.BYTES);
            device.countCopy(true);
        }
    }

    @Override
    public void copyIn(short[] src, int srcOff, DeviceTensor dst, long dstOff, int n) {
        OpShapes.copyIn(src.length, srcOff, dst, Kind.BF16, dstOff, n);
        DeviceBuffer d = b(dst, "copy destination");
        if (n > 0) {
            device.makeCurrent();
            cuMemcpyHtoD(d.pointer().withByteOffset(dstOff * Short.BYTES),
                    Pointer.to(src).withByteOffset((long) srcOff * Short.BYTES), (long) n * Short.BYTES);
            device.countCopy(true);
        }
    }

    @Override
    public void copyOut(DeviceTensor src, long srcOff, float[] dst, int dstOff, int n) {
        OpShapes.copyOut(src, Kind.F32, srcOff, dst.length, dstOff, n);
        DeviceBuffer s = b(src, "copy source");
        device.synchronize();  // a failed kernel surfaces here with the driver's message (one wait per batch of copies)
        if (n > 0) {
            cuMemcpyDtoH(Pointer.to(dst).withByteOffset((long) dstOff * Float.BYTES),
                    s.pointer().withByteOffset(srcOff * Float.BYTES), (long) n * Float.BYTES);
            device.countCopy(false);
        }
    }

    @Override
    public void copyOut(DeviceTensor src, int[] dst, int n) {
        OpShapes.copyOut(src, Kind.I32, 0, dst.length, 0, n);
        DeviceBuffer s = b(src, "copy source");
        device.synchronize();
        if (n > 0) {
            cuMemcpyDtoH(Pointer.to(dst), s.pointer(), (long) n * Integer.BYTES);
            device.countCopy(false);
        }
    }

    @Override
    public void zero(DeviceTensor x, int n) {
        OpShapes.zero(x, n);
        DeviceBuffer bx = b(x, "x");
        if (n > 0) {
            zeroF32.launch(strideBlocks(n), 1, 1, 256, 0).ptr(bx).i32(n).go();
        }
    }

    @Override
    public void embed(DeviceTensor table, DeviceTensor ids, DeviceTensor out, int rows, int hidden) {
        long vocab = OpShapes.embed(table, ids, out, rows, hidden);
        (table.kind() == Kind.BF16 ? embedBf16 : embedF32).launch(rows, 1, 1, rowThreads(hidden), 0)
                .ptr(b(table, "embedding table")).ptr(b(ids, "ids")).ptr(b(out, "out")).i32(hidden).i32((int) vocab)
                .go();
    }

    @Override
    public void rmsNorm(DeviceTensor x, int xStride, DeviceTensor w, float eps, DeviceTensor out, int outStride,
                        int rows, int n) {
        OpShapes.rmsNorm(x, xStride, w, eps, out, outStride, rows, n);
        rmsNormStridedF32.launch(rows, 1, 1, rowThreads(n), 0).ptr(b(x, "x")).i32(xStride).ptr(b(w, "weight"))
                .ptr(b(out, "out")).i32(outStride).i32(n).f32(eps).go();
    }

    @Override
    public void rope(boolean interleaved, DeviceTensor x, DeviceTensor cos, DeviceTensor sin, int rows, int heads,
                     int rowStride, int headStride, int offset, int dim, int csStride) {
        OpShapes.rope(x, cos, sin, rows, heads, rowStride, headStride, offset, dim, csStride);
        elementwise.rope(interleaved, b(x, "x"), b(cos, "cos"), b(sin, "sin"), rows, heads, rowStride, headStride,
                offset, dim, csStride);
    }

    @Override
    public void linear(DeviceTensor w, DeviceTensor x, DeviceTensor out, int rows, int cols, int batch) {
        OpShapes.linear(w, x, out, rows, cols, batch);
        linear.linear(b(w, "weight"), w.kind() == Kind.BF16, b(x, "x"), b(out, "out"), rows, cols, batch);
    }

    @Override
    public void headLinear(DeviceTensor w, int heads, int rows, int cols, DeviceTensor x, int xRow, int xHead,
                           int xOff, DeviceTensor out, int oRow, int oHead, int oOff, int tokens) {
        OpShapes.headLinear(w, heads, rows, cols, x, xRow, xHead, xOff, out, oRow, oHead, oOff, tokens);
        CudaKernel k = w.kind() == Kind.BF16 ? headLinearBf16wF32 : headLinearF32wF32;
        k.launch((rows + HEAD_LINEAR_WARPS - 1) / HEAD_LINEAR_WARPS, heads, 1, HEAD_LINEAR_WARPS * 32, 0)
                .ptr(b(w, "weight")).i32(rows).i32(cols).ptr(b(x, "x")).i32(xRow).i32(xHead).i32(xOff)
                .ptr(b(out, "out")).i32(oRow).i32(oHead).i32(oOff).i32(tokens).go();
    }

    @Override
    public void copyStrided(DeviceTensor src, int sRow, int sHead, int sOff, DeviceTensor dst, int dRow, int dHead,
                            int dOff, int rows, int heads, int n) {
        OpShapes.copyStrided(src, sRow, sHead, sOff, dst, dRow, dHead, dOff, rows, heads, n);
        copyStridedF32.launch(rows, heads, 1, rowThreads(n), 0).ptr(b(src, "src")).i32(sRow).i32(sHead).i32(sOff)
                .ptr(b(dst, "dst")).i32(dRow).i32(dHead).i32(dOff).i32(n).go();
    }

    @Override
    public void addBias(DeviceTensor x, DeviceTensor bias, int rows, int n) {
        OpShapes.addBias(x, bias, rows, n);
        addBiasF32.launch(rows, 1, 1, rowThreads(n), 0).ptr(b(x, "x")).ptr(b(bias, "bias")).i32(n).go();
    }

    @Override
    public void add(DeviceTensor y, DeviceTensor x, int n) {
        OpShapes.add(y, x, n);
        addF32.launch(strideBlocks(n), 1, 1, 256, 0).ptr(b(y, "y")).ptr(b(x, "x")).i32(n).go();
    }

    @Override
    public void swiglu(DeviceTensor gate, DeviceTensor up, DeviceTensor out, int n) {
        OpShapes.swiglu(gate, up, out, n);
        elementwise.swiglu(b(gate, "gate"), b(up, "up"), b(out, "out"), n);
    }

    @Override
    public void kvWrite(DeviceTensor src, int srcStride, DeviceTensor pool, int poolRow, int dstOff,
                        DeviceTensor slots, int rows, int n) {
        int poolSlots = OpShapes.kvWrite(src, srcStride, pool, poolRow, dstOff, slots, rows, n);
        kvWriteBf16.launch(rows, 1, 1, rowThreads(n), 0).ptr(b(src, "src")).i32(srcStride).ptr(b(pool, "pool"))
                .i32(poolRow).i32(dstOff).ptr(b(slots, "slots")).i32(n).i32(poolSlots).go();
    }

    @Override
    public synchronized void attentionLengths(int[] lens, int tokens) {
        planSplits = 0;
        if (tokens <= 0 || tokens > lens.length) {
            hintTokens = 0;
            return;
        }
        if (hintLens.length < tokens) {
            hintLens = new int[tokens];
        }
        System.arraycopy(lens, 0, hintLens, 0, tokens);
        hintTokens = tokens;
    }

    @Override
    public synchronized void mlaAttention(DeviceTensor q, DeviceTensor pool, DeviceTensor blockTable,
                                          DeviceTensor seqLens, DeviceTensor out, int tokens, int heads, int latent,
                                          int rope, int maxBlocks, int blockSize, float scale) {
        int poolBlocks = OpShapes.mlaAttention(q, pool, blockTable, seqLens, out, tokens, heads, latent, rope,
                maxBlocks, blockSize, scale);
        DeviceBuffer bq = b(q, "q");
        DeviceBuffer bp = b(pool, "pool");
        DeviceBuffer bt = b(blockTable, "block table");
        DeviceBuffer bl = b(seqLens, "seqLens");
        DeviceBuffer bo = b(out, "out");
        if (fastMla && latent == MlaDecode.LATENT && rope == MlaDecode.ROPE) {
            int n = tokens * heads * MlaDecode.ROW;
            qBf16 = atLeast(qBf16, (long) n * Short.BYTES);
            f32ToBf16.launch(strideBlocks(n), 1, 1, 256, 0).ptr(bq).ptr(qBf16).i32(n).go();
            // Lengths live on the device; the host's copy, when hinted for this many tokens, plans the split, else
            // the longest the table allows. Any split count is correct: splits past a sequence's end are empty
            // and the merge skips them.
            int splits;
            if (hintTokens == tokens) {
                if (planSplits == 0 || planHeads != heads) {
                    planSplits = mla.splitsFor(hintLens, tokens, heads);
                    planHeads = heads;
                }
                splits = planSplits;
            } else {
                splits = mla.splitsFor(tokens, heads, maxBlocks * blockSize);
            }
            oPart = atLeast(oPart, MlaDecode.partialFloats(tokens, heads, splits) * Float.BYTES);
            lsePart = atLeast(lsePart, (long) tokens * heads * splits * Float.BYTES);
            mla.run(qBf16, bp, bt, bl, bo, oPart, lsePart, tokens, heads, maxBlocks, blockSize, poolBlocks, splits,
                    scale);
        } else {
            mlaAttentionF32q.launch(heads, tokens, 1, MLA_THREADS, (2 * latent + rope) * Float.BYTES).ptr(bq).ptr(bp)
                    .ptr(bt).ptr(bl).ptr(bo).i32(heads).i32(latent).i32(rope).i32(maxBlocks).i32(blockSize)
                    .i32(poolBlocks).f32(scale).go();
        }
    }

    /** Scratch that grows geometrically; freeing an old buffer waits for the kernels that used it (cuMemFree). */
    private static DeviceBuffer atLeast(DeviceBuffer b, long bytes) {
        if (b != null && b.bytes() >= bytes) {
            return b;
        }
        long size = Math.max(bytes, b == null ? 0 : b.bytes() * 2);
        if (b != null) {
            b.close();
        }
        return DeviceBuffer.allocate(size);
    }

    @Override
    public void gqaAttention(DeviceTensor q, DeviceTensor pool, DeviceTensor blockTable, DeviceTensor seqLens,
                             DeviceTensor out, int tokens, int heads, int kvHeads, int dim, int maxBlocks,
                             int blockSize, float scale) {
        int poolBlocks = OpShapes.gqaAttention(q, pool, blockTable, seqLens, out, tokens, heads, kvHeads, dim,
                maxBlocks, blockSize, scale);
        attention.gqaDecode(b(q, "q"), b(pool, "pool"), b(blockTable, "block table"), b(seqLens, "seqLens"),
                b(out, "out"), tokens, heads, kvHeads, dim, maxBlocks, blockSize, poolBlocks, scale);
    }

    @Override
    public void topkGate(DeviceTensor logits, DeviceTensor bias, int tokens, int experts, int k, boolean sigmoid,
                         int nGroup, int topkGroup, boolean normalize, float scale, DeviceTensor ids,
                         DeviceTensor weights) {
        OpShapes.topkGate(logits, bias, tokens, experts, k, nGroup, topkGroup, ids, weights);
        elementwise.topkGate(b(logits, "logits"), bias == null ? null : b(bias, "bias"), tokens, experts, k,
                sigmoid, nGroup, topkGroup, normalize, scale, b(ids, "ids"), b(weights, "weights"));
    }

    @Override
    public void gatherRows(DeviceTensor src, DeviceTensor idx, int idxOff, DeviceTensor dst, int rows, int n) {
        int srcRows = OpShapes.gatherRows(src, idx, idxOff, dst, rows, n);
        gatherRowsF32.launch(rows, 1, 1, rowThreads(n), 0).ptr(b(src, "src")).ptr(b(idx, "idx")).i32(idxOff)
                .ptr(b(dst, "dst")).i32(n).i32(srcRows).go();
    }

    @Override
    public void scatterAddRows(DeviceTensor src, DeviceTensor idx, DeviceTensor w, int idxOff, DeviceTensor dst,
                               int rows, int n) {
        int dstRows = OpShapes.scatterAddRows(src, idx, w, idxOff, dst, rows, n);
        scatterAddRowsF32.launch(rows, 1, 1, rowThreads(n), 0).ptr(b(src, "src")).ptr(b(idx, "idx")).ptr(b(w, "w"))
                .i32(idxOff).ptr(b(dst, "dst")).i32(n).i32(dstRows).go();
    }

    @Override
    public void routeByExpert(DeviceTensor ids, int tokens, int k, int experts, DeviceTensor offsets,
                              DeviceTensor slotOfPair, DeviceTensor tokenOfSlot) {
        OpShapes.routeByExpert(ids, tokens, k, experts, offsets, slotOfPair, tokenOfSlot);
        routeByExpert.launch(1, 1, 1, 256, 0).ptr(b(ids, "ids")).i32(tokens * k).i32(k).i32(experts)
                .ptr(b(offsets, "offsets")).ptr(b(slotOfPair, "slotOfPair")).ptr(b(tokenOfSlot, "tokenOfSlot")).go();
    }

    @Override
    public void groupedLinear(DeviceTensor w, int experts, DeviceTensor x, DeviceTensor out, DeviceTensor offsets,
                              int rows, int cols, int pairs) {
        OpShapes.groupedLinear(w, experts, x, out, offsets, rows, cols, pairs);
        // Rows per expert are on the device: the mean picks the body (both give the same bits).
        if (pairs > (long) LinearOps.STAGED_ABOVE_BATCH * experts) {
            CudaKernel k = w.kind() == Kind.BF16 ? groupedLinearBf16wF32Xs : groupedLinearF32wF32Xs;
            k.launch((rows + STAGED_ROWS - 1) / STAGED_ROWS, experts, 1, 256, 0)
                    .ptr(b(w, "weight")).ptr(b(x, "x")).ptr(b(out, "out")).ptr(b(offsets, "offsets")).i32(rows)
                    .i32(cols).go();
        } else {
            CudaKernel k = w.kind() == Kind.BF16 ? groupedLinearBf16wF32 : groupedLinearF32wF32;
            k.launch((rows + HEAD_LINEAR_WARPS - 1) / HEAD_LINEAR_WARPS, experts, 1, HEAD_LINEAR_WARPS * 32, 0)
                    .ptr(b(w, "weight")).ptr(b(x, "x")).ptr(b(out, "out")).ptr(b(offsets, "offsets")).i32(rows)
                    .i32(cols).go();
        }
    }

    @Override
    public void combineExperts(DeviceTensor y, DeviceTensor ids, DeviceTensor weights, DeviceTensor slotOfPair,
                               int tokens, int k, DeviceTensor out, int n) {
        OpShapes.combineExperts(y, ids, weights, slotOfPair, tokens, k, out, n);
        combineExpertsF32.launch(tokens, 1, 1, rowThreads(n), 0).ptr(b(y, "y")).ptr(b(ids, "ids"))
                .ptr(b(weights, "weights")).ptr(b(slotOfPair, "slotOfPair")).i32(k).ptr(b(out, "out")).i32(n).go();
    }

    @Override
    public void gatedAdd(DeviceTensor y, DeviceTensor x, DeviceTensor g, int rows, int n) {
        OpShapes.gatedAdd(y, x, g, rows, n);
        gatedAddF32.launch(rows, 1, 1, rowThreads(n), 0).ptr(b(y, "y")).ptr(b(x, "x")).ptr(b(g, "g")).i32(n).go();
    }

    @Override
    public synchronized void close() {
        for (DeviceBuffer s : new DeviceBuffer[]{qBf16, oPart, lsePart}) {
            if (s != null) {
                s.close();
            }
        }
        qBf16 = null;
        oPart = null;
        lsePart = null;
    }
}
