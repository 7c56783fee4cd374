package io.expertmesh.core.model;

import io.expertmesh.core.config.RopeScaling;

/**
 * Rotary position embedding frequencies, with YaRN correction, computed the way DeepSeek's reference
 * {@code precompute_freqs_cis} does (float32 frequencies, float32 angle = position × frequency).
 *
 * <p>Only cos/sin rows for the positions of the current step are computed, so a 160k-position model needs no
 * 40 MB table.
 */
public final class Rope {
    private final int dim;
    private final float[] freqs;
    private final float cosSinScale;

    /**
     * @param dim          rotary dimensions (even)
     * @param theta        rotary base
     * @param yarn         YaRN parameters, or null
     * @param yarnActive   whether YaRN's frequency correction applies (sequence limit beyond pre-training)
     */
    public Rope(int dim, double theta, RopeScaling yarn, boolean yarnActive) {
        this.dim = dim;
        int half = dim / 2;
        freqs = new float[half];
        for (int i = 0; i < half; i++) {
            freqs[i] = (float) (1.0 / Math.pow(theta, (2.0 * i) / dim));
        }
        if (yarn != null && yarnActive) {
            double low = Math.max(Math.floor(correctionDim(yarn.betaFast(), dim, theta, yarn.originalMaxPositions())), 0);
            double high = Math.min(Math.ceil(correctionDim(yarn.betaSlow(), dim, theta, yarn.originalMaxPositions())),
                    dim - 1);
            if (low == high) {
                high += 0.001;
            }
            for (int i = 0; i < half; i++) {
                double ramp = Math.clamp((i - low) / (high - low), 0.0, 1.0);
                double smooth = 1 - ramp;
                freqs[i] = (float) (freqs[i] / yarn.factor() * (1 - smooth) + freqs[i] * smooth);
            }
            // Hugging Face scales cos/sin by mscale/mscale_all_dim (1 for every published DeepSeek config).
            cosSinScale = yarn.mscaleAllDim() == 0 ? (float) RopeScaling.yarnMscale(yarn.factor(), yarn.mscale())
                    : (float) (RopeScaling.yarnMscale(yarn.factor(), yarn.mscale())
                    / RopeScaling.yarnMscale(yarn.factor(), yarn.mscaleAllDim()));
        } else {
            cosSinScale = 1f;
        }
    }

    /** Inverse of the rotation count formula: the dimension whose wavelength fits {@code rotations} times. */
    private static double correctionDim(double rotations, int dim, double base, int maxPositions) {
        return dim * Math.log(maxPositions / (rotations * 2 * Math.PI)) / (2 * Math.log(base));
    }

    public int dim() {
        return dim;
    }

    /** Writes cos and sin of each pair's angle at {@code position} into {@code cos/sin[off, off + dim/2)}. */
    public void fill(int position, float[] cos, float[] sin, int off) {
        for (int i = 0; i < freqs.length; i++) {
            float angle = position * freqs[i];
            cos[off + i] = (float) Math.cos(angle) * cosSinScale;
            sin[off + i] = (float) Math.sin(angle) * cosSinScale;
        }
    }
}
