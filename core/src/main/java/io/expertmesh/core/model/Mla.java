package io.expertmesh.core.model;

import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.config.RopeScaling;
import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.kernel.MatmulGroup;
import io.expertmesh.core.model.Scratch.Slot;
import io.expertmesh.core.tensor.Matrix;

/**
 * Multi-head latent attention (DeepSeek-V2/V3) in the absorbed form, as DeepSeek's reference {@code MLA} with
 * {@code attn_impl="absorb"}.
 *
 * <p>The cache holds, per token, only the normalised latent {@code c_kv} (kv_lora_rank floats) and the
 * rotary key {@code k_pe} (qk_rope_head_dim floats): 576 values for V3 instead of 2·128·128. The key
 * up-projection W_UK is folded into the query ({@code q_abs = W_UKᵀ q_nope}, per head) and the value
 * up-projection W_UV is applied to the attention-weighted latent, so nothing per-head is ever cached.
 * Shapes per token: q [heads, nope + rope], kv_a [kv_lora + rope], q_abs [heads, kv_lora], o [heads, v].
 */
public final class Mla implements Attention {
    private final Matrix qA;        // q_a_proj [q_lora, hidden], or null when q_lora_rank = 0
    private final float[] qANorm;   // q_a_layernorm [q_lora]
    private final Matrix qB;        // q_b_proj [heads·(nope+rope), q_lora] or q_proj [heads·(nope+rope), hidden]
    private final Matrix kvA;       // kv_a_proj_with_mqa [kv_lora + rope, hidden]
    private final float[] kvANorm;  // kv_a_layernorm [kv_lora]
    private final Matrix[] wUkT;    // per head: W_UKᵀ [kv_lora, nope] (transposed rows of kv_b_proj)
    private final Matrix[] wUv;     // per head: W_UV [v, kv_lora] (row slice of kv_b_proj)
    private final Matrix o;         // o_proj [hidden, heads·v]
    private final int heads;
    private final int nope;
    private final int rope;
    private final int vDim;
    private final int kvLora;
    private final int qLora;
    private final float eps;
    private final float softmaxScale;

    public Mla(ModelConfig c, Matrix qA, float[] qANorm, Matrix qB, Matrix kvA, float[] kvANorm,
               Matrix[] wUkT, Matrix[] wUv, Matrix o) {
        this.qA = qA;
        this.qANorm = qANorm;
        this.qB = qB;
        this.kvA = kvA;
        this.kvANorm = kvANorm;
        this.wUkT = wUkT;
        this.wUv = wUv;
        this.o = o;
        this.heads = c.numHeads();
        this.nope = c.qkNopeHeadDim();
        this.rope = c.qkRopeHeadDim();
        this.vDim = c.vHeadDim();
        this.kvLora = c.kvLoraRank();
        this.qLora = c.qLoraRank();
        this.eps = c.rmsNormEps();
        double scale = 1.0 / Math.sqrt(c.qkHeadDim());
        if (c.yarnActive() && c.ropeScaling().mscaleAllDim() != 0) {
            double m = RopeScaling.yarnMscale(c.ropeScaling().factor(), c.ropeScaling().mscaleAllDim());
            scale *= m * m;
        }
        this.softmaxScale = (float) scale;
    }

    // Weights, for a forward pass that runs elsewhere (the GPU's DeviceForward uploads them once).

    public Matrix qA() {
        return qA;
    }

    public float[] qANorm() {
        return qANorm;
    }

    public Matrix qB() {
        return qB;
    }

    public Matrix kvA() {
        return kvA;
    }

    public float[] kvANorm() {
        return kvANorm;
    }

    public Matrix[] wUkT() {
        return wUkT;
    }

    public Matrix[] wUv() {
        return wUv;
    }

    public Matrix o() {
        return o;
    }

    public float softmaxScale() {
        return softmaxScale;
    }

    @Override
    public void forward(ForwardBatch batch, float[] xn, float[] out, StepContext ctx) {
        Kernels k = ctx.kernels();
        Scratch s = ctx.scratch();
        int t = batch.size();
        int qkHead = nope + rope;
        int qStride = heads * qkHead;
        int row = kvLora + rope;

        float[] q = s.floats(Slot.Q, t * qStride);
        float[] kv = s.floats(Slot.KV, t * row);
        if (t == 1) {
            forwardOneToken(k, s, batch.caches()[0], ctx, batch.positions()[0], xn, q, kv, out);
            return;
        }
        if (qA != null) {
            float[] qa = s.floats(Slot.Q_A, t * qLora);
            k.matmuls(s.group().add(qA, xn, 0, qa, 0, t).add(kvA, xn, 0, kv, 0, t));
            for (int i = 0; i < t; i++) {
                k.rmsNorm(qa, i * qLora, qANorm, eps, qa, i * qLora, qLora);
            }
            k.matmul(qB, qa, 0, q, 0, t);
        } else {
            k.matmuls(s.group().add(qB, xn, 0, q, 0, t).add(kvA, xn, 0, kv, 0, t));
        }

        int half = rope / 2;
        for (int i = 0; i < t; i++) {
            for (int h = 0; h < heads; h++) {
                k.ropeInterleaved(q, i * qStride + h * qkHead + nope, rope, ctx.cos, ctx.sin, i * half);
            }
            cacheLatentRow(k, kv, i, batch.caches()[i], batch.positions()[i], ctx);
        }

        // q_abs[i, h] = W_UK[h]ᵀ · q_nope[i, h]: one product per head, all heads in one parallel step. Inputs and
        // outputs are head-major ([h][i][...]) so each head's tokens are contiguous.
        float[] gin = s.floats(Slot.GATHER_IN, heads * t * Math.max(nope, kvLora));
        float[] gout = s.floats(Slot.GATHER_OUT, heads * t * Math.max(kvLora, vDim));
        MatmulGroup absorb = s.group();
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < t; i++) {
                System.arraycopy(q, i * qStride + h * qkHead, gin, (h * t + i) * nope, nope);
            }
            absorb.add(wUkT[h], gin, h * t * nope, gout, h * t * kvLora, t);
        }
        k.matmuls(absorb);
        // The full query of (i, h) is [q_abs | q_pe], laid out like a cache row [latent | k_pe], so a score is
        // one dot product.
        float[] qFull = s.floats(Slot.Q_ABS, t * heads * row);
        for (int i = 0; i < t; i++) {
            for (int h = 0; h < heads; h++) {
                int dst = (i * heads + h) * row;
                System.arraycopy(gout, (h * t + i) * kvLora, qFull, dst, kvLora);
                System.arraycopy(q, i * qStride + h * qkHead + nope, qFull, dst + kvLora, rope);
            }
        }

        float[] oLat = s.floats(Slot.O_LATENT, heads * t * kvLora);
        int layer = ctx.layer;
        // Every head reads the same latent rows: a task takes a group of heads so the rows are read once per
        // group (at 2,048 positions a layer's rows are 4.7 MB, more than L2), and small enough groups that every
        // thread gets some.
        int group = AttentionScratch.headGroup(heads, t, k.pool().threads());
        int groups = (heads + group - 1) / group;
        k.pool().parallelFor(t * groups, task -> {
            int i = task / groups;
            int h = task % groups * group;
            attendHeads(k, batch.caches()[i], layer, batch.positions()[i], qFull, (i * heads + h) * row,
                    Math.min(group, heads - h), oLat, (h * t + i) * kvLora, t * kvLora);
        });

        // heads_out[i, h] = W_UV[h] · o_latent[i, h], all heads in one parallel step.
        MatmulGroup expand = s.group();
        for (int h = 0; h < heads; h++) {
            expand.add(wUv[h], oLat, h * t * kvLora, gout, h * t * vDim, t);
        }
        k.matmuls(expand);
        float[] headsOut = s.floats(Slot.HEADS_OUT, t * heads * vDim);
        for (int i = 0; i < t; i++) {
            for (int h = 0; h < heads; h++) {
                System.arraycopy(gout, (h * t + i) * vDim, headsOut, (i * heads + h) * vDim, vDim);
            }
        }
        k.matmul(o, headsOut, 0, out, 0, t);
    }

    /** Token {@code i}'s row of {@code kv}: latent normalised, rope key rotated, then written to its cache. */
    private void cacheLatentRow(Kernels k, float[] kv, int i, KvCache cache, int pos, StepContext ctx) {
        int row = kvLora + rope;
        k.rmsNorm(kv, i * row, kvANorm, eps, kv, i * row, kvLora);
        k.ropeInterleaved(kv, i * row + kvLora, rope, ctx.cos, ctx.sin, i * (rope / 2));
        System.arraycopy(kv, i * row, cache.array(ctx.layer, pos), cache.offset(pos), row);
    }

    /**
     * One token: the latent row is made and cached first, then everything per head (its query rows of q_b_proj,
     * rope, absorption, attention, value expansion) runs as one parallel step whose tasks each take a group of
     * heads, instead of four steps: at one token a step is a few microseconds, so the barriers saved are a visible
     * part of a decode step. Every product and every rotation has the bits it has in the batched path
     * (batch-invariant kernels, {@link Kernels#matmulRows}).
     */
    private void forwardOneToken(Kernels k, Scratch s, KvCache cache, StepContext ctx, int pos, float[] xn,
                                 float[] q, float[] kv, float[] out) {
        int qkHead = nope + rope;
        int row = kvLora + rope;
        float[] qIn = xn;
        if (qA != null) {
            qIn = s.floats(Slot.Q_A, qLora);
            k.matmuls(s.group().add(qA, xn, 0, qIn, 0, 1).add(kvA, xn, 0, kv, 0, 1));
            k.rmsNorm(qIn, 0, qANorm, eps, qIn, 0, qLora);
        } else {
            k.matmul(kvA, xn, 0, kv, 0, 1);
        }
        cacheLatentRow(k, kv, 0, cache, pos, ctx);

        float[] x = qIn;
        int layer = ctx.layer;
        float[] qFull = s.floats(Slot.Q_ABS, heads * row);
        float[] oLat = s.floats(Slot.O_LATENT, heads * kvLora);
        float[] headsOut = s.floats(Slot.HEADS_OUT, heads * vDim);
        int group = AttentionScratch.headGroup(heads, 1, k.pool().threads());
        int groups = (heads + group - 1) / group;
        LongContextSplit split = longContext;
        boolean longPath = pos + 1 >= split.from();
        k.pool().parallelFor(groups, task -> {
            int first = task * group;
            int nh = Math.min(group, heads - first);
            k.matmulRows(qB, first * qkHead, (first + nh) * qkHead, x, 0, q, 0, 1);
            for (int h = first; h < first + nh; h++) {
                k.ropeInterleaved(q, h * qkHead + nope, rope, ctx.cos, ctx.sin, 0);
                // [q_abs | q_pe], laid out like a cache row [latent | k_pe]
                k.matmulRows(wUkT[h], 0, kvLora, q, h * qkHead, qFull, h * row, 1);
                System.arraycopy(q, h * qkHead + nope, qFull, h * row + kvLora, rope);
            }
            if (longPath) {
                return;
            }
            attendHeads(k, cache, layer, pos, qFull, first * row, nh, oLat, first * kvLora, kvLora);
            expand(k, first, nh, oLat, headsOut);
        });
        if (longPath) {
            attendLongContext(k, s, cache, layer, pos, qFull, oLat, split);
            k.pool().parallelFor(groups, task -> expand(k, task * group, Math.min(group, heads - task * group),
                    oLat, headsOut));
        }
        k.matmul(o, headsOut, 0, out, 0, 1);
    }

    /** heads_out[h] = W_UV[h] · o_latent[h] for heads {@code first .. first + nh - 1} of one token. */
    private void expand(Kernels k, int first, int nh, float[] oLat, float[] headsOut) {
        for (int h = first; h < first + nh; h++) {
            k.matmulRows(wUv[h], 0, vDim, oLat, h * kvLora, headsOut, h * vDim, 1);
        }
    }

    /**
     * From which context length one token's attention reads the cached rows once per pass instead of once per group
     * of heads, and the most positions and latent columns a task then takes ({@link #attendLongContext}).
     */
    record LongContextSplit(int from, int blockRows, int blockColumns) {
    }

    /** Package-private and mutable so that tests can run the long path on short fixtures, in small blocks. */
    static volatile LongContextSplit longContext = new LongContextSplit(512, 64, 64);

    /**
     * One token's attention over a long context, the cached rows read once per pass rather than once per head
     * group (at 2,048 positions a layer's rows are 2.4 MB, so four groups read 19 MB a layer, twice): every head's
     * scores for a block of positions per task; a barrier; each head's softmax; a barrier; the weighted sum of
     * every head for a block of latent columns per task. Each score, softmax and output element is computed by the
     * same kernel calls in the same order as {@link #attendHeads} (scores: one dot product each; outputs: their
     * rows' products in row order, whichever columns a call covers), so the bits are the same.
     */
    private void attendLongContext(Kernels k, Scratch s, KvCache cache, int layer, int pos, float[] qFull,
                                   float[] oLat, LongContextSplit split) {
        int row = kvLora + rope;
        int len = pos + 1;
        float[] scores = s.floats(Slot.SCORES, heads * len);
        int threads = k.pool().threads();
        int blocks = Math.max(1, Math.min(4 * threads, len / split.blockRows()));
        k.pool().parallelFor(blocks, b -> {
            int to = (int) ((long) len * (b + 1) / blocks);
            for (int p = (int) ((long) len * b / blocks); p < to; ) {
                int n = Math.min(cache.contiguousRows(p), to - p);
                k.dotRowsMulti(qFull, 0, row, heads, cache.array(layer, p), cache.offset(p), row, n, row,
                        softmaxScale, scores, p, len);
                p += n;
            }
        });
        k.pool().parallelFor(heads, h -> {
            k.softmax(scores, h * len, len);
            java.util.Arrays.fill(oLat, h * kvLora, (h + 1) * kvLora, 0f);
        });
        // Column blocks start at multiples of 16 floats (whole vectors on every vector width up to 512 bits).
        int columnBlocks = Math.max(1, Math.min(4 * threads,
                (kvLora + split.blockColumns() - 1) / split.blockColumns()));
        k.pool().parallelFor(columnBlocks, c -> {
            int from = (int) ((long) kvLora * c / columnBlocks) & ~15;
            int to = c == columnBlocks - 1 ? kvLora : (int) ((long) kvLora * (c + 1) / columnBlocks) & ~15;
            for (int p = 0; p < len; ) {
                int n = Math.min(cache.contiguousRows(p), len - p);
                k.axpyRowsMulti(scores, p, len, heads, cache.array(layer, p), cache.offset(p) + from, row, n,
                        to - from, oLat, from, kvLora);
                p += n;
            }
        });
    }

    /**
     * Softmax attention of {@code nh} query heads (at {@code qOff}, one cache row apart) over positions 0..pos,
     * accumulated in latent space into {@code oLat} ({@code outStride} apart per head).
     */
    private void attendHeads(Kernels k, KvCache cache, int layer, int pos, float[] qFull, int qOff, int nh,
                             float[] oLat, int outOff, int outStride) {
        int row = kvLora + rope;
        int len = pos + 1;
        float[] scores = AttentionScratch.scores(nh * len);
        // Walk the cache in runs of contiguous rows (a block, or the whole contiguous cache): one call per run.
        for (int p = 0; p <= pos; ) {
            int n = Math.min(cache.contiguousRows(p), len - p);
            k.dotRowsMulti(qFull, qOff, row, nh, cache.array(layer, p), cache.offset(p), row, n, row, softmaxScale,
                    scores, p, len);
            p += n;
        }
        for (int h = 0; h < nh; h++) {
            k.softmax(scores, h * len, len);
            java.util.Arrays.fill(oLat, outOff + h * outStride, outOff + h * outStride + kvLora, 0f);
        }
        for (int p = 0; p <= pos; ) {
            int n = Math.min(cache.contiguousRows(p), len - p);
            k.axpyRowsMulti(scores, p, len, nh, cache.array(layer, p), cache.offset(p), row, n, kvLora, oLat, outOff,
                    outStride);
            p += n;
        }
    }
}
