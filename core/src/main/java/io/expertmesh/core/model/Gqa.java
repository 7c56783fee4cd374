package io.expertmesh.core.model;

import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.model.Scratch.Slot;
import io.expertmesh.core.tensor.Matrix;
import java.util.Arrays;

/**
 * Grouped-query attention (Mixtral, Qwen2-MoE, Qwen3-MoE): {@code heads} query heads share {@code kvHeads}
 * key/value heads; rotate-half RoPE; optional q/k/v bias (Qwen2) and per-head q/k RMSNorm before RoPE (Qwen3).
 * A cache row holds K [kvHeads·headDim] followed by V [kvHeads·headDim].
 */
public final class Gqa implements Attention {
    private final Matrix wq;
    private final Matrix wk;
    private final Matrix wv;
    private final Matrix wo;
    private final float[] bq;
    private final float[] bk;
    private final float[] bv;
    private final float[] qNorm;
    private final float[] kNorm;
    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final float eps;
    private final float scale;

    /** Biases and q/k norms may be null. */
    public Gqa(ModelConfig c, Matrix wq, Matrix wk, Matrix wv, Matrix wo, float[] bq, float[] bk, float[] bv,
               float[] qNorm, float[] kNorm) {
        this.wq = wq;
        this.wk = wk;
        this.wv = wv;
        this.wo = wo;
        this.bq = bq;
        this.bk = bk;
        this.bv = bv;
        this.qNorm = qNorm;
        this.kNorm = kNorm;
        this.heads = c.numHeads();
        this.kvHeads = c.numKvHeads();
        this.headDim = c.headDim();
        this.eps = c.rmsNormEps();
        this.scale = (float) (1.0 / Math.sqrt(headDim));
    }

    // Weights, for a forward pass that runs elsewhere (the GPU's DeviceForward uploads them once).

    public Matrix wq() {
        return wq;
    }

    public Matrix wk() {
        return wk;
    }

    public Matrix wv() {
        return wv;
    }

    public Matrix wo() {
        return wo;
    }

    public float[] bq() {
        return bq;
    }

    public float[] bk() {
        return bk;
    }

    public float[] bv() {
        return bv;
    }

    public float[] qNorm() {
        return qNorm;
    }

    public float[] kNorm() {
        return kNorm;
    }

    public float scale() {
        return scale;
    }

    @Override
    public void forward(ForwardBatch batch, float[] xn, float[] out, StepContext ctx) {
        Kernels k = ctx.kernels();
        Scratch s = ctx.scratch();
        int t = batch.size();
        int qw = heads * headDim;
        int kw = kvHeads * headDim;
        float[] q = s.floats(Slot.Q, t * qw);
        float[] kk = s.floats(Slot.K, t * kw);
        float[] v = s.floats(Slot.V, t * kw);
        k.matmuls(s.group().add(wq, xn, 0, q, 0, t).add(wk, xn, 0, kk, 0, t).add(wv, xn, 0, v, 0, t));
        int half = headDim / 2;
        for (int i = 0; i < t; i++) {
            addBias(q, i * qw, bq);
            addBias(kk, i * kw, bk);
            addBias(v, i * kw, bv);
            for (int h = 0; h < heads; h++) {
                int off = i * qw + h * headDim;
                if (qNorm != null) {
                    k.rmsNorm(q, off, qNorm, eps, q, off, headDim);
                }
                k.ropeHalf(q, off, headDim, ctx.cos, ctx.sin, i * half);
            }
            for (int h = 0; h < kvHeads; h++) {
                int off = i * kw + h * headDim;
                if (kNorm != null) {
                    k.rmsNorm(kk, off, kNorm, eps, kk, off, headDim);
                }
                k.ropeHalf(kk, off, headDim, ctx.cos, ctx.sin, i * half);
            }
            KvCache cache = batch.caches()[i];
            int pos = batch.positions()[i];
            float[] a = cache.array(ctx.layer, pos);
            System.arraycopy(kk, i * kw, a, cache.offset(pos), kw);
            System.arraycopy(v, i * kw, a, cache.offset(pos) + kw, kw);
        }
        float[] headsOut = s.floats(Slot.HEADS_OUT, t * qw);
        int layer = ctx.layer;
        // The query heads of one KV head read the same rows: a task takes several of them (AttentionScratch.headGroup)
        // so the rows are read once for all.
        int group = heads / kvHeads;
        int sub = AttentionScratch.headGroup(group, t * kvHeads, k.pool().threads());
        int subs = (group + sub - 1) / sub;
        int perToken = kvHeads * subs;
        k.pool().parallelFor(t * perToken, task -> {
            int i = task / perToken;
            int kvHead = task % perToken / subs;
            int h = kvHead * group + task % subs * sub;
            attendHeads(k, batch.caches()[i], layer, batch.positions()[i], q, i * qw + h * headDim,
                    Math.min(sub, (kvHead + 1) * group - h), kvHead * headDim, kw, headsOut, i * qw + h * headDim);
        });
        k.matmul(wo, headsOut, 0, out, 0, t);
    }

    /**
     * Softmax attention of {@code nh} query heads (consecutive, at {@code qOff}) that share the KV head at
     * {@code headOff}, over positions 0..pos, into {@code out} (the same layout as the queries).
     */
    private void attendHeads(Kernels k, KvCache cache, int layer, int pos, float[] q, int qOff, int nh, int headOff,
                             int kw, float[] out, int outOff) {
        int len = pos + 1;
        float[] scores = AttentionScratch.scores(nh * len);
        int row = 2 * kw;
        // Walk the cache in runs of contiguous rows (a block, or the whole contiguous cache): one call per run.
        for (int p = 0; p <= pos; ) {
            int n = Math.min(cache.contiguousRows(p), len - p);
            k.dotRowsMulti(q, qOff, headDim, nh, cache.array(layer, p), cache.offset(p) + headOff, row, n, headDim,
                    scale, scores, p, len);
            p += n;
        }
        for (int h = 0; h < nh; h++) {
            k.softmax(scores, h * len, len);
        }
        Arrays.fill(out, outOff, outOff + nh * headDim, 0f);
        for (int p = 0; p <= pos; ) {
            int n = Math.min(cache.contiguousRows(p), len - p);
            k.axpyRowsMulti(scores, p, len, nh, cache.array(layer, p), cache.offset(p) + kw + headOff, row, n,
                    headDim, out, outOff, headDim);
            p += n;
        }
    }

    private static void addBias(float[] x, int off, float[] b) {
        if (b != null) {
            for (int j = 0; j < b.length; j++) {
                x[off + j] += b[j];
            }
        }
    }
}
