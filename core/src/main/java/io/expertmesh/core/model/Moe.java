package io.expertmesh.core.model;

import io.expertmesh.core.model.Scratch.Slot;
import io.expertmesh.core.tensor.Matrix;
import java.util.Arrays;

/**
 * Mixture-of-experts feed-forward: gate → routed experts (weighted) + shared expert(s).
 * DeepSeek adds the shared experts' output unweighted; Qwen2-MoE scales it by
 * sigmoid(shared_expert_gate · x); Mixtral and Qwen3-MoE have none.
 *
 * @param gate       the router
 * @param routed     where the routed experts run (in process or on expert workers)
 * @param shared     shared expert MLP, or null
 * @param sharedGate Qwen2-MoE's 1 × hidden shared-expert gate, or null
 * @param hidden     residual width
 */
public record Moe(Gate gate, RoutedExperts routed, Mlp shared, Matrix sharedGate, int hidden) implements FeedForward {

    @Override
    public void forward(float[] xn, float[] out, int tokens, StepContext ctx) {
        int k = gate.topK();
        int[] ids = ctx.scratch().ints(tokens * k);
        float[] weights = ctx.scratch().floats(Slot.TOPK_WEIGHTS, tokens * k);
        gate.route(xn, tokens, ids, weights, ctx);
        Arrays.fill(out, 0, tokens * hidden, 0f);
        if (shared == null) {
            routed.start(xn, tokens, ids, weights, k, out, ctx).finish();
            return;
        }
        float[] s = ctx.scratch().floats(Slot.SHARED_OUT, tokens * hidden);
        float[] g = sharedGate == null ? null : ctx.scratch().floats(Slot.SHARED_GATE, tokens);
        // Remote experts are in flight while the shared expert (and its gate) run here.
        RoutedExperts.Pending routedOut = routed.startWithShared(xn, tokens, ids, weights, k, out, shared, s, ctx);
        if (sharedGate != null) {
            ctx.kernels().matmul(sharedGate, xn, 0, g, 0, tokens);
        }
        routedOut.finish();
        // The routed outputs are in out first, local or remote, so the sum is the same.
        for (int t = 0; t < tokens; t++) {
            float w = g == null ? 1f : (float) (1.0 / (1.0 + Math.exp(-g[t])));
            ctx.kernels().axpy(w, s, t * hidden, out, t * hidden, hidden);
        }
    }
}
