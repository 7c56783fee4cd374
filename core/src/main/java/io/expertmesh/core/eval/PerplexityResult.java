package io.expertmesh.core.eval;

/**
 * What a perplexity run measured.
 *
 * @param tokens      tokens scored
 * @param bytes       UTF-8 bytes of the scored tokens' text
 * @param meanNll     mean negative log-likelihood per scored token, in nats
 * @param windows     windows evaluated
 * @param kl          agreement with a saved base run, or null when none was given
 */
public record PerplexityResult(long tokens, long bytes, double meanNll, int windows, KlDivergence kl) {

    /** e to the mean NLL. */
    public double perplexity() {
        return Math.exp(meanNll);
    }

    /** Bits per byte of text: the figure that compares models with different tokenizers. */
    public double bitsPerByte() {
        return meanNll * tokens / Math.log(2) / bytes;
    }

    /**
     * How far this run's next-token distributions are from a base run's, over the same tokens.
     *
     * @param mean           mean KL(base || this) in nats
     * @param p99            99th percentile of the per-token KL
     * @param top1Agreement  fraction of tokens whose most likely next token is the base's
     * @param baseMeanNll    the base run's mean NLL
     */
    public record KlDivergence(double mean, double p99, double top1Agreement, double baseMeanNll) {
    }
}
