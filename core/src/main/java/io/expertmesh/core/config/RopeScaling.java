package io.expertmesh.core.config;

/**
 * YaRN rotary scaling parameters ({@code rope_scaling} with type "yarn" in config.json).
 *
 * @param factor                 context extension factor
 * @param originalMaxPositions   {@code original_max_position_embeddings}: the length the model was pre-trained at
 * @param betaFast               {@code beta_fast}
 * @param betaSlow               {@code beta_slow}
 * @param mscale                 {@code mscale}: scales cos/sin (relative to mscaleAllDim), as Hugging Face does
 * @param mscaleAllDim           {@code mscale_all_dim}: the attention softmax scale is multiplied by
 *                               (0.1·mscaleAllDim·ln(factor) + 1)²
 */
public record RopeScaling(double factor, int originalMaxPositions, double betaFast, double betaSlow,
                          double mscale, double mscaleAllDim) {

    public RopeScaling {
        if (!(factor >= 1)) {
            throw new IllegalArgumentException("rope_scaling.factor must be >= 1, got " + factor);
        }
        if (originalMaxPositions <= 0) {
            throw new IllegalArgumentException("rope_scaling.original_max_position_embeddings must be > 0");
        }
    }

    /** YaRN's attention temperature: 0.1·m·ln(factor) + 1 (1 when the factor is ≤ 1). */
    public static double yarnMscale(double factor, double m) {
        return factor <= 1 ? 1.0 : 0.1 * m * Math.log(factor) + 1.0;
    }
}
