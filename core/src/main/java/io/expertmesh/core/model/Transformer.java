package io.expertmesh.core.model;

import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.model.Scratch.Slot;
import io.expertmesh.core.tensor.Matrix;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;

/**
 * The whole decoder: embedding → blocks → final norm → LM head, as DeepSeek's reference {@code Transformer}.
 * One forward call runs a {@link ForwardBatch} of tokens from any number of sequences through every layer
 * together, so each weight is read once per step.
 *
 * <p>Not thread-safe: one step at a time (it owns the step's scratch buffers).
 */
public final class Transformer implements AutoCloseable {
    private final ModelConfig config;
    private final Matrix embed;
    private final Block[] blocks;
    private final float[] finalNorm;
    private final Matrix lmHead;
    private final Rope rope;
    private final Kernels kernels;
    private final Arena arena;
    private final StepContext ctx;

    Transformer(ModelConfig config, Matrix embed, Block[] blocks, float[] finalNorm, Matrix lmHead, Rope rope,
                Kernels kernels, Arena arena) {
        this.config = config;
        this.embed = embed;
        this.blocks = blocks;
        this.finalNorm = finalNorm;
        this.lmHead = lmHead;
        this.rope = rope;
        this.kernels = kernels;
        this.arena = arena;
        this.ctx = new StepContext(kernels, new Scratch());
    }

    public ModelConfig config() {
        return config;
    }

    public Kernels kernels() {
        return kernels;
    }

    public Block block(int layer) {
        return blocks[layer];
    }

    public Matrix embed() {
        return embed;
    }

    public float[] finalNorm() {
        return finalNorm;
    }

    public Matrix lmHead() {
        return lmHead;
    }

    public Rope rope() {
        return rope;
    }

    /** A fresh contiguous KV cache able to hold {@code capacity} positions (at most the model's limit). */
    public KvCache newCache(int capacity) {
        return new ContiguousKvCache(config.numLayers(), config.kvRowWidth(),
                Math.min(capacity, config.maxPositions()));
    }

    /**
     * Runs one step. Writes the logits of row {@code batch.logitRows()[j]} to
     * {@code logits[j·vocab, (j+1)·vocab)}.
     */
    public void forward(ForwardBatch batch, float[] logits) {
        forward(batch, logits, ctx);
    }

    /**
     * A step context of its own (scratch buffers) for running a second batch at the same time as another, on
     * another thread: two micro-batches of a step, one computing while the other waits on remote experts. The
     * kernels must then not be used by both at once (the caller serialises the compute).
     */
    public StepContext newStepContext() {
        return new StepContext(kernels, new Scratch());
    }

    /** As {@link #forward(ForwardBatch, float[])} with the given step context (one forward pass at a time). */
    public void forward(ForwardBatch batch, float[] logits, StepContext ctx) {
        int t = batch.size();
        int hidden = config.hiddenSize();
        int vocab = config.vocabSize();
        if (logits.length < batch.logitRows().length * vocab) {
            throw new IllegalArgumentException("logits buffer holds " + logits.length + " floats, need "
                    + batch.logitRows().length * vocab);
        }
        for (int i = 0; i < t; i++) {
            int tok = batch.tokens()[i];
            int pos = batch.positions()[i];
            if (tok < 0 || tok >= vocab) {
                throw new IllegalArgumentException("token id " + tok + " outside vocabulary [0, " + vocab + ")");
            }
            if (pos < 0 || pos >= config.maxPositions() || pos >= batch.caches()[i].capacity()) {
                throw new IllegalArgumentException("position " + pos + " beyond the context limit");
            }
        }
        Scratch s = ctx.scratch;
        int half = rope.dim() / 2;
        ctx.cos = s.floats(Slot.COS, t * half);
        ctx.sin = s.floats(Slot.SIN, t * half);
        for (int i = 0; i < t; i++) {
            rope.fill(batch.positions()[i], ctx.cos, ctx.sin, i * half);
        }
        float[] x = s.floats(Slot.X, t * hidden);
        for (int i = 0; i < t; i++) {
            embedRow(batch.tokens()[i], x, i * hidden);
        }
        for (int l = 0; l < blocks.length; l++) {
            ctx.layer = l;
            blocks[l].forward(batch, x, ctx);
        }
        int rows = batch.logitRows().length;
        if (rows == 0) {
            return;
        }
        float[] xn = s.floats(Slot.XN, rows * hidden);
        for (int j = 0; j < rows; j++) {
            kernels.rmsNorm(x, batch.logitRows()[j] * hidden, finalNorm, config.rmsNormEps(), xn, j * hidden, hidden);
        }
        kernels.matmul(lmHead, xn, 0, logits, 0, rows);
    }

    private void embedRow(int token, float[] out, int off) {
        int hidden = config.hiddenSize();
        long base = (long) token * hidden;
        switch (embed.dtype()) {
            case F32 -> java.lang.foreign.MemorySegment.copy(embed.data(), ValueLayout.JAVA_FLOAT_UNALIGNED,
                    base * 4, out, off, hidden);
            case BF16 -> {
                for (int c = 0; c < hidden; c++) {
                    short b = embed.data().getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, base + c);
                    out[off + c] = Float.intBitsToFloat((b & 0xFFFF) << 16);
                }
            }
            // Not in any published checkpoint (DeepSeek keeps the embedding BF16), but cheap: one row per token.
            case F8_E4M3 -> {
                for (int c = 0; c < hidden; c++) {
                    out[off + c] = embed.get(token, c);
                }
            }
            default -> throw new IllegalStateException();
        }
    }

    @Override
    public void close() {
        arena.close();
    }
}
