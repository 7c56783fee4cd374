package io.expertmesh.core.model;

import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.model.Scratch.Slot;

/**
 * One decoder layer: {@code x += attn(norm(x)); x += ffn(norm(x))}.
 *
 * @param attnNorm {@code input_layernorm} weight
 * @param attn     self-attention
 * @param ffnNorm  {@code post_attention_layernorm} weight
 * @param ffn      dense MLP or MoE
 */
public record Block(float[] attnNorm, Attention attn, float[] ffnNorm, FeedForward ffn, float eps, int hidden) {

    /** Updates the residual rows {@code x[0, batch.size() × hidden)} in place. */
    public void forward(ForwardBatch batch, float[] x, StepContext ctx) {
        Kernels k = ctx.kernels();
        int t = batch.size();
        float[] xn = ctx.scratch().floats(Slot.XN, t * hidden);
        float[] attnOut = ctx.scratch().floats(Slot.ATTN_OUT, t * hidden);
        for (int i = 0; i < t; i++) {
            k.rmsNorm(x, i * hidden, attnNorm, eps, xn, i * hidden, hidden);
        }
        attn.forward(batch, xn, attnOut, ctx);
        k.axpy(1f, attnOut, 0, x, 0, t * hidden);
        for (int i = 0; i < t; i++) {
            k.rmsNorm(x, i * hidden, ffnNorm, eps, xn, i * hidden, hidden);
        }
        float[] ffnOut = ctx.scratch().floats(Slot.FFN_OUT, t * hidden);
        ffn.forward(xn, ffnOut, t, ctx);
        k.axpy(1f, ffnOut, 0, x, 0, t * hidden);
    }
}
