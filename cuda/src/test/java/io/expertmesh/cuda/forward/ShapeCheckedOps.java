package io.expertmesh.cuda.forward;

import io.expertmesh.core.tensor.Matrix;
import io.expertmesh.cuda.forward.DeviceTensor.Kind;

/**
 * HostOps behind CudaOps's argument checks ({@link OpShapes}): DeviceForward run on this proves, without a GPU,
 * that every call the forward pass makes passes the checks CudaOps runs before its launches (they are stricter
 * than HostOps's: grid limits, aliasing, non-negative strides).
 */
final class ShapeCheckedOps implements DeviceOps {
    private final HostOps host = new HostOps();
    int calls;

    @Override
    public String name() {
        return "host emulation behind CudaOps's checks";
    }

    @Override
    public DeviceTensor allocate(Kind kind, long length) {
        OpShapes.tensor(kind, length);
        return host.allocate(kind, length);
    }

    @Override
    public DeviceTensor upload(Matrix w) {
        OpShapes.stacked(new Matrix[]{w});
        return host.upload(w);
    }

    @Override
    public DeviceTensor uploadStacked(Matrix[] ws) {
        OpShapes.stacked(ws);
        return host.uploadStacked(ws);
    }

    @Override
    public DeviceTensor upload(float[] v) {
        OpShapes.tensor(Kind.F32, v.length);
        return host.upload(v);
    }

    @Override
    public void copyIn(float[] src, int srcOff, DeviceTensor dst, long dstOff, int n) {
        OpShapes.copyIn(src.length, srcOff, dst, Kind.F32, dstOff, n);
        host.copyIn(src, srcOff, dst, dstOff, n);
    }

    @Override
    public void copyIn(int[] src, DeviceTensor dst, int n) {
        OpShapes.copyIn(src.length, 0, dst, Kind.I32, 0, n);
        host.copyIn(src, dst, n);
    }

    @Override
    public void copyIn(short[] src, int srcOff, DeviceTensor dst, long dstOff, int n) {
        OpShapes.copyIn(src.length, srcOff, dst, Kind.BF16, dstOff, n);
        host.copyIn(src, srcOff, dst, dstOff, n);
    }

    @Override
    public void copyOut(DeviceTensor src, long srcOff, float[] dst, int dstOff, int n) {
        OpShapes.copyOut(src, Kind.F32, srcOff, dst.length, dstOff, n);
        host.copyOut(src, srcOff, dst, dstOff, n);
    }

    @Override
    public void copyOut(DeviceTensor src, int[] dst, int n) {
        OpShapes.copyOut(src, Kind.I32, 0, dst.length, 0, n);
        host.copyOut(src, dst, n);
    }

    @Override
    public void zero(DeviceTensor x, int n) {
        OpShapes.zero(x, n);
        host.zero(x, n);
    }

    @Override
    public void embed(DeviceTensor table, DeviceTensor ids, DeviceTensor out, int rows, int hidden) {
        OpShapes.embed(table, ids, out, rows, hidden);
        calls++;
        host.embed(table, ids, out, rows, hidden);
    }

    @Override
    public void rmsNorm(DeviceTensor x, int xStride, DeviceTensor w, float eps, DeviceTensor out, int outStride,
                        int rows, int n) {
        OpShapes.rmsNorm(x, xStride, w, eps, out, outStride, rows, n);
        calls++;
        host.rmsNorm(x, xStride, w, eps, out, outStride, rows, n);
    }

    @Override
    public void rope(boolean interleaved, DeviceTensor x, DeviceTensor cos, DeviceTensor sin, int rows, int heads,
                     int rowStride, int headStride, int offset, int dim, int csStride) {
        OpShapes.rope(x, cos, sin, rows, heads, rowStride, headStride, offset, dim, csStride);
        calls++;
        host.rope(interleaved, x, cos, sin, rows, heads, rowStride, headStride, offset, dim, csStride);
    }

    @Override
    public void linear(DeviceTensor w, DeviceTensor x, DeviceTensor out, int rows, int cols, int batch) {
        OpShapes.linear(w, x, out, rows, cols, batch);
        calls++;
        host.linear(w, x, out, rows, cols, batch);
    }

    @Override
    public void headLinear(DeviceTensor w, int heads, int rows, int cols, DeviceTensor x, int xRow, int xHead,
                           int xOff, DeviceTensor out, int oRow, int oHead, int oOff, int tokens) {
        OpShapes.headLinear(w, heads, rows, cols, x, xRow, xHead, xOff, out, oRow, oHead, oOff, tokens);
        calls++;
        host.headLinear(w, heads, rows, cols, x, xRow, xHead, xOff, out, oRow, oHead, oOff, tokens);
    }

    @Override
    public void copyStrided(DeviceTensor src, int sRow, int sHead, int sOff, DeviceTensor dst, int dRow, int dHead,
                            int dOff, int rows, int heads, int n) {
        OpShapes.copyStrided(src, sRow, sHead, sOff, dst, dRow, dHead, dOff, rows, heads, n);
        calls++;
        host.copyStrided(src, sRow, sHead, sOff, dst, dRow, dHead, dOff, rows, heads, n);
    }

    @Override
    public void addBias(DeviceTensor x, DeviceTensor bias, int rows, int n) {
        OpShapes.addBias(x, bias, rows, n);
        calls++;
        host.addBias(x, bias, rows, n);
    }

    @Override
    public void add(DeviceTensor y, DeviceTensor x, int n) {
        OpShapes.add(y, x, n);
        calls++;
        host.add(y, x, n);
    }

    @Override
    public void swiglu(DeviceTensor gate, DeviceTensor up, DeviceTensor out, int n) {
        OpShapes.swiglu(gate, up, out, n);
        calls++;
        host.swiglu(gate, up, out, n);
    }

    @Override
    public void kvWrite(DeviceTensor src, int srcStride, DeviceTensor pool, int poolRow, int dstOff,
                        DeviceTensor slots, int rows, int n) {
        OpShapes.kvWrite(src, srcStride, pool, poolRow, dstOff, slots, rows, n);
        calls++;
        host.kvWrite(src, srcStride, pool, poolRow, dstOff, slots, rows, n);
    }

    @Override
    public void mlaAttention(DeviceTensor q, DeviceTensor pool, DeviceTensor blockTable, DeviceTensor seqLens,
                             DeviceTensor out, int tokens, int heads, int latent, int rope, int maxBlocks,
                             int blockSize, float scale) {
        OpShapes.mlaAttention(q, pool, blockTable, seqLens, out, tokens, heads, latent, rope, maxBlocks, blockSize,
                scale);
        calls++;
        host.mlaAttention(q, pool, blockTable, seqLens, out, tokens, heads, latent, rope, maxBlocks, blockSize,
                scale);
    }

    @Override
    public void gqaAttention(DeviceTensor q, DeviceTensor pool, DeviceTensor blockTable, DeviceTensor seqLens,
                             DeviceTensor out, int tokens, int heads, int kvHeads, int dim, int maxBlocks,
                             int blockSize, float scale) {
        OpShapes.gqaAttention(q, pool, blockTable, seqLens, out, tokens, heads, kvHeads, dim, maxBlocks, blockSize,
                scale);
        calls++;
        host.gqaAttention(q, pool, blockTable, seqLens, out, tokens, heads, kvHeads, dim, maxBlocks, blockSize,
                scale);
    }

    @Override
    public void topkGate(DeviceTensor logits, DeviceTensor bias, int tokens, int experts, int k, boolean sigmoid,
                         int nGroup, int topkGroup, boolean normalize, float scale, DeviceTensor ids,
                         DeviceTensor weights) {
        OpShapes.topkGate(logits, bias, tokens, experts, k, nGroup, topkGroup, ids, weights);
        calls++;
        host.topkGate(logits, bias, tokens, experts, k, sigmoid, nGroup, topkGroup, normalize, scale, ids, weights);
    }

    @Override
    public void gatherRows(DeviceTensor src, DeviceTensor idx, int idxOff, DeviceTensor dst, int rows, int n) {
        OpShapes.gatherRows(src, idx, idxOff, dst, rows, n);
        calls++;
        host.gatherRows(src, idx, idxOff, dst, rows, n);
    }

    @Override
    public void scatterAddRows(DeviceTensor src, DeviceTensor idx, DeviceTensor w, int idxOff, DeviceTensor dst,
                               int rows, int n) {
        OpShapes.scatterAddRows(src, idx, w, idxOff, dst, rows, n);
        calls++;
        host.scatterAddRows(src, idx, w, idxOff, dst, rows, n);
    }

    @Override
    public void gatedAdd(DeviceTensor y, DeviceTensor x, DeviceTensor g, int rows, int n) {
        OpShapes.gatedAdd(y, x, g, rows, n);
        calls++;
        host.gatedAdd(y, x, g, rows, n);
    }

    @Override
    public void close() {
        host.close();
    }
}
