package io.expertmesh.cuda.forward;

import io.expertmesh.core.tensor.Matrix;
import io.expertmesh.cuda.DeviceCounts;
import io.expertmesh.cuda.MlaDecode;

/**
 * A {@link DeviceOps} that passes every call on and counts what {@link CudaOps} issues for it: kernel launches,
 * copies each way, and waits (a copy to the host waits for the device unless nothing was launched since the last
 * wait, as {@code CudaDevice.synchronize} does). With {@link HostOps} inside, this counts a forward step's host-side
 * work on any machine; on a GPU, {@code CudaDevice.counts()} counts the real launches and must agree.
 *
 * <p>Launches per op are CudaOps's: one per op, except the fast MLA path (query to bf16, split, merge: three),
 * and a zero of nothing (none). Weight uploads are counted as one copy per matrix (CudaOps copies in 64 MiB
 * chunks); scratch allocation is a memset, not counted.
 */
public final class CountingOps implements DeviceOps {
    private final DeviceOps inner;
    private final boolean fastMla;
    private long launches;
    private long copiesToDevice;
    private long copiesToHost;
    private long syncs;
    private boolean pending;

    /** @param fastMla as the CudaOps counted: latent 512 + rope 64 on the split kernel */
    public CountingOps(DeviceOps inner, boolean fastMla) {
        this.inner = inner;
        this.fastMla = fastMla;
    }

    public synchronized DeviceCounts counts() {
        return new DeviceCounts(launches, copiesToDevice, copiesToHost, syncs);
    }

    private synchronized void launch(int n) {
        launches += n;
        pending |= n > 0;
    }

    private synchronized void up(int n) {
        if (n > 0) {
            copiesToDevice++;
        }
    }

    private synchronized void down(int n) {
        if (pending) {
            syncs++;
            pending = false;
        }
        if (n > 0) {
            copiesToHost++;
        }
    }

    @Override
    public String name() {
        return inner.name() + " (counted)";
    }

    @Override
    public DeviceTensor allocate(DeviceTensor.Kind kind, long length) {
        return inner.allocate(kind, length);
    }

    @Override
    public DeviceTensor upload(Matrix w) {
        up(1);
        return inner.upload(w);
    }

    @Override
    public DeviceTensor uploadStacked(Matrix[] ws) {
        up(ws.length);
        return inner.uploadStacked(ws);
    }

    @Override
    public DeviceTensor upload(float[] v) {
        up(v.length);
        return inner.upload(v);
    }

    @Override
    public void copyIn(float[] src, int srcOff, DeviceTensor dst, long dstOff, int n) {
        inner.copyIn(src, srcOff, dst, dstOff, n);
        up(n);
    }

    @Override
    public void copyIn(int[] src, DeviceTensor dst, int n) {
        inner.copyIn(src, dst, n);
        up(n);
    }

    @Override
    public void copyIn(short[] src, int srcOff, DeviceTensor dst, long dstOff, int n) {
        inner.copyIn(src, srcOff, dst, dstOff, n);
        up(n);
    }

    @Override
    public void copyOut(DeviceTensor src, long srcOff, float[] dst, int dstOff, int n) {
        inner.copyOut(src, srcOff, dst, dstOff, n);
        down(n);
    }

    @Override
    public void copyOut(DeviceTensor src, int[] dst, int n) {
        inner.copyOut(src, dst, n);
        down(n);
    }

    @Override
    public void zero(DeviceTensor x, int n) {
        inner.zero(x, n);
        launch(n > 0 ? 1 : 0);
    }

    @Override
    public void embed(DeviceTensor table, DeviceTensor ids, DeviceTensor out, int rows, int hidden) {
        inner.embed(table, ids, out, rows, hidden);
        launch(1);
    }

    @Override
    public void rmsNorm(DeviceTensor x, int xStride, DeviceTensor w, float eps, DeviceTensor out, int outStride,
                        int rows, int n) {
        inner.rmsNorm(x, xStride, w, eps, out, outStride, rows, n);
        launch(1);
    }

    @Override
    public void rope(boolean interleaved, DeviceTensor x, DeviceTensor cos, DeviceTensor sin, int rows, int heads,
                     int rowStride, int headStride, int offset, int dim, int csStride) {
        inner.rope(interleaved, x, cos, sin, rows, heads, rowStride, headStride, offset, dim, csStride);
        launch(1);
    }

    @Override
    public void linear(DeviceTensor w, DeviceTensor x, DeviceTensor out, int rows, int cols, int batch) {
        inner.linear(w, x, out, rows, cols, batch);
        launch(1);
    }

    @Override
    public void headLinear(DeviceTensor w, int heads, int rows, int cols, DeviceTensor x, int xRow, int xHead,
                           int xOff, DeviceTensor out, int oRow, int oHead, int oOff, int tokens) {
        inner.headLinear(w, heads, rows, cols, x, xRow, xHead, xOff, out, oRow, oHead, oOff, tokens);
        launch(1);
    }

    @Override
    public void copyStrided(DeviceTensor src, int sRow, int sHead, int sOff, DeviceTensor dst, int dRow, int dHead,
                            int dOff, int rows, int heads, int n) {
        inner.copyStrided(src, sRow, sHead, sOff, dst, dRow, dHead, dOff, rows, heads, n);
        launch(1);
    }

    @Override
    public void addBias(DeviceTensor x, DeviceTensor bias, int rows, int n) {
        inner.addBias(x, bias, rows, n);
        launch(1);
    }

    @Override
    public void add(DeviceTensor y, DeviceTensor x, int n) {
        inner.add(y, x, n);
        launch(1);
    }

    @Override
    public void swiglu(DeviceTensor gate, DeviceTensor up, DeviceTensor out, int n) {
        inner.swiglu(gate, up, out, n);
        launch(1);
    }

    @Override
    public void kvWrite(DeviceTensor src, int srcStride, DeviceTensor pool, int poolRow, int dstOff,
                        DeviceTensor slots, int rows, int n) {
        inner.kvWrite(src, srcStride, pool, poolRow, dstOff, slots, rows, n);
        launch(1);
    }

    @Override
    public void attentionLengths(int[] lens, int tokens) {
        inner.attentionLengths(lens, tokens);
    }

    @Override
    public void mlaAttention(DeviceTensor q, DeviceTensor pool, DeviceTensor blockTable, DeviceTensor seqLens,
                             DeviceTensor out, int tokens, int heads, int latent, int rope, int maxBlocks,
                             int blockSize, float scale) {
        inner.mlaAttention(q, pool, blockTable, seqLens, out, tokens, heads, latent, rope, maxBlocks, blockSize,
                scale);
        launch(fastMla && latent == MlaDecode.LATENT && rope == MlaDecode.ROPE ? 3 : 1);
    }

    @Override
    public void gqaAttention(DeviceTensor q, DeviceTensor pool, DeviceTensor blockTable, DeviceTensor seqLens,
                             DeviceTensor out, int tokens, int heads, int kvHeads, int dim, int maxBlocks,
                             int blockSize, float scale) {
        inner.gqaAttention(q, pool, blockTable, seqLens, out, tokens, heads, kvHeads, dim, maxBlocks, blockSize,
                scale);
        launch(1);
    }

    @Override
    public void topkGate(DeviceTensor logits, DeviceTensor bias, int tokens, int experts, int k, boolean sigmoid,
                         int nGroup, int topkGroup, boolean normalize, float scale, DeviceTensor ids,
                         DeviceTensor weights) {
        inner.topkGate(logits, bias, tokens, experts, k, sigmoid, nGroup, topkGroup, normalize, scale, ids,
                weights);
        launch(1);
    }

    @Override
    public void gatherRows(DeviceTensor src, DeviceTensor idx, int idxOff, DeviceTensor dst, int rows, int n) {
        inner.gatherRows(src, idx, idxOff, dst, rows, n);
        launch(1);
    }

    @Override
    public void scatterAddRows(DeviceTensor src, DeviceTensor idx, DeviceTensor w, int idxOff, DeviceTensor dst,
                               int rows, int n) {
        inner.scatterAddRows(src, idx, w, idxOff, dst, rows, n);
        launch(1);
    }

    @Override
    public void routeByExpert(DeviceTensor ids, int tokens, int k, int experts, DeviceTensor offsets,
                              DeviceTensor slotOfPair, DeviceTensor tokenOfSlot) {
        inner.routeByExpert(ids, tokens, k, experts, offsets, slotOfPair, tokenOfSlot);
        launch(1);
    }

    @Override
    public void groupedLinear(DeviceTensor w, int experts, DeviceTensor x, DeviceTensor out, DeviceTensor offsets,
                              int rows, int cols, int pairs) {
        inner.groupedLinear(w, experts, x, out, offsets, rows, cols, pairs);
        launch(1);
    }

    @Override
    public void combineExperts(DeviceTensor y, DeviceTensor ids, DeviceTensor weights, DeviceTensor slotOfPair,
                               int tokens, int k, DeviceTensor out, int n) {
        inner.combineExperts(y, ids, weights, slotOfPair, tokens, k, out, n);
        launch(1);
    }

    @Override
    public void gatedAdd(DeviceTensor y, DeviceTensor x, DeviceTensor g, int rows, int n) {
        inner.gatedAdd(y, x, g, rows, n);
        launch(1);
    }

    @Override
    public void close() {
        inner.close();
    }
}
