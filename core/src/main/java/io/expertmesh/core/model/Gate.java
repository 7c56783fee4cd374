package io.expertmesh.core.model;

import io.expertmesh.core.config.ModelConfig.Scoring;
import io.expertmesh.core.model.Scratch.Slot;
import io.expertmesh.core.tensor.Matrix;

/**
 * The MoE router: picks {@code topK} experts per token and their weights.
 *
 * <p>One rule covers every family, as in DeepSeek's reference {@code Gate}: scores = sigmoid or softmax of the
 * router logits; the optional {@code e_score_correction_bias} is added <em>for selection only</em>; with
 * {@code nGroup > 1} each group is scored by the sum of its top-2 biased scores (or its max without a bias) and
 * only the best {@code topkGroup} groups stay eligible; the top-k of the eligible biased scores are chosen; their
 * weights are the unbiased scores, renormalised to sum 1 when {@code normalize}, times {@code scale}.
 * Mixtral = softmax, renormalised; Qwen2-MoE = softmax, not renormalised; Qwen3-MoE = softmax, renormalised;
 * DeepSeek-V3 = sigmoid + bias + group limit, renormalised, × routed_scaling_factor. Ties go to the lower id.
 */
public final class Gate {
    private final Matrix weight;
    private final float[] bias;
    private final Scoring scoring;
    private final int topK;
    private final int nGroup;
    private final int topkGroup;
    private final boolean normalize;
    private final float scale;
    // Per-token working rows; a Gate belongs to one layer and layers run one at a time.
    private final float[] scores;
    private final float[] choice;
    private final float[] groupScore;

    public Gate(Matrix weight, float[] bias, Scoring scoring, int topK, int nGroup, int topkGroup,
                boolean normalize, double scale) {
        this.weight = weight;
        this.bias = bias;
        this.scoring = scoring;
        this.topK = topK;
        this.nGroup = nGroup;
        this.topkGroup = topkGroup;
        this.normalize = normalize;
        this.scale = (float) scale;
        this.scores = new float[weight.rows()];
        this.choice = new float[weight.rows()];
        this.groupScore = new float[nGroup];
        if (bias != null && bias.length != weight.rows()) {
            throw new IllegalArgumentException("gate bias has " + bias.length + " entries for " + weight.rows()
                    + " experts");
        }
    }

    public int numExperts() {
        return weight.rows();
    }

    public int topK() {
        return topK;
    }

    /** The router weight {@code [experts, hidden]}. */
    public Matrix weight() {
        return weight;
    }

    /** {@code e_score_correction_bias}, or null. */
    public float[] bias() {
        return bias;
    }

    public Scoring scoring() {
        return scoring;
    }

    public int nGroup() {
        return nGroup;
    }

    public int topkGroup() {
        return topkGroup;
    }

    public boolean normalize() {
        return normalize;
    }

    public float scale() {
        return scale;
    }

    /**
     * Routes {@code tokens} rows of router logits {@code [tokens, experts]} computed elsewhere (a GPU, a test):
     * the same rule as {@link #route}, which computes the logits itself. Not thread-safe (working rows).
     */
    public void routeLogits(float[] logits, int tokens, int[] ids, float[] weights) {
        int e = numExperts();
        for (int t = 0; t < tokens; t++) {
            routeOne(logits, t * e, ids, weights, t * topK);
        }
    }

    /**
     * Routes {@code tokens} rows of {@code xn}: writes expert ids to {@code ids[t*topK + j]} and weights to
     * {@code weights[t*topK + j]}, in descending order of selection score.
     */
    public void route(float[] xn, int tokens, int[] ids, float[] weights, StepContext ctx) {
        int e = numExperts();
        float[] logits = ctx.scratch().floats(Slot.GATE_LOGITS, tokens * e);
        ctx.kernels().matmul(weight, xn, 0, logits, 0, tokens);
        for (int t = 0; t < tokens; t++) {
            routeOne(logits, t * e, ids, weights, t * topK);
        }
    }

    /** Routing of one token given its router logits; package-private for tests. */
    void routeOne(float[] logits, int off, int[] ids, float[] weights, int outOff) {
        int e = numExperts();
        System.arraycopy(logits, off, scores, 0, e);
        if (scoring == Scoring.SIGMOID) {
            for (int i = 0; i < e; i++) {
                scores[i] = (float) (1.0 / (1.0 + Math.exp(-scores[i])));
            }
        } else {
            softmax(scores, e);
        }
        for (int i = 0; i < e; i++) {
            choice[i] = bias == null ? scores[i] : scores[i] + bias[i];
        }
        if (nGroup > 1 && topkGroup < nGroup) {
            limitGroups();
        }
        float sum = 0f;
        for (int j = 0; j < topK; j++) {
            int best = -1;
            for (int i = 0; i < e; i++) {
                if (choice[i] != Float.NEGATIVE_INFINITY && (best < 0 || choice[i] > choice[best])) {
                    best = i;
                }
            }
            ids[outOff + j] = best;
            weights[outOff + j] = scores[best];
            sum += scores[best];
            choice[best] = Float.NEGATIVE_INFINITY;
        }
        for (int j = 0; j < topK; j++) {
            float w = normalize ? weights[outOff + j] / sum : weights[outOff + j];
            weights[outOff + j] = w * scale;
        }
    }

    /** Masks (to -inf) every expert outside the best {@code topkGroup} groups. */
    private void limitGroups() {
        int per = numExperts() / nGroup;
        for (int g = 0; g < nGroup; g++) {
            float first = Float.NEGATIVE_INFINITY;
            float second = Float.NEGATIVE_INFINITY;
            for (int i = g * per; i < (g + 1) * per; i++) {
                float v = choice[i];
                if (v > first) {
                    second = first;
                    first = v;
                } else if (v > second) {
                    second = v;
                }
            }
            groupScore[g] = bias != null ? first + (per > 1 ? second : 0f) : first;
        }
        for (int kept = 0; kept < topkGroup; kept++) {
            int best = -1;
            for (int g = 0; g < nGroup; g++) {
                if (groupScore[g] != Float.POSITIVE_INFINITY
                        && (best < 0 || groupScore[g] > groupScore[best])) {
                    best = g;
                }
            }
            groupScore[best] = Float.POSITIVE_INFINITY; // marks "kept"
        }
        for (int g = 0; g < nGroup; g++) {
            if (groupScore[g] != Float.POSITIVE_INFINITY) {
                for (int i = g * per; i < (g + 1) * per; i++) {
                    choice[i] = Float.NEGATIVE_INFINITY;
                }
            }
        }
    }

    private static void softmax(float[] x, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, x[i]);
        }
        float sum = 0f;
        for (int i = 0; i < n; i++) {
            x[i] = (float) Math.exp(x[i] - max);
            sum += x[i];
        }
        for (int i = 0; i < n; i++) {
            x[i] /= sum;
        }
    }
}
