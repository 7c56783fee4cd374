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
        int group = heads / kvHeads;
        k.pool().parallelFor(t * heads, task -> {
            int i = task / heads;
            int h = task % heads;
            attendOne(k, batch.caches()[i], layer, batch.positions()[i], q, i * qw + h * headDim,
                    (h / group) * headDim, kw, headsOut, i * qw + h * headDim);
        });
        k.matmul(wo, headsOut, 0, out, 0, t);
    }

    private void attendOne(Kernels k, KvCache cache, int layer, int pos, float[] q, int qOff, int headOff,
                           int kw, float[] out, int outOff) {
        float[] scores = AttentionScratch.scores(pos + 1);
        int row = 2 * kw;
        // Walk the cache in runs of contiguous rows (a block, or the whole contiguous cache): one call per run.
        for (int p = 0; p <= pos; ) {
            int n = Math.min(cache.contiguousRows(p), pos + 1 - p);
            k.dotRows(q, qOff, cache.array(layer, p), cache.offset(p) + headOff, row, n, headDim, scale, scores, p);
            p += n;
        }
        k.softmax(scores, 0, pos + 1);
        Arrays.fill(out, outOff, outOff + headDim, 0f);
        for (int p = 0; p <= pos; ) {
            int n = Math.min(cache.contiguousRows(p), pos + 1 - p);
            k.axpyRows(scores, p, cache.array(layer, p), cache.offset(p) + kw + headOff, row, n, headDim, out,
                    outOff);
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
