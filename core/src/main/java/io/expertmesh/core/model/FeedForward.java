package io.expertmesh.core.model;

/** One layer's feed-forward: a dense SwiGLU MLP or a mixture of experts. */
public interface FeedForward {

    /** {@code out[t] = ffn(xn[t])} for {@code t < tokens}; rows of {@code hidden} floats. */
    void forward(float[] xn, float[] out, int tokens, StepContext ctx);
}
