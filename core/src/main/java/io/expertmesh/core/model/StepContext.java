package io.expertmesh.core.model;

import io.expertmesh.core.kernel.Kernels;

/**
 * What every layer needs during one forward step: the kernels, the step's scratch buffers, the rotary cos/sin
 * rows of the batch's positions, and the layer index (for cache rows and expert statistics).
 */
public final class StepContext {
    final Kernels kernels;
    final Scratch scratch;
    float[] cos;
    float[] sin;
    int layer;

    StepContext(Kernels kernels, Scratch scratch) {
        this.kernels = kernels;
        this.scratch = scratch;
    }

    /**
     * A context for running single layers outside a {@link Transformer} (an expert worker's experts, tests):
     * its own scratch buffers, layer 0, no rotary rows. Like a Scratch, it serves one caller at a time.
     */
    public static StepContext standalone(Kernels kernels) {
        return new StepContext(kernels, new Scratch());
    }

    /** Sets the layer index reported by {@link #layer()} (standalone contexts). */
    public StepContext atLayer(int layer) {
        this.layer = layer;
        return this;
    }

    public Kernels kernels() {
        return kernels;
    }

    public Scratch scratch() {
        return scratch;
    }

    public int layer() {
        return layer;
    }
}
