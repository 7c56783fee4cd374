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
 * <p>Cost per token: one copy of the logits into scratch, O(vocab) for top-k selection (bounded heap) and the
 * exponentials, and an expected-linear partition for the top-p boundary over only the tokens that could be in the
 * nucleus (probability ≥ (1 − top_p)/(n − 1), the llama2.c bound: everything below it together weighs less than
 * 1 − top_p). No full sort of the vocabulary, and no O(vocab) allocation after the first call.
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
            float scaled = d * invT;
            // d == 0 avoids 0 · ∞ when T is subnormal; below e^-88 a float is denormal anyway, so skip the exp
            probs[i] = d == 0f ? 1f : scaled < -88f ? 0f : (float) Math.exp(scaled);
        }
        return n;
    }

    /**
     * Keeps the smallest set of most likely candidates (ties to the lower id) whose mass reaches top_p of the
     * candidates' mass. Tokens below the llama2.c cutoff cannot be in that set and are skipped; among the rest the
     * boundary is found by quickselect-style partitioning (expected O(n)), so a flat distribution, where most of the
     * vocabulary passes the cutoff, costs no full sort. Only a last slice of at most {@value #SORT_BELOW} is sorted.
     * The kept candidates are left in {@code ids/probs[0, kept)} in a deterministic order.
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
                keys[m++] = key(p, ids[i]);
            }
        }
        int kept = nucleus(keys, m, params.topP() * total);
        for (int j = 0; j < kept; j++) {
            ids[j] = idOf(keys[j]);
            probs[j] = probOf(keys[j]);
        }
        return kept;
    }

    static final int SORT_BELOW = 64;

    /**
     * Rearranges {@code keys[0, m)} so that the most likely keys whose mass first reaches {@code need} come first,
     * and returns how many they are. Keys are unique, and a larger key means more likely (ties to lower id).
     */
    static int nucleus(long[] keys, int m, double need) {
        int lo = 0; // keys[0, lo) are taken: each is larger than every key in [lo, hi)
        int hi = m; // keys[hi, m) are out
        while (hi - lo > SORT_BELOW) {
            long pivot = median(keys[lo], keys[(lo + hi) >>> 1], keys[hi - 1]);
            // three-way split of [lo, hi): larger than pivot | pivot | smaller
            int upper = lo;
            double upperMass = 0;
            for (int i = lo; i < hi; i++) {
                long k = keys[i];
                if (k > pivot) {
                    keys[i] = keys[upper];
                    keys[upper++] = k;
                    upperMass += probOf(k);
                }
            }
            for (int i = upper; i < hi; i++) { // put the pivot right after the larger keys
                if (keys[i] == pivot) {
                    keys[i] = keys[upper];
                    keys[upper] = pivot;
                    break;
                }
            }
            if (upperMass >= need) {
                hi = upper;
            } else if (upperMass + probOf(pivot) >= need) {
                return upper + 1;
            } else {
                need -= upperMass + probOf(pivot);
                lo = upper + 1;
            }
        }
        Arrays.sort(keys, lo, hi);
        for (int i = lo, j = hi - 1; i < j; i++, j--) { // descending
            long t = keys[i];
            keys[i] = keys[j];
            keys[j] = t;
        }
        double cumulative = 0;
        for (int i = lo; i < hi; i++) {
            cumulative += probOf(keys[i]);
            if (cumulative >= need) {
                return i + 1;
            }
        }
        return Math.max(hi, 1); // rounding: everything that was left
    }

    /**
     * Probability bits (non-negative floats order like ints) above the id reversed: a larger key is more likely,
     * and among equal probabilities has the lower id.
     */
    static long key(float prob, int id) {
        return ((long) Float.floatToRawIntBits(prob) << 32) | (Integer.MAX_VALUE - id);
    }

    static int idOf(long key) {
        return Integer.MAX_VALUE - (int) key;
    }

    static float probOf(long key) {
        return Float.intBitsToFloat((int) (key >>> 32));
    }

    private static long median(long a, long b, long c) {
        return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
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
        if (n == 0) {
            throw new IllegalStateException("no candidate token left after filtering"); // a bug, never the input
        }
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
