package io.expertmesh.core.sample;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * The log-probabilities reported to the client for one generated token: the chosen token's and the
 * {@code top_logprobs} most likely alternatives'.
 *
 * <p>They are the natural-log softmax of the <b>raw</b> float32 logits the model produced — before penalties,
 * temperature and the top-k/top-p/min-p filters — as vLLM reports by default: the client sees what the model
 * thinks, not what the sampler then did with it. The log-sum-exp is computed in double, in one pass over the
 * vocabulary (a running max with rescaling), and each result cast to float; the alternatives are chosen in that same
 * pass by a bounded heap, so no sort of the vocabulary and no O(vocab) allocation.
 *
 * @param chosen the token that was sampled and its log-probability
 * @param top    the most likely tokens, most likely first, ties to the lower id; may include the chosen one
 */
public record LogProbs(TokenLogprob chosen, List<TokenLogprob> top) {

    public LogProbs {
        Objects.requireNonNull(chosen, "chosen");
        top = List.copyOf(top);
    }

    /**
     * Log-probabilities of {@code chosenToken} and of the {@code topN} most likely tokens of
     * {@code logits[off, off+vocab)}. The logits are read, not modified.
     *
     * @param topN 0..{@value SamplingParams#MAX_TOP_LOGPROBS}
     */
    public static LogProbs of(float[] logits, int off, int vocab, int chosenToken, int topN) {
        Objects.checkFromIndexSize(off, vocab, logits.length);
        Objects.checkIndex(chosenToken, vocab);
        if (topN < 0 || topN > SamplingParams.MAX_TOP_LOGPROBS) {
            throw new IllegalArgumentException(
                    "topN must be in [0, " + SamplingParams.MAX_TOP_LOGPROBS + "], got " + topN);
        }
        TopN best = topN > 0 ? new TopN(Math.min(topN, vocab)) : null;
        double max = Double.NEGATIVE_INFINITY;
        double sum = 0; // Σ exp(x − max) over the values seen so far
        for (int i = 0; i < vocab; i++) {
            float v = logits[off + i];
            if (best != null) {
                best.offer(i, v);
            }
            if (v == Float.NEGATIVE_INFINITY) {
                continue; // a masked token adds nothing; skipping it avoids -inf − -inf
            }
            if (v > max) {
                sum = sum * Math.exp(max - v) + 1.0;
                max = v;
            } else {
                sum += Math.exp(v - max);
            }
        }
        double logZ = max + Math.log(sum);
        var chosen = new TokenLogprob(chosenToken, (float) (logits[off + chosenToken] - logZ));
        if (best == null) {
            return new LogProbs(chosen, List.of());
        }
        best.sortDescending();
        var top = new ArrayList<TokenLogprob>(best.size());
        for (int i = 0; i < best.size(); i++) {
            top.add(new TokenLogprob(best.id(i), (float) (best.value(i) - logZ)));
        }
        return new LogProbs(chosen, top);
    }

    /** {@code log Σ exp(x[i])} over {@code x[off, off+n)}, in double, max-shifted so large logits cannot overflow. */
    public static double logSumExp(float[] x, int off, int n) {
        Objects.checkFromIndexSize(off, n, x.length);
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, x[off + i]);
        }
        if (max == Double.NEGATIVE_INFINITY) {
            return max;
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += Math.exp(x[off + i] - max);
        }
        return max + Math.log(sum);
    }
}
