package io.expertmesh.cuda.forward;

import static io.expertmesh.cuda.forward.OpChecks.extent;
import static io.expertmesh.cuda.forward.OpChecks.fits;
import static io.expertmesh.cuda.forward.OpChecks.positive;
import static io.expertmesh.cuda.forward.OpChecks.require;
import static io.expertmesh.cuda.forward.OpChecks.weight;

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
 * against on a GPU host. Single-threaded; not for serving.
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
    public DeviceTensor uploadStacked(Matrix[] ws) {
        require(ws.length > 0, "no matrices to upload");
        Matrix first = ws[0];
        long per = (long) first.rows() * first.cols();
        HostTensor out = new HostTensor(first.dtype() == DType.BF16 ? Kind.BF16 : Kind.F32, per * ws.length);
        for (int m = 0; m < ws.length; m++) {
            Matrix w = ws[m];
            require(w.dtype() == first.dtype() && w.rows() == first.rows() && w.cols() == first.cols(),
                    "stacked matrices must share shape and dtype: " + w.name() + " differs from " + first.name());
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
        fits(dst, Kind.F32, dstOff + n, "copy destination");
        System.arraycopy(src, srcOff, t(dst).f, (int) dstOff, n);
    }

    @Override
    public void copyIn(int[] src, DeviceTensor dst, int n) {
        fits(dst, Kind.I32, n, "copy destination");
        System.arraycopy(src, 0, t(dst).i, 0, n);
    }

    @Override
    public void copyIn(short[] src, int srcOff, DeviceTensor dst, long dstOff, int n) {
        fits(dst, Kind.BF16, dstOff + n, "copy destination");
        System.arraycopy(src, srcOff, t(dst).h, (int) dstOff, n);
    }

    @Override
    public void copyOut(DeviceTensor src, long srcOff, float[] dst, int dstOff, int n) {
        fits(src, Kind.F32, srcOff + n, "copy source");
        System.arraycopy(t(src).f, (int) srcOff, dst, dstOff, n);
    }

    @Override
    public void copyOut(DeviceTensor src, int[] dst, int n) {
        fits(src, Kind.I32, n, "copy source");
        System.arraycopy(t(src).i, 0, dst, 0, n);
    }

    @Override
    public void zero(DeviceTensor x, int n) {
        fits(x, Kind.F32, n, "x");
        java.util.Arrays.fill(t(x).f, 0, n, 0f);
    }

    @Override
    public void embed(DeviceTensor table, DeviceTensor ids, DeviceTensor out, int rows, int hidden) {
        positive("rows and hidden", rows, hidden);
        weight(table, hidden, "embedding table");
        fits(ids, Kind.I32, rows, "ids");
        fits(out, Kind.F32, (long) rows * hidden, "out");
        HostTensor tb = t(table);
        long vocab = tb.length() / hidden;
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
        positive("rows and n", rows, n);
        require(xStride >= n && outStride >= n, "strides must be at least n = " + n);
        fits(x, Kind.F32, extent(rows, xStride, 1, 0, 0, n), "x");
        fits(out, Kind.F32, extent(rows, outStride, 1, 0, 0, n), "out");
        fits(w, Kind.F32, n, "weight");
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
        positive("rows, heads and dim", rows, heads, dim);
        require(dim % 2 == 0, "rope dim must be even, got " + dim);
        fits(x, Kind.F32, extent(rows, rowStride, heads, headStride, offset, dim), "x");
        fits(cos, Kind.F32, extent(rows, csStride, 1, 0, 0, dim / 2), "cos");
        fits(sin, Kind.F32, extent(rows, csStride, 1, 0, 0, dim / 2), "sin");
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
        positive("rows, cols and batch", rows, cols, batch);
        weight(w, (long) rows * cols, "weight");
        fits(x, Kind.F32, (long) batch * cols, "x");
        fits(out, Kind.F32, (long) batch * rows, "out");
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
        positive("heads, rows, cols and tokens", heads, rows, cols, tokens);
        weight(w, (long) heads * rows * cols, "weight");
        fits(x, Kind.F32, extent(tokens, xRow, heads, xHead, xOff, cols), "x");
        fits(out, Kind.F32, extent(tokens, oRow, heads, oHead, oOff, rows), "out");
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
        positive("rows, heads and n", rows, heads, n);
        fits(src, Kind.F32, extent(rows, sRow, heads, sHead, sOff, n), "src");
        fits(dst, Kind.F32, extent(rows, dRow, heads, dHead, dOff, n), "dst");
        for (int r = 0; r < rows; r++) {
            for (int h = 0; h < heads; h++) {
                System.arraycopy(t(src).f, r * sRow + h * sHead + sOff, t(dst).f, r * dRow + h * dHead + dOff, n);
            }
        }
    }

    @Override
    public void addBias(DeviceTensor x, DeviceTensor bias, int rows, int n) {
        positive("rows and n", rows, n);
        fits(x, Kind.F32, (long) rows * n, "x");
        fits(bias, Kind.F32, n, "bias");
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < n; j++) {
                t(x).f[r * n + j] += t(bias).f[j];
            }
        }
    }

    @Override
    public void add(DeviceTensor y, DeviceTensor x, int n) {
        positive("n", n);
        fits(y, Kind.F32, n, "y");
        fits(x, Kind.F32, n, "x");
        for (int j = 0; j < n; j++) {
            t(y).f[j] += t(x).f[j];
        }
    }

    @Override
    public void swiglu(DeviceTensor gate, DeviceTensor up, DeviceTensor out, int n) {
        positive("n", n);
        fits(gate, Kind.F32, n, "gate");
        fits(up, Kind.F32, n, "up");
        fits(out, Kind.F32, n, "out");
        for (int j = 0; j < n; j++) {
            float g = t(gate).f[j];
            t(out).f[j] = g / (1f + (float) Math.exp(-g)) * t(up).f[j];
        }
    }

    @Override
    public void kvWrite(DeviceTensor src, int srcStride, DeviceTensor pool, int poolRow, int dstOff,
                        DeviceTensor slots, int rows, int n) {
        positive("rows, n and poolRow", rows, n, poolRow);
        require(dstOff >= 0 && dstOff + n <= poolRow, "row part [" + dstOff + ", " + (dstOff + n)
                + ") outside a pool row of " + poolRow);
        fits(src, Kind.F32, extent(rows, srcStride, 1, 0, 0, n), "src");
        fits(slots, Kind.I32, rows, "slots");
        require(pool != null && pool.kind() == Kind.BF16, "pool must be BF16");
        long poolSlots = pool.length() / poolRow;
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

    private static void checkTable(DeviceTensor blockTable, DeviceTensor seqLens, int tokens, int maxBlocks,
                                   int blockSize) {
        fits(blockTable, Kind.I32, (long) tokens * maxBlocks, "block table");
        fits(seqLens, Kind.I32, tokens, "seqLens");
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
        positive("tokens, heads, latent, maxBlocks and blockSize", tokens, heads, latent, maxBlocks, blockSize);
        int row = latent + rope;
        fits(q, Kind.F32, (long) tokens * heads * row, "q");
        fits(out, Kind.F32, (long) tokens * heads * latent, "out");
        require(pool != null && pool.kind() == Kind.BF16, "pool must be BF16");
        checkTable(blockTable, seqLens, tokens, maxBlocks, blockSize);
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
        positive("tokens, heads, kvHeads, dim, maxBlocks and blockSize", tokens, heads, kvHeads, dim, maxBlocks,
                blockSize);
        require(heads % kvHeads == 0, "heads " + heads + " must be a multiple of kv heads " + kvHeads);
        int kw = kvHeads * dim;
        int row = 2 * kw;
        fits(q, Kind.F32, (long) tokens * heads * dim, "q");
        fits(out, Kind.F32, (long) tokens * heads * dim, "out");
        require(pool != null && pool.kind() == Kind.BF16, "pool must be BF16");
        checkTable(blockTable, seqLens, tokens, maxBlocks, blockSize);
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
        positive("tokens and experts", tokens, experts);
        fits(logits, Kind.F32, (long) tokens * experts, "logits");
        fits(ids, Kind.I32, (long) tokens * k, "ids");
        fits(weights, Kind.F32, (long) tokens * k, "weights");
        float[] b = null;
        if (bias != null) {
            fits(bias, Kind.F32, experts, "bias");
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
        positive("rows and n", rows, n);
        fits(idx, Kind.I32, (long) idxOff + rows, "idx");
        fits(dst, Kind.F32, (long) rows * n, "dst");
        require(src != null && src.kind() == Kind.F32, "src must be F32");
        for (int r = 0; r < rows; r++) {
            int from = t(idx).i[idxOff + r];
            require(from >= 0 && (long) (from + 1) * n <= src.length(), "row " + from + " outside src");
            System.arraycopy(t(src).f, from * n, t(dst).f, r * n, n);
        }
    }

    @Override
    public void scatterAddRows(DeviceTensor src, DeviceTensor idx, DeviceTensor w, int idxOff, DeviceTensor dst,
                               int rows, int n) {
        positive("rows and n", rows, n);
        fits(src, Kind.F32, (long) rows * n, "src");
        fits(idx, Kind.I32, (long) idxOff + rows, "idx");
        fits(w, Kind.F32, (long) idxOff + rows, "w");
        require(dst != null && dst.kind() == Kind.F32, "dst must be F32");
        for (int r = 0; r < rows; r++) {
            int to = t(idx).i[idxOff + r];
            require(to >= 0 && (long) (to + 1) * n <= dst.length(), "row " + to + " outside dst");
            float a = t(w).f[idxOff + r];
            for (int j = 0; j < n; j++) {
                t(dst).f[to * n + j] += a * t(src).f[r * n + j];
            }
        }
    }

    @Override
    public void gatedAdd(DeviceTensor y, DeviceTensor x, DeviceTensor g, int rows, int n) {
        positive("rows and n", rows, n);
        fits(y, Kind.F32, (long) rows * n, "y");
        fits(x, Kind.F32, (long) rows * n, "x");
        fits(g, Kind.F32, rows, "g");
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
