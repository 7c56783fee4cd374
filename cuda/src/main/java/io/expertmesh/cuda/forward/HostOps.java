package io.expertmesh.cuda.forward;

import static io.expertmesh.cuda.forward.OpChecks.require;

import io.expertmesh.core.config.ModelConfig.Scoring;
import io.expertmesh.core.model.Gate;
import io.expertmesh.core.tensor.Bf16;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Matrix;
import io.expertmesh.cuda.forward.DeviceTensor.Kind;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The scalar reference of {@link DeviceOps} on Java arrays: plain loops in the order the contract states, float32
 * arithmetic, the pool in bf16 exactly as a GPU stores it. It lets {@link DeviceForward} run (slowly) on any
 * machine, which is how its orchestration is tested without a GPU, and it is what each CUDA kernel is checked
 * against on a GPU host. Its argument checks are {@link CudaOps}'s ({@link OpShapes}), so a call it accepts is
 * one the GPU accepts; it also checks the indices held in tensors (token ids, slots, block tables), which a GPU
 * cannot look at without waiting. Single-threaded; not for serving.
 */
public final class HostOps implements DeviceOps {

    @Override
    public String name() {
        return "host emulation";
    }

    private static HostTensor t(DeviceTensor x) {
        if (!(x instanceof HostTensor h)) {
            throw new IllegalArgumentException("not a tensor of HostOps: " + x);
        }
        return h;
    }

    @Override
    public DeviceTensor allocate(Kind kind, long length) {
        return new HostTensor(kind, length);
    }

    @Override
    public DeviceTensor upload(Matrix w) {
        return uploadStacked(new Matrix[]{w});
    }

    @Override
    public DeviceTensor uploadStacked(Matrix[] matrices) {
        Matrix[] ws = OpShapes.uploadable(matrices);
        long per = OpShapes.stacked(ws);
        Matrix first = ws[0];
        HostTensor out = new HostTensor(OpShapes.kindOf(first), per * ws.length);
        for (int m = 0; m < ws.length; m++) {
            Matrix w = ws[m];
            MemorySegment dst = out.kind == Kind.BF16 ? MemorySegment.ofArray(out.h) : MemorySegment.ofArray(out.f);
            MemorySegment.copy(w.data(), 0, dst, m * per * first.dtype().bytes(), w.data().byteSize());
        }
        return out;
    }

    @Override
    public DeviceTensor upload(float[] v) {
        HostTensor out = new HostTensor(Kind.F32, v.length);
        System.arraycopy(v, 0, out.f, 0, v.length);
        return out;
    }

    @Override
    public void copyIn(float[] src, int srcOff, DeviceTensor dst, long dstOff, int n) {
        OpShapes.copyIn(src.length, srcOff, dst, Kind.F32, dstOff, n);
        System.arraycopy(src, srcOff, t(dst).f, (int) dstOff, n);
    }

    @Override
    public void copyIn(int[] src, DeviceTensor dst, int n) {
        OpShapes.copyIn(src.length, 0, dst, Kind.I32, 0, n);
        System.arraycopy(src, 0, t(dst).i, 0, n);
    }

    @Override
    public void copyIn(short[] src, int srcOff, DeviceTensor dst, long dstOff, int n) {
        OpShapes.copyIn(src.length, srcOff, dst, Kind.BF16, dstOff, n);
        System.arraycopy(src, srcOff, t(dst).h, (int) dstOff, n);
    }

    @Override
    public void copyOut(DeviceTensor src, long srcOff, float[] dst, int dstOff, int n) {
        OpShapes.copyOut(src, Kind.F32, srcOff, dst.length, dstOff, n);
        System.arraycopy(t(src).f, (int) srcOff, dst, dstOff, n);
    }

    @Override
    public void copyOut(DeviceTensor src, int[] dst, int n) {
        OpShapes.copyOut(src, Kind.I32, 0, dst.length, 0, n);
        System.arraycopy(t(src).i, 0, dst, 0, n);
    }

    @Override
    public void zero(DeviceTensor x, int n) {
        OpShapes.zero(x, n);
        java.util.Arrays.fill(t(x).f, 0, n, 0f);
    }

    @Override
    public void embed(DeviceTensor table, DeviceTensor ids, DeviceTensor out, int rows, int hidden) {
        long vocab = OpShapes.embed(table, ids, out, rows, hidden);
        HostTensor tb = t(table);
        for (int r = 0; r < rows; r++) {
            int id = t(ids).i[r];
            require(id >= 0 && id < vocab, "token id " + id + " outside the table of " + vocab);
            for (int c = 0; c < hidden; c++) {
                t(out).f[r * hidden + c] = tb.get((long) id * hidden + c);
            }
        }
    }

    @Override
    public void rmsNorm(DeviceTensor x, int xStride, DeviceTensor w, float eps, DeviceTensor out, int outStride,
                        int rows, int n) {
        OpShapes.rmsNorm(x, xStride, w, eps, out, outStride, rows, n);
        float[] xf = t(x).f;
        float[] of = t(out).f;
        float[] wf = t(w).f;
        for (int r = 0; r < rows; r++) {
            float ss = 0f;
            for (int j = 0; j < n; j++) {
                float v = xf[r * xStride + j];
                ss += v * v;
            }
            float inv = (float) (1.0 / Math.sqrt(ss / n + eps));
            for (int j = 0; j < n; j++) {
                of[r * outStride + j] = xf[r * xStride + j] * inv * wf[j];
            }
        }
    }

    @Override
    public void rope(boolean interleaved, DeviceTensor x, DeviceTensor cos, DeviceTensor sin, int rows, int heads,
                     int rowStride, int headStride, int offset, int dim, int csStride) {
        OpShapes.rope(x, cos, sin, rows, heads, rowStride, headStride, offset, dim, csStride);
        float[] v = t(x).f;
        float[] c = t(cos).f;
        float[] s = t(sin).f;
        int half = dim / 2;
        for (int r = 0; r < rows; r++) {
            for (int h = 0; h < heads; h++) {
                int base = r * rowStride + offset + h * headStride;
                for (int i = 0; i < half; i++) {
                    int a = interleaved ? base + 2 * i : base + i;
                    int b = interleaved ? base + 2 * i + 1 : base + i + half;
                    float x0 = v[a];
                    float x1 = v[b];
                    float cc = c[r * csStride + i];
                    float ss = s[r * csStride + i];
                    v[a] = x0 * cc - x1 * ss;
                    v[b] = x0 * ss + x1 * cc;
                }
            }
        }
    }

    @Override
    public void linear(DeviceTensor w, DeviceTensor x, DeviceTensor out, int rows, int cols, int batch) {
        OpShapes.linear(w, x, out, rows, cols, batch);
        HostTensor wt = t(w);
        float[] xf = t(x).f;
        float[] of = t(out).f;
        for (int b = 0; b < batch; b++) {
            for (int r = 0; r < rows; r++) {
                float acc = 0f;
                for (int c = 0; c < cols; c++) {
                    acc += wt.get((long) r * cols + c) * xf[b * cols + c];
                }
                of[b * rows + r] = acc;
            }
        }
    }

    @Override
    public void headLinear(DeviceTensor w, int heads, int rows, int cols, DeviceTensor x, int xRow, int xHead,
                           int xOff, DeviceTensor out, int oRow, int oHead, int oOff, int tokens) {
        OpShapes.headLinear(w, heads, rows, cols, x, xRow, xHead, xOff, out, oRow, oHead, oOff, tokens);
        HostTensor wt = t(w);
        float[] xf = t(x).f;
        float[] of = t(out).f;
        for (int tk = 0; tk < tokens; tk++) {
            for (int h = 0; h < heads; h++) {
                for (int r = 0; r < rows; r++) {
                    float acc = 0f;
                    for (int c = 0; c < cols; c++) {
                        acc += wt.get(((long) h * rows + r) * cols + c) * xf[tk * xRow + h * xHead + xOff + c];
                    }
                    of[tk * oRow + h * oHead + oOff + r] = acc;
                }
            }
        }
    }

    @Override
    public void copyStrided(DeviceTensor src, int sRow, int sHead, int sOff, DeviceTensor dst, int dRow, int dHead,
                            int dOff, int rows, int heads, int n) {
        OpShapes.copyStrided(src, sRow, sHead, sOff, dst, dRow, dHead, dOff, rows, heads, n);
        for (int r = 0; r < rows; r++) {
            for (int h = 0; h < heads; h++) {
                System.arraycopy(t(src).f, r * sRow + h * sHead + sOff, t(dst).f, r * dRow + h * dHead + dOff, n);
            }
        }
    }

    @Override
    public void addBias(DeviceTensor x, DeviceTensor bias, int rows, int n) {
        OpShapes.addBias(x, bias, rows, n);
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < n; j++) {
                t(x).f[r * n + j] += t(bias).f[j];
            }
        }
    }

    @Override
    public void add(DeviceTensor y, DeviceTensor x, int n) {
        OpShapes.add(y, x, n);
        for (int j = 0; j < n; j++) {
            t(y).f[j] += t(x).f[j];
        }
    }

    @Override
    public void swiglu(DeviceTensor gate, DeviceTensor up, DeviceTensor out, int n) {
        OpShapes.swiglu(gate, up, out, n);
        for (int j = 0; j < n; j++) {
            float g = t(gate).f[j];
            t(out).f[j] = g / (1f + (float) Math.exp(-g)) * t(up).f[j];
        }
    }

    @Override
    public void kvWrite(DeviceTensor src, int srcStride, DeviceTensor pool, int poolRow, int dstOff,
                        DeviceTensor slots, int rows, int n) {
        long poolSlots = OpShapes.kvWrite(src, srcStride, pool, poolRow, dstOff, slots, rows, n);
        for (int r = 0; r < rows; r++) {
            int slot = t(slots).i[r];
            require(slot >= 0 && slot < poolSlots, "slot " + slot + " outside the pool of " + poolSlots);
            for (int j = 0; j < n; j++) {
                t(pool).h[slot * poolRow + dstOff + j] = Bf16.fromFloat(t(src).f[r * srcStride + j]);
            }
        }
    }

    /** Pool slot of position p of token t, checked. */
    private static int slot(HostTensor blockTable, int t, int maxBlocks, int blockSize, int p, long poolSlots) {
        int block = blockTable.i[t * maxBlocks + p / blockSize];
        long slot = (long) block * blockSize + p % blockSize;
        require(block >= 0 && slot < poolSlots, "block " + block + " of token " + t + " outside the pool");
        return (int) slot;
    }

    /** The sequence lengths held in {@code seqLens} (values a GPU kernel can only clamp). */
    private static void checkLengths(DeviceTensor seqLens, int tokens, int maxBlocks, int blockSize) {
        for (int i = 0; i < tokens; i++) {
            int len = t(seqLens).i[i];
            require(len >= 1 && len <= (long) maxBlocks * blockSize, "sequence length " + len + " of token " + i
                    + " outside [1, " + (long) maxBlocks * blockSize + "]");
        }
    }

    @Override
    public void mlaAttention(DeviceTensor q, DeviceTensor pool, DeviceTensor blockTable, DeviceTensor seqLens,
                             DeviceTensor out, int tokens, int heads, int latent, int rope, int maxBlocks,
                             int blockSize, float scale) {
        OpShapes.mlaAttention(q, pool, blockTable, seqLens, out, tokens, heads, latent, rope, maxBlocks, blockSize,
                scale);
        checkLengths(seqLens, tokens, maxBlocks, blockSize);
        int row = latent + rope;
        long poolSlots = pool.length() / row;
        HostTensor pl = t(pool);
        for (int i = 0; i < tokens; i++) {
            int len = t(seqLens).i[i];
            for (int h = 0; h < heads; h++) {
                int qOff = (i * heads + h) * row;
                float[] scores = new float[len];
                for (int p = 0; p < len; p++) {
                    int s = slot(t(blockTable), i, maxBlocks, blockSize, p, poolSlots);
                    float acc = 0f;
                    for (int j = 0; j < row; j++) {
                        acc += t(q).f[qOff + j] * Bf16.toFloat(pl.h[s * row + j]);
                    }
                    scores[p] = acc * scale;
                }
                softmax(scores);
                int oOff = (i * heads + h) * latent;
                for (int j = 0; j < latent; j++) {
                    t(out).f[oOff + j] = 0f;
                }
                for (int p = 0; p < len; p++) {
                    int s = slot(t(blockTable), i, maxBlocks, blockSize, p, poolSlots);
                    for (int j = 0; j < latent; j++) {
                        t(out).f[oOff + j] += scores[p] * Bf16.toFloat(pl.h[s * row + j]);
                    }
                }
            }
        }
    }

    @Override
    public void gqaAttention(DeviceTensor q, DeviceTensor pool, DeviceTensor blockTable, DeviceTensor seqLens,
                             DeviceTensor out, int tokens, int heads, int kvHeads, int dim, int maxBlocks,
                             int blockSize, float scale) {
        OpShapes.gqaAttention(q, pool, blockTable, seqLens, out, tokens, heads, kvHeads, dim, maxBlocks, blockSize,
                scale);
        checkLengths(seqLens, tokens, maxBlocks, blockSize);
        int kw = kvHeads * dim;
        int row = 2 * kw;
        long poolSlots = pool.length() / row;
        HostTensor pl = t(pool);
        int group = heads / kvHeads;
        for (int i = 0; i < tokens; i++) {
            int len = t(seqLens).i[i];
            for (int h = 0; h < heads; h++) {
                int qOff = (i * heads + h) * dim;
                int kOff = (h / group) * dim;
                float[] scores = new float[len];
                for (int p = 0; p < len; p++) {
                    int s = slot(t(blockTable), i, maxBlocks, blockSize, p, poolSlots);
                    float acc = 0f;
                    for (int j = 0; j < dim; j++) {
                        acc += t(q).f[qOff + j] * Bf16.toFloat(pl.h[s * row + kOff + j]);
                    }
                    scores[p] = acc * scale;
                }
                softmax(scores);
                for (int j = 0; j < dim; j++) {
                    t(out).f[qOff + j] = 0f;
                }
                for (int p = 0; p < len; p++) {
                    int s = slot(t(blockTable), i, maxBlocks, blockSize, p, poolSlots);
                    for (int j = 0; j < dim; j++) {
                        t(out).f[qOff + j] += scores[p] * Bf16.toFloat(pl.h[s * row + kw + kOff + j]);
                    }
                }
            }
        }
    }

    private static void softmax(float[] x) {
        float max = Float.NEGATIVE_INFINITY;
        for (float v : x) {
            max = Math.max(max, v);
        }
        float sum = 0f;
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) Math.exp(x[i] - max);
            sum += x[i];
        }
        for (int i = 0; i < x.length; i++) {
            x[i] /= sum;
        }
    }

    @Override
    public void topkGate(DeviceTensor logits, DeviceTensor bias, int tokens, int experts, int k, boolean sigmoid,
                         int nGroup, int topkGroup, boolean normalize, float scale, DeviceTensor ids,
                         DeviceTensor weights) {
        OpShapes.topkGate(logits, bias, tokens, experts, k, nGroup, topkGroup, ids, weights);
        float[] b = null;
        if (bias != null) {
            b = java.util.Arrays.copyOf(t(bias).f, experts);
        }
        // core's Gate is the definition of routing; a gate whose weight is never read applies it to these logits.
        Matrix unused = new Matrix("gate", DType.F32, experts, 1, MemorySegment.ofArray(new float[experts]));
        Gate gate = new Gate(unused, b, sigmoid ? Scoring.SIGMOID : Scoring.SOFTMAX, k, nGroup, topkGroup,
                normalize, scale);
        gate.routeLogits(t(logits).f, tokens, t(ids).i, t(weights).f);
    }

    @Override
    public void gatherRows(DeviceTensor src, DeviceTensor idx, int idxOff, DeviceTensor dst, int rows, int n) {
        int srcRows = OpShapes.gatherRows(src, idx, idxOff, dst, rows, n);
        for (int r = 0; r < rows; r++) {
            int from = t(idx).i[idxOff + r];
            require(from >= 0 && from < srcRows, "row " + from + " outside src");
            System.arraycopy(t(src).f, from * n, t(dst).f, r * n, n);
        }
    }

    @Override
    public void scatterAddRows(DeviceTensor src, DeviceTensor idx, DeviceTensor w, int idxOff, DeviceTensor dst,
                               int rows, int n) {
        int dstRows = OpShapes.scatterAddRows(src, idx, w, idxOff, dst, rows, n);
        for (int r = 0; r < rows; r++) {
            int to = t(idx).i[idxOff + r];
            require(to >= 0 && to < dstRows, "row " + to + " outside dst");
            float a = t(w).f[idxOff + r];
            for (int j = 0; j < n; j++) {
                t(dst).f[to * n + j] += a * t(src).f[r * n + j];
            }
        }
    }

    @Override
    public void routeByExpert(DeviceTensor ids, int tokens, int k, int experts, DeviceTensor offsets,
                              DeviceTensor slotOfPair, DeviceTensor tokenOfSlot) {
        OpShapes.routeByExpert(ids, tokens, k, experts, offsets, slotOfPair, tokenOfSlot);
        int pairs = tokens * k;
        int[] id = t(ids).i;
        int[] off = t(offsets).i;
        java.util.Arrays.fill(off, 0, experts + 1, 0);
        for (int i = 0; i < pairs; i++) {
            if (id[i] >= 0 && id[i] < experts) {
                off[id[i] + 1]++;
            }
        }
        for (int e = 0; e < experts; e++) {
            off[e + 1] += off[e];
        }
        int[] fill = java.util.Arrays.copyOf(off, experts);
        int[] slot = t(slotOfPair).i;
        int[] tok = t(tokenOfSlot).i;
        java.util.Arrays.fill(tok, off[experts], pairs, -1);
        for (int i = 0; i < pairs; i++) {
            int e = id[i];
            if (e < 0 || e >= experts) {
                slot[i] = -1;
            } else {
                slot[i] = fill[e]++;
                tok[slot[i]] = i / k;
            }
        }
    }

    @Override
    public void groupedLinear(DeviceTensor w, int experts, DeviceTensor x, DeviceTensor out, DeviceTensor offsets,
                              int rows, int cols, int pairs) {
        OpShapes.groupedLinear(w, experts, x, out, offsets, rows, cols, pairs);
        HostTensor wt = t(w);
        int[] off = t(offsets).i;
        float[] xf = t(x).f;
        float[] of = t(out).f;
        for (int e = 0; e < experts; e++) {
            require(off[e] >= 0 && off[e] <= off[e + 1] && off[e + 1] <= pairs, "offsets of expert " + e
                    + " outside [0, " + pairs + "]");
            long w0 = (long) e * rows * cols;
            for (int b = off[e]; b < off[e + 1]; b++) {
                for (int r = 0; r < rows; r++) {
                    float acc = 0f;
                    for (int c = 0; c < cols; c++) {
                        acc += wt.get(w0 + (long) r * cols + c) * xf[b * cols + c];
                    }
                    of[b * rows + r] = acc;
                }
            }
        }
    }

    @Override
    public void combineExperts(DeviceTensor y, DeviceTensor ids, DeviceTensor weights, DeviceTensor slotOfPair,
                               int tokens, int k, DeviceTensor out, int n) {
        OpShapes.combineExperts(y, ids, weights, slotOfPair, tokens, k, out, n);
        int[] id = t(ids).i;
        int[] slot = t(slotOfPair).i;
        float[] wf = t(weights).f;
        float[] yf = t(y).f;
        float[] of = t(out).f;
        Integer[] order = new Integer[k];
        for (int tok = 0; tok < tokens; tok++) {
            int base = tok * k;
            for (int j = 0; j < k; j++) {
                order[j] = j;
            }
            java.util.Arrays.sort(order, (a, b) -> Integer.compare(id[base + a], id[base + b]));
            java.util.Arrays.fill(of, tok * n, (tok + 1) * n, 0f);
            for (int j : order) {
                int p = base + j;
                if (slot[p] < 0) {
                    continue;
                }
                for (int c = 0; c < n; c++) {
                    of[tok * n + c] += wf[p] * yf[slot[p] * n + c];
                }
            }
        }
    }

    @Override
    public void gatedAdd(DeviceTensor y, DeviceTensor x, DeviceTensor g, int rows, int n) {
        OpShapes.gatedAdd(y, x, g, rows, n);
        for (int r = 0; r < rows; r++) {
            float s = (float) (1.0 / (1.0 + Math.exp(-t(g).f[r])));
            for (int j = 0; j < n; j++) {
                t(y).f[r * n + j] += s * t(x).f[r * n + j];
            }
        }
    }

    @Override
    public void close() {
    }
}
