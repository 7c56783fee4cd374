package io.expertmesh.core.model;

import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.model.Scratch.Slot;
import io.expertmesh.core.tensor.Matrix;

/**
 * SwiGLU feed-forward, {@code down(silu(gate(x)) · up(x))}: the dense MLP of early DeepSeek layers, every
 * routed expert, and the shared experts. (DeepSeek's reference calls it {@code MLP} / {@code Expert}.)
 *
 * @param gate {@code gate_proj} (w1), intermediate × hidden
 * @param up   {@code up_proj} (w3), intermediate × hidden
 * @param down {@code down_proj} (w2), hidden × intermediate
 */
public record Mlp(Matrix gate, Matrix up, Matrix down) implements FeedForward {

    public Mlp {
        if (gate.rows() != up.rows() || gate.cols() != up.cols() || down.cols() != gate.rows()
                || down.rows() != gate.cols()) {
            throw new IllegalArgumentException("inconsistent MLP shapes: " + gate.name() + " " + gate.rows() + "x"
                    + gate.cols() + ", " + up.name() + " " + up.rows() + "x" + up.cols() + ", " + down.name() + " "
                    + down.rows() + "x" + down.cols());
        }
    }

    public int intermediate() {
        return gate.rows();
    }

    /** Bytes of weight one pass reads. */
    public long byteSize() {
        return gate.byteSize() + up.byteSize() + down.byteSize();
    }

    @Override
    public void forward(float[] xn, float[] out, int tokens, StepContext ctx) {
        Kernels k = ctx.kernels();
        int inter = intermediate();
        float[] h1 = ctx.scratch().floats(Slot.EXPERT_H1, tokens * inter);
        float[] h2 = ctx.scratch().floats(Slot.EXPERT_H2, tokens * inter);
        k.matmuls(ctx.scratch().group().add(gate, xn, 0, h1, 0, tokens).add(up, xn, 0, h2, 0, tokens));
        k.swiglu(h1, 0, h2, 0, h1, 0, tokens * inter);
        k.matmul(down, h1, 0, out, 0, tokens);
    }
}
