package io.expertmesh.core.sample;

import java.util.Arrays;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Chooses the next token of one sequence. One instance per sequence: it owns the sequence's random generator (so a
 * seed reproduces a sequence whatever else is in the batch) and its {@link TokenHistory} for the penalties.
 *
 * <p>The pipeline, in order: {@link Penalties} → temperature → top-k → top-p → min-p → draw. Greedy decoding
 * (temperature 0) applies the penalties and returns the argmax, lowest id on ties, without touching the RNG.
 *
 * <p>Cost per token: one copy of the logits into scratch, O(vocab) for top-k selection and the exponentials, and a
 * sort of only the tokens that could be in the top-p nucleus (those with probability ≥ (1 − top_p)/(n − 1), the
 * llama2.c bound: everything below it together weighs less than 1 − top_p). No O(vocab) allocation after the first
 * call.
 */
public final class Sampler {
    private final SamplingParams params;
    private final Penalties penalties;
    private final TokenHistory history = new TokenHistory();
    private final long seed;
    private final SplittableRandom random;
    private final SamplerScratch scratch;

    /** A sampler with its own scratch. */
    public Sampler(SamplingParams params) {
        this(params, new SamplerScratch());
    }

    /** A sampler using {@code scratch}, which may be shared with other samplers used on the same thread only. */
    public Sampler(SamplingParams params, SamplerScratch scratch) {
        this.params = Objects.requireNonNull(params, "params");
        this.scratch = Objects.requireNonNull(scratch, "scratch");
        this.penalties = Penalties.of(params);
        this.seed = params.seed() != null ? params.seed() : ThreadLocalRandom.current().nextLong();
        this.random = new SplittableRandom(seed);
    }

    public SamplingParams params() {
        return params;
    }

    /** The seed in use: the requested one, or the one drawn for this sequence (log it to reproduce a run). */
    public long seed() {
        return seed;
    }

    public TokenHistory history() {
        return history;
    }

    /** Records prompt tokens for the repetition penalty. */
    public void observePrompt(int[] ids) {
        history.observePrompt(ids);
    }

    /** Records a generated token for the penalties; call once per token actually appended to the sequence. */
    public void accept(int token) {
        history.accept(token);
    }

    /**
     * Draws the next token from {@code logits[off, off+vocab)}, which are not modified (so {@link LogProbs} can use
     * the same raw values). Does not {@link #accept} the token: the caller does once it keeps it.
     *
     * @throws IllegalStateException when no token has a finite logit (all masked, or NaN from upstream)
     */
    public int sample(float[] logits, int off, int vocab) {
        Objects.checkFromIndexSize(off, vocab, logits.length);
        if (vocab == 0) {
            throw new IllegalArgumentException("vocab must be >= 1");
        }
        SamplerScratch s = scratch;
        s.ensure(vocab);
        float[] x = s.logits;
        System.arraycopy(logits, off, x, 0, vocab);
        if (penalties.active()) {
            penalties.apply(x, 0, vocab, history);
        }
        if (params.isGreedy()) {
            return argmax(x, vocab);
        }
        int n = topK(x, vocab);
        n = softmax(x, n);
        if (params.topP() < 1f) {
            n = topP(n);
        }
        if (params.minP() > 0f) {
            n = minP(n);
        }
        return draw(n);
    }

    /**
     * Index of the largest value in {@code x[0, n)}, the lowest on ties. NaN and -inf are never chosen.
     *
     * @throws IllegalStateException when no value is finite or +inf
     */
    static int argmax(float[] x, int n) {
        int best = -1;
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            if (x[i] > max) {
                max = x[i];
                best = i;
            }
        }
        if (best < 0) {
            throw new IllegalStateException("no token has a usable logit (all -inf or NaN)");
        }
        return best;
    }

    /** Fills {@code ids} with the candidates: the top-k tokens (k exactly, ties to lower id), or all of them. */
    private int topK(float[] x, int vocab) {
        int[] ids = scratch.ids;
        if (!params.topKActive(vocab)) {
            for (int i = 0; i < vocab; i++) {
                ids[i] = i;
            }
            return vocab;
        }
        TopN top = scratch.topK;
        top.reset(params.topK());
        top.offerAll(x, 0, vocab);
        int k = top.size();
        for (int i = 0; i < k; i++) {
            ids[i] = top.id(i);
        }
        return k;
    }

    /**
     * Puts {@code exp((l − max) / T)} of each candidate in {@code probs}: unnormalised probabilities with the most
     * likely candidate at exactly 1, which is what min-p compares against. Subtracting the max before dividing by T
     * keeps a tiny temperature from overflowing. Drops nothing; returns n.
     */
    private int softmax(float[] x, int n) {
        int[] ids = scratch.ids;
        float[] probs = scratch.probs;
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, x[ids[i]]);
        }
        if (!(max > Float.NEGATIVE_INFINITY) || Float.isNaN(max) || max == Float.POSITIVE_INFINITY) {
            throw new IllegalStateException("logits are not usable for sampling (max = " + max + ")");
        }
        float invT = 1f / params.temperature();
        for (int i = 0; i < n; i++) {
            float d = x[ids[i]] - max;
            probs[i] = d == 0f ? 1f : (float) Math.exp(d * invT); // d == 0 avoids 0 · ∞ when T is subnormal
        }
        return n;
    }

    /**
     * Keeps the smallest prefix, most likely first (ties to lower id), whose mass reaches top_p of the candidates'
     * mass; the candidates are left in that order. Only tokens above the llama2.c cutoff are sorted.
     */
    private int topP(int n) {
        int[] ids = scratch.ids;
        float[] probs = scratch.probs;
        long[] keys = scratch.keys;
        double total = 0;
        for (int i = 0; i < n; i++) {
            total += probs[i];
        }
        // capped at 1 (the most likely candidate) so the nucleus is never filtered away when all are below it
        double cutoff = n > 1 ? Math.min(1.0, (1.0 - params.topP()) / (n - 1) * total) : 0;
        int m = 0;
        for (int i = 0; i < n; i++) {
            float p = probs[i];
            if (p >= cutoff && p > 0) {
                // probability bits (non-negative floats order like ints), then the id reversed so that after an
                // ascending sort, reading from the end gives probability descending, id ascending
                keys[m++] = ((long) Float.floatToRawIntBits(p) << 32) | (Integer.MAX_VALUE - ids[i]);
            }
        }
        Arrays.sort(keys, 0, m);
        double target = params.topP() * total;
        double cumulative = 0;
        int kept = 0;
        for (int j = m - 1; j >= 0; j--) {
            long key = keys[j];
            float p = Float.intBitsToFloat((int) (key >>> 32));
            ids[kept] = Integer.MAX_VALUE - (int) key;
            probs[kept] = p;
            kept++;
            cumulative += p;
            if (cumulative >= target) {
                break;
            }
        }
        return kept;
    }

    /** Drops candidates whose probability is below min_p times the most likely one's (which is 1 here). */
    private int minP(int n) {
        int[] ids = scratch.ids;
        float[] probs = scratch.probs;
        float threshold = params.minP();
        int kept = 0;
        for (int i = 0; i < n; i++) {
            if (probs[i] >= threshold) {
                ids[kept] = ids[i];
                probs[kept] = probs[i];
                kept++;
            }
        }
        return kept;
    }

    /** Draws one candidate with probability proportional to {@code probs}. */
    private int draw(int n) {
        int[] ids = scratch.ids;
        float[] probs = scratch.probs;
        double total = 0;
        for (int i = 0; i < n; i++) {
            total += probs[i];
        }
        double u = random.nextDouble() * total;
        double cumulative = 0;
        int last = ids[0];
        for (int i = 0; i < n; i++) {
            if (probs[i] > 0) {
                cumulative += probs[i];
                last = ids[i];
                if (u < cumulative) {
                    return ids[i];
                }
            }
        }
        return last; // rounding left u at the very top
    }
}
