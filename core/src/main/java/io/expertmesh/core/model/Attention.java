package io.expertmesh.core.model;

/** One layer's self-attention: MLA (DeepSeek) or grouped-query attention (Mixtral, Qwen). */
public interface Attention {

    /**
     * Attends every token of the batch over its own sequence and writes the layer's attention output.
     *
     * @param batch the step's tokens, positions and caches; this layer's cache rows for the batch positions are
     *              written before any token reads them
     * @param xn    normalised input, {@code batch.size() × hidden}
     * @param out   output, {@code batch.size() × hidden}
     */
    void forward(ForwardBatch batch, float[] xn, float[] out, StepContext ctx);
}
