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
