package io.expertmesh.cuda.forward;

import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.config.ModelConfig.Scoring;
import io.expertmesh.core.model.BlockKvCache;
import io.expertmesh.core.model.ForwardBackend;
import io.expertmesh.core.model.ForwardBackend.HostBlocks;
import io.expertmesh.core.model.ForwardBatch;
import io.expertmesh.core.model.Gate;
import io.expertmesh.core.model.KvCache;
import io.expertmesh.core.model.RoutedExperts;
import io.expertmesh.core.model.StepContext;
import io.expertmesh.core.model.Transformer;
import io.expertmesh.cuda.forward.DeviceScratch.Slot;
import io.expertmesh.cuda.forward.DeviceWeights.GqaWeights;
import io.expertmesh.cuda.forward.DeviceWeights.LayerWeights;
import io.expertmesh.cuda.forward.DeviceWeights.MlaWeights;
import io.expertmesh.cuda.forward.DeviceWeights.MlpWeights;
import io.expertmesh.cuda.forward.DeviceWeights.MoeWeights;

/**
 * The forward pass with everything on the device: activations, weights (uploaded once, here) and the paged KV
 * cache ({@link DeviceKvPool}). It is {@link Transformer#forward} step for step — embedding, per layer RMSNorm →
 * attention (MLA absorbed, or GQA) → residual → RMSNorm → dense MLP or MoE → residual, final norm, LM head — on
 * {@link DeviceOps}, so the same code runs on the GPU ({@link CudaOps}) and, for tests, on {@link HostOps}.
 *
 * <p>Only small things cross to the host per step: token ids, rotary cos/sin rows and block tables go up; the
 * logits and, for caches the host also keeps, the step's new KV rows come down, so a step waits for the device
 * once. Local routed experts are grouped by expert on the device (the choices never come down). Routed experts
 * that live on expert workers are the exception: their layer's choices and normalised input go down (one wait per
 * such layer), are dispatched by core's {@link RoutedExperts} as on the CPU path, and the combined output goes back
 * up while the shared expert has run on the device.
 *
 * <p>Caches must be {@link BlockKvCache}s whose block ids index this pool: the router's paged cache (block ids
 * from its block manager, host rows kept as a mirror for the distributed prefix tier) or {@link #newCache}
 * (device only). One {@link Runner} per thread; two runners (two micro-batches) may alternate steps when the
 * caller serialises their compute, as the router's engine does.
 */
public final class DeviceForward implements ForwardBackend {
    private final Transformer model;
    private final ModelConfig c;
    private final DeviceOps ops;
    private final DeviceWeights weights;
    private final DeviceKvPool pool;
    private final HostBlocks hostBlocks;
    private final java.util.List<Runner> runners = new java.util.ArrayList<>();

    /**
     * Uploads {@code model}'s weights and allocates a pool of {@code numBlocks × blockSize} positions per layer.
     *
     * @param hostBlocks the host's copy of each block (the router's paged storage), for blocks the host writes
     *                   outside a step ({@link #hostWrote}); null when there is none
     */
    public DeviceForward(Transformer model, DeviceOps ops, int numBlocks, int blockSize,
                         HostBlocks hostBlocks) {
        this.model = model;
        this.c = model.config();
        this.ops = ops;
        this.hostBlocks = hostBlocks;
        DeviceWeights w = new DeviceWeights(model, ops);
        try {
            this.pool = new DeviceKvPool(ops, c.numLayers(), numBlocks, blockSize, c.kvRowWidth());
        } catch (RuntimeException e) {
            w.close();
            throw e;
        }
        this.weights = w;
    }

    public ModelConfig config() {
        return c;
    }

    /** Where it runs and what it holds, for the start-up log. */
    @Override
    public String describe() {
        return "forward pass on " + ops.name() + ": weights " + (weights.bytes() >> 20) + " MiB, KV pool "
                + (pool.bytes() >> 20) + " MiB (" + pool.numBlocks() + " blocks of " + pool.blockSize()
                + " positions)";
    }

    /** A backend factory for the router's engine: the engine sizes the pool and gives its host blocks. */
    public static Factory factory(DeviceOps ops) {
        return (model, numBlocks, blockSize, hostBlocks) -> new DeviceForward(model, ops, numBlocks, blockSize,
                hostBlocks);
    }

    /** A runner with its own working tensors, for one thread. */
    @Override
    public Runner newRunner() {
        Runner r = new Runner();
        synchronized (runners) {
            runners.add(r);
        }
        return r;
    }

    /** A cache of {@code capacity} positions that lives on the device only (standalone use). */
    @Override
    public DeviceKvCache newCache(int capacity) {
        return pool.newCache(Math.min(capacity, c.maxPositions()));
    }

    @Override
    public void release(KvCache cache) {
        if (cache instanceof DeviceKvCache d) {
            d.close();
        }
    }

    /** Blocks of {@code blockSize} one sequence of {@code capacity} positions needs (single-process runs). */
    public static int blocksFor(int capacity, int blockSize) {
        return Math.max(1, (capacity + blockSize - 1) / blockSize);
    }

    /** The host wrote its copy of {@code blockId} (an imported prefix): the next step uploads it first. */
    @Override
    public void hostWrote(int blockId) {
        if (hostBlocks == null) {
            throw new IllegalStateException("this forward pass has no host copy of its blocks");
        }
        pool.hostWrote(blockId);
    }

    @Override
    public void close() {
        synchronized (runners) {
            runners.forEach(Runner::close);
            runners.clear();
        }
        pool.close();
        weights.close();
    }

    /** Runs steps; one per thread. */
    public final class Runner implements ForwardBackend.Runner, AutoCloseable {
        private final DeviceScratch s = new DeviceScratch(ops);
        private final StepContext hostCtx = StepContext.standalone(model.kernels());
        private float[] cosH = new float[0];
        private float[] sinH = new float[0];
        // Host rows of one MoE layer (the chosen experts; the input and output of remote experts) and of the
        // step's new KV rows, grown with the batch and reused by every layer and step.
        private int[] idsH = new int[0];
        private float[] weightsH = new float[0];
        private float[] xnH = new float[0];
        private float[] remoteOutH = new float[0];
        private float[] kvRowsH = new float[0];
        // Per-step geometry, set by forward().
        private int t;
        private int maxBlocks;
        private boolean mirror;
        private DeviceTensor cos;
        private DeviceTensor sin;
        private DeviceTensor table;
        private DeviceTensor seqLens;
        private DeviceTensor slots;
        private DeviceTensor kvRows;

        private Runner() {
        }

        /**
         * One step, as {@link Transformer#forward(ForwardBatch, float[])}: the logits of row
         * {@code batch.logitRows()[j]} go to {@code logits[j·vocab, (j+1)·vocab)}.
         */
        @Override
        public void forward(ForwardBatch batch, float[] logits) {
            t = batch.size();
            int hidden = c.hiddenSize();
            int vocab = c.vocabSize();
            validate(batch, logits);
            if (hostBlocks != null) {
                pool.uploadHostWrites(hostBlocks);
            }
            uploadStepInputs(batch);

            DeviceTensor ids = s.i32(Slot.IDS, t);
            ops.copyIn(batch.tokens(), ids, t);
            // Every upload before the first launch: a copy from a Java (pageable) array waits for the stream, so
            // one after the layers' launches would make the host wait for them before it could launch the head.
            int rows = batch.logitRows().length;
            DeviceTensor rowIdx = rows == 0 ? null : s.i32(Slot.LOGIT_ROWS, rows);
            if (rows > 0) {
                ops.copyIn(batch.logitRows(), rowIdx, rows);
            }
            DeviceTensor x = s.f32(Slot.X, (long) t * hidden);
            ops.embed(weights.embed, ids, x, t, hidden);
            DeviceTensor xn = s.f32(Slot.XN, (long) t * hidden);
            DeviceTensor attnOut = s.f32(Slot.ATTN_OUT, (long) t * hidden);
            DeviceTensor ffnOut = s.f32(Slot.FFN_OUT, (long) t * hidden);
            for (int l = 0; l < weights.layers.length; l++) {
                LayerWeights lw = weights.layers[l];
                float eps = model.block(l).eps();
                ops.rmsNorm(x, hidden, lw.attnNorm(), eps, xn, hidden, t, hidden);
                switch (lw.attn()) {
                    case MlaWeights m -> mla(l, m, xn, attnOut);
                    case GqaWeights g -> gqa(l, g, xn, attnOut);
                    default -> throw new IllegalStateException();
                }
                ops.add(x, attnOut, t * hidden);
                ops.rmsNorm(x, hidden, lw.ffnNorm(), eps, xn, hidden, t, hidden);
                switch (lw.ffn()) {
                    case MlpWeights m -> mlp(m, xn, ffnOut, t);
                    case MoeWeights m -> moe(l, m, xn, ffnOut);
                    default -> throw new IllegalStateException();
                }
                ops.add(x, ffnOut, t * hidden);
            }
            if (rows > 0) {
                DeviceTensor xl = s.f32(Slot.LOGIT_X, (long) rows * hidden);
                ops.gatherRows(x, rowIdx, 0, xl, rows, hidden);
                ops.rmsNorm(xl, hidden, weights.finalNorm, c.rmsNormEps(), xl, hidden, rows, hidden);
                DeviceTensor lg = s.f32(Slot.LOGITS, (long) rows * vocab);
                ops.linear(weights.lmHead, xl, lg, vocab, hidden, rows);
                ops.copyOut(lg, 0, logits, 0, rows * vocab);
            }
            // After the logits: their wait covers the KV rows too, so this copy adds none.
            if (mirror) {
                writeHostRows(batch);
            }
        }

        private void validate(ForwardBatch batch, float[] logits) {
            int vocab = c.vocabSize();
            if (logits.length < batch.logitRows().length * vocab) {
                throw new IllegalArgumentException("logits buffer holds " + logits.length + " floats, need "
                        + batch.logitRows().length * vocab);
            }
            mirror = false;
            for (int i = 0; i < t; i++) {
                int tok = batch.tokens()[i];
                int pos = batch.positions()[i];
                if (tok < 0 || tok >= vocab) {
                    throw new IllegalArgumentException("token id " + tok + " outside vocabulary [0, " + vocab + ")");
                }
                KvCache cache = batch.caches()[i];
                if (!(cache instanceof BlockKvCache b) || b.blockSize() != pool.blockSize()) {
                    throw new IllegalArgumentException("the device forward pass needs block caches of "
                            + pool.blockSize() + " positions, got " + cache.getClass().getSimpleName());
                }
                if (pos < 0 || pos >= c.maxPositions() || pos >= cache.capacity()) {
                    throw new IllegalArgumentException("position " + pos + " beyond the context limit");
                }
                mirror |= !(cache instanceof DeviceKvCache);
            }
        }

        /** Rotary rows, block tables, sequence lengths and the pool slot of each new row. */
        private void uploadStepInputs(ForwardBatch batch) {
            int bs = pool.blockSize();
            int half = model.rope().dim() / 2;
            if (cosH.length < t * half) {
                cosH = new float[t * half];
                sinH = new float[t * half];
            }
            maxBlocks = 1;
            for (int i = 0; i < t; i++) {
                model.rope().fill(batch.positions()[i], cosH, sinH, i * half);
                maxBlocks = Math.max(maxBlocks, batch.positions()[i] / bs + 1);
            }
            int[] tableH = new int[t * maxBlocks];
            int[] lens = new int[t];
            int[] slotH = new int[t];
            for (int i = 0; i < t; i++) {
                BlockKvCache cache = (BlockKvCache) batch.caches()[i];
                int pos = batch.positions()[i];
                for (int b = 0; b <= pos / bs; b++) {
                    int id = cache.blockOf(b * bs);
                    if (id < 0 || id >= pool.numBlocks()) {
                        throw new IllegalArgumentException("block " + id + " outside the device pool of "
                                + pool.numBlocks());
                    }
                    tableH[i * maxBlocks + b] = id;
                }
                lens[i] = pos + 1;
                slotH[i] = cache.blockOf(pos) * bs + pos % bs;
            }
            cos = s.f32(Slot.COS, Math.max(1, t * half));
            sin = s.f32(Slot.SIN, Math.max(1, t * half));
            ops.copyIn(cosH, 0, cos, 0, t * half);
            ops.copyIn(sinH, 0, sin, 0, t * half);
            table = s.i32(Slot.BLOCK_TABLE, (long) t * maxBlocks);
            ops.copyIn(tableH, table, t * maxBlocks);
            seqLens = s.i32(Slot.SEQ_LENS, t);
            ops.copyIn(lens, seqLens, t);
            ops.attentionLengths(lens, t);
            slots = s.i32(Slot.SLOTS, t);
            ops.copyIn(slotH, slots, t);
            kvRows = mirror ? s.f32(Slot.KV_ROWS, (long) c.numLayers() * t * c.kvRowWidth()) : null;
        }

        private void mla(int l, MlaWeights m, DeviceTensor xn, DeviceTensor out) {
            int hidden = c.hiddenSize();
            int heads = c.numHeads();
            int nope = c.qkNopeHeadDim();
            int rope = c.qkRopeHeadDim();
            int vDim = c.vHeadDim();
            int lat = c.kvLoraRank();
            int qLora = c.qLoraRank();
            float eps = c.rmsNormEps();
            int qkHead = nope + rope;
            int qStride = heads * qkHead;
            int row = lat + rope;
            int half = rope / 2;
            DeviceTensor q = s.f32(Slot.Q, (long) t * qStride);
            DeviceTensor kv = s.f32(Slot.KV, (long) t * row);
            ops.linear(m.kvA(), xn, kv, row, hidden, t);
            if (m.qA() != null) {
                DeviceTensor qa = s.f32(Slot.Q_A, (long) t * qLora);
                ops.linear(m.qA(), xn, qa, qLora, hidden, t);
                ops.rmsNorm(qa, qLora, m.qANorm(), eps, qa, qLora, t, qLora);
                ops.linear(m.qB(), qa, q, qStride, qLora, t);
            } else {
                ops.linear(m.qB(), xn, q, qStride, hidden, t);
            }
            ops.rope(true, q, cos, sin, t, heads, qStride, qkHead, nope, rope, half);
            ops.rmsNorm(kv, row, m.kvANorm(), eps, kv, row, t, lat);
            ops.rope(true, kv, cos, sin, t, 1, row, 0, lat, rope, half);
            ops.kvWrite(kv, row, pool.layer(l), row, 0, slots, t, row);
            keepRows(l, kv, row, 0, row);
            // q_abs = W_UKᵀ q_nope per head, laid out like a cache row [latent | rope] next to q_pe.
            DeviceTensor qFull = s.f32(Slot.Q_FULL, (long) t * heads * row);
            ops.headLinear(m.wUkT(), heads, lat, nope, q, qStride, qkHead, 0, qFull, heads * row, row, 0, t);
            ops.copyStrided(q, qStride, qkHead, nope, qFull, heads * row, row, lat, t, heads, rope);
            DeviceTensor oLat = s.f32(Slot.O_LATENT, (long) t * heads * lat);
            ops.mlaAttention(qFull, pool.layer(l), table, seqLens, oLat, t, heads, lat, rope, maxBlocks,
                    pool.blockSize(), m.source().softmaxScale());
            DeviceTensor headsOut = s.f32(Slot.HEADS_OUT, (long) t * heads * vDim);
            ops.headLinear(m.wUv(), heads, vDim, lat, oLat, heads * lat, lat, 0, headsOut, heads * vDim, vDim, 0, t);
            ops.linear(m.o(), headsOut, out, hidden, heads * vDim, t);
        }

        private void gqa(int l, GqaWeights g, DeviceTensor xn, DeviceTensor out) {
            int hidden = c.hiddenSize();
            int heads = c.numHeads();
            int kvHeads = c.numKvHeads();
            int hd = c.headDim();
            float eps = c.rmsNormEps();
            int qw = heads * hd;
            int kw = kvHeads * hd;
            int half = model.rope().dim() / 2;
            DeviceTensor q = s.f32(Slot.Q, (long) t * qw);
            DeviceTensor k = s.f32(Slot.K, (long) t * kw);
            DeviceTensor v = s.f32(Slot.V, (long) t * kw);
            ops.linear(g.wq(), xn, q, qw, hidden, t);
            ops.linear(g.wk(), xn, k, kw, hidden, t);
            ops.linear(g.wv(), xn, v, kw, hidden, t);
            if (g.bq() != null) {
                ops.addBias(q, g.bq(), t, qw);
            }
            if (g.bk() != null) {
                ops.addBias(k, g.bk(), t, kw);
            }
            if (g.bv() != null) {
                ops.addBias(v, g.bv(), t, kw);
            }
            if (g.qNorm() != null) {
                ops.rmsNorm(q, hd, g.qNorm(), eps, q, hd, t * heads, hd);
            }
            if (g.kNorm() != null) {
                ops.rmsNorm(k, hd, g.kNorm(), eps, k, hd, t * kvHeads, hd);
            }
            ops.rope(false, q, cos, sin, t, heads, qw, hd, 0, model.rope().dim(), half);
            ops.rope(false, k, cos, sin, t, kvHeads, kw, hd, 0, model.rope().dim(), half);
            ops.kvWrite(k, kw, pool.layer(l), 2 * kw, 0, slots, t, kw);
            ops.kvWrite(v, kw, pool.layer(l), 2 * kw, kw, slots, t, kw);
            keepRows(l, k, kw, 0, kw);
            keepRows(l, v, kw, kw, kw);
            DeviceTensor headsOut = s.f32(Slot.HEADS_OUT, (long) t * qw);
            ops.gqaAttention(q, pool.layer(l), table, seqLens, headsOut, t, heads, kvHeads, hd, maxBlocks,
                    pool.blockSize(), g.source().scale());
            ops.linear(g.wo(), headsOut, out, hidden, qw, t);
        }

        private void mlp(MlpWeights m, DeviceTensor in, DeviceTensor out, int rows) {
            DeviceMlps.forward(ops, s, m, in, out, rows, c.hiddenSize());
        }

        private void moe(int l, MoeWeights m, DeviceTensor xn, DeviceTensor out) {
            int hidden = c.hiddenSize();
            Gate gate = m.source().gate();
            int experts = gate.numExperts();
            int k = gate.topK();
            DeviceTensor gl = s.f32(Slot.GATE_LOGITS, (long) t * experts);
            ops.linear(m.gate(), xn, gl, experts, hidden, t);
            DeviceTensor ids = s.i32(Slot.TOPK_IDS, (long) t * k);
            DeviceTensor wts = s.f32(Slot.TOPK_WEIGHTS, (long) t * k);
            ops.topkGate(gl, m.bias(), t, experts, k, gate.scoring() == Scoring.SIGMOID, gate.nGroup(),
                    gate.topkGroup(), gate.normalize(), gate.scale(), ids, wts);
            // The shared expert first, into its own tensor; it is added after the routed experts, as on the CPU.
            DeviceTensor shared = null;
            DeviceTensor sharedGate = null;
            RoutedExperts.Pending remote = null;
            if (m.experts() == null) {
                // Experts on expert workers: dispatched from the host while the shared expert runs here. The one
                // place a MoE layer waits for the device: the host needs the choices and the input rows.
                if (idsH.length < t * k) {
                    idsH = new int[t * k];
                    weightsH = new float[t * k];
                }
                ops.copyOut(ids, idsH, t * k);
                ops.copyOut(wts, 0, weightsH, 0, t * k);
                for (int i = 0; i < t * k; i++) {
                    if (idsH[i] < 0 || idsH[i] >= experts) {
                        throw new IllegalStateException("the device gate chose expert " + idsH[i] + " of " + experts);
                    }
                }
                if (xnH.length < t * hidden) {
                    xnH = new float[t * hidden];
                    remoteOutH = new float[t * hidden];
                }
                ops.copyOut(xn, 0, xnH, 0, t * hidden);
                java.util.Arrays.fill(remoteOutH, 0, t * hidden, 0f);  // remote experts add into it
                remote = m.source().routed().start(xnH, t, idsH, weightsH, k, remoteOutH, hostCtx.atLayer(l));
            }
            if (m.shared() != null) {
                shared = s.f32(Slot.SHARED_OUT, (long) t * hidden);
                mlp(m.shared(), xn, shared, t);
                if (m.sharedGate() != null) {
                    sharedGate = s.f32(Slot.SHARED_GATE, t);
                    ops.linear(m.sharedGate(), xn, sharedGate, 1, hidden, t);
                }
            }
            if (remote != null) {
                remote.finish();
                ops.copyIn(remoteOutH, 0, out, 0, t * hidden);
            } else {
                DeviceMlps.routed(ops, s, m.experts(), xn, ids, wts, out, t, k, t * k, hidden);
            }
            if (shared != null) {
                if (sharedGate != null) {
                    ops.gatedAdd(out, shared, sharedGate, t, hidden);
                } else {
                    ops.add(out, shared, t * hidden);
                }
            }
        }

        /** Keeps part of this layer's new KV rows for the host's copy of the cache (written after the step). */
        private void keepRows(int l, DeviceTensor src, int srcStride, int partOff, int n) {
            if (mirror) {
                int row = c.kvRowWidth();
                ops.copyStrided(src, srcStride, 0, 0, kvRows, row, 0, l * t * row + partOff, t, 1, n);
            }
        }

        /** The step's new KV rows into the host caches, so the host copy (published to the prefix tier) is whole. */
        private void writeHostRows(ForwardBatch batch) {
            int row = c.kvRowWidth();
            int layers = c.numLayers();
            int n = layers * t * row;
            if (kvRowsH.length < n) {
                kvRowsH = new float[n];
            }
            float[] rows = kvRowsH;
            ops.copyOut(kvRows, 0, rows, 0, n);
            for (int i = 0; i < t; i++) {
                KvCache cache = batch.caches()[i];
                if (cache instanceof DeviceKvCache) {
                    continue;
                }
                int pos = batch.positions()[i];
                for (int l = 0; l < layers; l++) {
                    System.arraycopy(rows, (l * t + i) * row, cache.array(l, pos), cache.offset(pos), row);
                }
            }
        }

        @Override
        public void close() {
            s.close();
        }
    }
}
