package io.expertmesh.core.sample;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class SamplerTest {

    private static final SamplingParams T1 = SamplingParams.defaults().withSeed(1234L);

    private static float[] randomLogits(long seed, int vocab, float scale) {
        var r = new Random(seed);
        float[] x = new float[vocab];
        for (int i = 0; i < vocab; i++) {
            x[i] = (float) (r.nextGaussian() * scale);
        }
        return x;
    }

    private static float[] logOf(double... probs) {
        float[] x = new float[probs.length];
        for (int i = 0; i < probs.length; i++) {
            x[i] = (float) Math.log(probs[i]);
        }
        return x;
    }

    private static int[] histogram(Sampler s, float[] logits, int draws) {
        int[] counts = new int[logits.length];
        for (int i = 0; i < draws; i++) {
            counts[s.sample(logits, 0, logits.length)]++;
        }
        return counts;
    }

    /**
     * Pearson's chi-square of observed counts against expected probabilities; tokens with expected probability 0
     * must never be drawn.
     */
    private static double chiSquare(int[] counts, double[] expected) {
        long n = Arrays.stream(counts).asLongStream().sum();
        double chi = 0;
        for (int i = 0; i < counts.length; i++) {
            if (expected[i] == 0) {
                assertEquals(0, counts[i], "token " + i + " must never be drawn");
                continue;
            }
            double e = n * expected[i];
            chi += (counts[i] - e) * (counts[i] - e) / e;
        }
        return chi;
    }

    private static double[] normalise(double... w) {
        double sum = Arrays.stream(w).sum();
        return Arrays.stream(w).map(v -> v / sum).toArray();
    }

    // chi-square critical values at p = 0.001; the draws are seeded, so a pass is reproducible
    private static final double CHI2_DF1 = 10.83;
    private static final double CHI2_DF2 = 13.82;

    @Test
    void sample_greedy_returnsArgmax() {
        var s = new Sampler(SamplingParams.greedy());
        for (int seed = 0; seed < 20; seed++) {
            float[] x = randomLogits(seed, 1000, 2f);
            int expected = IntStream.range(0, x.length).reduce((a, b) -> x[b] > x[a] ? b : a).orElseThrow();
            assertEquals(expected, s.sample(x, 0, x.length));
        }
    }

    @Test
    void sample_greedyWithTies_returnsLowestIndex() {
        var s = new Sampler(SamplingParams.greedy());
        assertEquals(1, s.sample(new float[] {1f, 3f, 3f, 2f, 3f}, 0, 5));
        assertEquals(0, s.sample(new float[] {0f, 0f, 0f}, 0, 3));
        assertEquals(2, s.sample(new float[] {Float.NEGATIVE_INFINITY, Float.NaN, -5f}, 0, 3));
    }

    @Test
    void sample_greedyWithOffset_readsOnlyThatRow() {
        float[] batch = {9f, 0f, 0f, /* row 1 */ 0f, 1f, 5f};
        assertEquals(2, new Sampler(SamplingParams.greedy()).sample(batch, 3, 3));
    }

    @Test
    void sample_greedyWithPenalty_penaltyChangesArgmax() {
        var s = new Sampler(SamplingParams.greedy().withPresencePenalty(0.5f));
        float[] x = {1f, 3f, 2.9f};
        assertEquals(1, s.sample(x, 0, 3));
        s.accept(1);
        assertEquals(2, s.sample(x, 0, 3));
    }

    @Test
    void sample_repetitionPenaltyOnPrompt_appliedWhenGreedy() {
        var s = new Sampler(SamplingParams.greedy().withRepetitionPenalty(1.5f));
        s.observePrompt(new int[] {0});
        assertEquals(1, s.sample(new float[] {3f, 2.5f}, 0, 2));
    }

    @Test
    void sample_anyParams_leavesCallerLogitsUnchanged() {
        var s = new Sampler(T1.withRepetitionPenalty(2f).withFrequencyPenalty(1f).withTopK(3).withTopP(0.9f)
                .withTemperature(0.7f));
        s.observePrompt(new int[] {1, 2});
        s.accept(3);
        float[] x = randomLogits(7, 50, 1f);
        float[] copy = x.clone();
        s.sample(x, 0, x.length);
        assertArrayEquals(copy, x);
    }

    @Test
    void sample_temperatureNearZero_returnsArgmax() {
        float[] x = {0.1f, 2.0f, 1.95f, -1f, 1.9f};
        for (float t : new float[] {1e-3f, 1e-6f, Float.MIN_VALUE}) { // gap 0.05 / 1e-3: odds e^-50
            var s = new Sampler(T1.withTemperature(t));
            for (int i = 0; i < 2000; i++) {
                assertEquals(1, s.sample(x, 0, x.length), "temperature " + t);
            }
        }
    }

    @Test
    void sample_temperature2_matchesScaledSoftmax() {
        float[] x = {0f, 1f, 2f};
        int[] counts = histogram(new Sampler(T1.withTemperature(2f)), x, 100_000);
        double chi = chiSquare(counts, normalise(1, Math.exp(0.5), Math.exp(1)));
        assertTrue(chi < CHI2_DF2, "chi-square " + chi + " counts " + Arrays.toString(counts));
    }

    @Test
    void sample_temperature1_matchesSoftmax() {
        float[] x = logOf(0.5, 0.3, 0.2);
        int[] counts = histogram(new Sampler(T1), x, 100_000);
        double chi = chiSquare(counts, new double[] {0.5, 0.3, 0.2});
        assertTrue(chi < CHI2_DF2, "chi-square " + chi + " counts " + Arrays.toString(counts));
    }

    @Test
    void sample_sameSeed_sameSequence() {
        var params = T1.withSeed(99L).withTopP(0.95f).withFrequencyPenalty(0.3f);
        int[] a = generate(new Sampler(params), 200);
        int[] b = generate(new Sampler(params), 200);
        assertArrayEquals(a, b);
    }

    @Test
    void sample_sameSeedSharedScratch_sameSequence() {
        var params = T1.withSeed(5L).withTopK(20);
        var scratch = new SamplerScratch();
        int[] a = generate(new Sampler(params, scratch), 100);
        int[] b = generate(new Sampler(params, new SamplerScratch()), 100);
        assertArrayEquals(a, b);
    }

    @Test
    void sample_differentSeed_differentSequence() {
        int[] a = generate(new Sampler(T1.withSeed(1L)), 100);
        int[] b = generate(new Sampler(T1.withSeed(2L)), 100);
        assertNotEquals(Arrays.toString(a), Arrays.toString(b));
    }

    @Test
    void seed_none_drawnAndReproducible() {
        var first = new Sampler(SamplingParams.defaults());
        var second = new Sampler(SamplingParams.defaults());
        assertNotEquals(first.seed(), second.seed());
        var replay = new Sampler(SamplingParams.defaults().withSeed(first.seed()));
        assertArrayEquals(generate(first, 50), generate(replay, 50));
    }

    /** A sequence where each step's logits depend on the previous token, as in a real decode. */
    private static int[] generate(Sampler s, int n) {
        int[] out = new int[n];
        int prev = 0;
        for (int i = 0; i < n; i++) {
            float[] x = randomLogits(prev * 1000L + i, 300, 1.5f);
            prev = s.sample(x, 0, x.length);
            s.accept(prev);
            out[i] = prev;
        }
        return out;
    }

    @Test
    void sample_topK1_equalsGreedy() {
        var greedy = new Sampler(SamplingParams.greedy());
        for (long seed = 0; seed < 50; seed++) {
            var s = new Sampler(T1.withSeed(seed).withTopK(1).withTemperature(1.5f));
            float[] x = randomLogits(seed, 2000, 1f);
            assertEquals(greedy.sample(x, 0, x.length), s.sample(x, 0, x.length));
        }
        float[] ties = {1f, 4f, 2f, 4f};
        assertEquals(1, new Sampler(T1.withTopK(1)).sample(ties, 0, 4));
    }

    @Test
    void sample_tinyTopP_equalsGreedy() {
        var greedy = new Sampler(SamplingParams.greedy());
        for (long seed = 0; seed < 50; seed++) {
            var s = new Sampler(T1.withSeed(seed).withTopP(1e-6f));
            float[] x = randomLogits(seed, 2000, 1f);
            assertEquals(greedy.sample(x, 0, x.length), s.sample(x, 0, x.length));
        }
        float[] ties = {1f, 4f, 2f, 4f};
        for (int i = 0; i < 100; i++) {
            assertEquals(1, new Sampler(T1.withSeed((long) i).withTopP(0.01f)).sample(ties, 0, 4));
        }
    }

    @Test
    void sample_topP_drawsFromRenormalisedNucleus() {
        // cumulative 0.4, 0.7, 0.85 ≥ 0.8: the nucleus is the first three tokens
        float[] x = logOf(0.4, 0.3, 0.15, 0.1, 0.05);
        int[] counts = histogram(new Sampler(T1.withTopP(0.8f)), x, 100_000);
        double chi = chiSquare(counts, normalise(0.4, 0.3, 0.15, 0, 0));
        assertTrue(chi < CHI2_DF2, "chi-square " + chi + " counts " + Arrays.toString(counts));
    }

    @Test
    void sample_topPWithUniformLogits_keepsEnoughTokens() {
        // every token is below the llama2.c cutoff (1 − p)/(n − 1) here; the nucleus must still be found
        for (int i = 0; i < 100; i++) { // cutoff 0.9 / 2 · 3 > 1 here
            assertEquals(0, new Sampler(T1.withSeed((long) i).withTopP(0.1f)).sample(new float[3], 0, 3));
        }
        float[] x = new float[4];
        int[] counts = histogram(new Sampler(T1.withTopP(0.3f)), x, 40_000);
        // cumulative 0.25, 0.5 ≥ 0.3: tokens 0 and 1 (ties go to the lower id)
        double chi = chiSquare(counts, new double[] {0.5, 0.5, 0, 0});
        assertTrue(chi < CHI2_DF1, "chi-square " + chi + " counts " + Arrays.toString(counts));
    }

    @Test
    void sample_topK_drawsFromRenormalisedTopK() {
        float[] x = {0f, 3f, 1f, 2f};
        int[] counts = histogram(new Sampler(T1.withTopK(2)), x, 50_000);
        double chi = chiSquare(counts, normalise(0, Math.exp(3), 0, Math.exp(2)));
        assertTrue(chi < CHI2_DF1, "chi-square " + chi + " counts " + Arrays.toString(counts));
    }

    @Test
    void sample_minP_dropsTokensBelowFractionOfMax() {
        // threshold 0.35 · 0.5 = 0.175: 0.15 and 0.05 go
        float[] x = logOf(0.5, 0.3, 0.15, 0.05);
        int[] counts = histogram(new Sampler(T1.withMinP(0.35f)), x, 50_000);
        double chi = chiSquare(counts, normalise(0.5, 0.3, 0, 0));
        assertTrue(chi < CHI2_DF1, "chi-square " + chi + " counts " + Arrays.toString(counts));
    }

    @Test
    void sample_minPRelativeToTemperatureScaledMax() {
        // at T = 0.5 probabilities square: ratios 1, 0.36, 0.09; min_p 0.2 keeps tokens 0 and 1 only
        float[] x = logOf(0.5, 0.3, 0.15);
        int[] counts = histogram(new Sampler(T1.withTemperature(0.5f).withMinP(0.2f)), x, 50_000);
        double chi = chiSquare(counts, normalise(0.25, 0.09, 0));
        assertTrue(chi < CHI2_DF1, "chi-square " + chi + " counts " + Arrays.toString(counts));
    }

    @Test
    void sample_topKThenTopP_appliedInThatOrder() {
        // top-k 3 renormalises to .444, .333, .222; top-p 0.75 then keeps two. Top-p first would keep three.
        float[] x = logOf(0.4, 0.3, 0.2, 0.1);
        int[] counts = histogram(new Sampler(T1.withTopK(3).withTopP(0.75f)), x, 50_000);
        double chi = chiSquare(counts, normalise(0.4, 0.3, 0, 0));
        assertTrue(chi < CHI2_DF1, "chi-square " + chi + " counts " + Arrays.toString(counts));
    }

    @Test
    void sample_deepSeekVocabTopP_drawsOnlyFromReferenceNucleus() {
        int vocab = 129_280;
        float[] x = randomLogits(3, vocab, 4f);
        float p = 0.9f;
        Set<Integer> nucleus = referenceNucleus(x, p);
        var s = new Sampler(T1.withTopP(p));
        var seen = new HashSet<Integer>();
        for (int i = 0; i < 200; i++) {
            int t = s.sample(x, 0, vocab);
            assertTrue(nucleus.contains(t), "token " + t + " outside the nucleus of " + nucleus.size());
            seen.add(t);
        }
        assertTrue(seen.size() > 10, "draws should spread over the nucleus, got " + seen.size());
    }

    @Test
    void sample_deepSeekVocabTopK_drawsOnlyFromTopK() {
        int vocab = 129_280;
        float[] x = randomLogits(4, vocab, 4f);
        Integer[] order = IntStream.range(0, vocab).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.comparingDouble((Integer i) -> -x[i]).thenComparingInt(i -> i));
        Set<Integer> top = new HashSet<>(Arrays.asList(order).subList(0, 50));
        var s = new Sampler(T1.withTopK(50).withTemperature(3f));
        var seen = new HashSet<Integer>();
        for (int i = 0; i < 500; i++) {
            int t = s.sample(x, 0, vocab);
            assertTrue(top.contains(t), "token " + t + " outside the top 50");
            seen.add(t);
        }
        assertTrue(seen.size() > 25, "draws should spread over the top 50, got " + seen.size());
    }

    @Test
    void nucleus_randomProbabilitiesWithTies_matchesSortedPrefix() {
        var r = new Random(17);
        for (int trial = 0; trial < 300; trial++) {
            int m = 1 + r.nextInt(trial < 150 ? 100 : 5000);
            long[] keys = new long[m];
            float[] p = new float[m];
            double total = 0;
            for (int i = 0; i < m; i++) {
                p[i] = r.nextInt(8) == 0 ? 0.5f : r.nextFloat(); // some ties
                keys[i] = Sampler.key(p[i], i);
                total += p[i];
            }
            double need = r.nextDouble() * total;
            Integer[] order = IntStream.range(0, m).boxed().toArray(Integer[]::new);
            Arrays.sort(order, Comparator.comparingDouble((Integer i) -> -p[i]).thenComparingInt(i -> i));
            var expected = new HashSet<Integer>();
            double cumulative = 0;
            for (Integer i : order) {
                expected.add(i);
                cumulative += p[i];
                if (cumulative >= need) {
                    break;
                }
            }
            int kept = Sampler.nucleus(keys, m, need);
            var actual = new HashSet<Integer>();
            for (int j = 0; j < kept; j++) {
                actual.add(Sampler.idOf(keys[j]));
            }
            assertEquals(expected.size(), actual.size(), "trial " + trial + " m=" + m);
            assertEquals(expected, actual, "trial " + trial);
        }
    }

    @Test
    void sample_flatDeepSeekVocabTopP_drawsOnlyFromReferenceNucleus() {
        int vocab = 129_280;
        float[] x = randomLogits(8, vocab, 0.5f); // flat: most of the vocabulary passes the llama2.c cutoff
        float p = 0.9f;
        Set<Integer> nucleus = referenceNucleus(x, p);
        var s = new Sampler(T1.withTopP(p));
        for (int i = 0; i < 50; i++) {
            int t = s.sample(x, 0, vocab);
            assertTrue(nucleus.contains(t), "token " + t + " outside the nucleus of " + nucleus.size());
        }
    }

    /** The nucleus by the definition: sort everything, keep the shortest prefix reaching p. */
    private static Set<Integer> referenceNucleus(float[] x, float p) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : x) {
            max = Math.max(max, v);
        }
        double[] w = new double[x.length];
        double sum = 0;
        for (int i = 0; i < x.length; i++) {
            w[i] = Math.exp(x[i] - max);
            sum += w[i];
        }
        Integer[] order = IntStream.range(0, x.length).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.comparingDouble((Integer i) -> -w[i]).thenComparingInt(i -> i));
        var out = new HashSet<Integer>();
        double cumulative = 0;
        for (Integer i : order) {
            out.add(i);
            cumulative += w[i] / sum;
            if (cumulative >= p + 1e-4) { // a little slack for float rounding at the edge
                break;
            }
        }
        return out;
    }

    @Test
    void sample_allLogitsMasked_throws() {
        float[] x = {Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY};
        assertThrows(IllegalStateException.class, () -> new Sampler(T1).sample(x, 0, 2));
        assertThrows(IllegalStateException.class, () -> new Sampler(SamplingParams.greedy()).sample(x, 0, 2));
    }

    @Test
    void sample_maskedTokens_neverDrawn() {
        float[] x = {Float.NEGATIVE_INFINITY, 0f, Float.NEGATIVE_INFINITY, 0f};
        int[] counts = histogram(new Sampler(T1.withTopP(0.99f)), x, 10_000);
        assertEquals(0, counts[0] + counts[2]);
    }

    @Test
    void sample_rowOutsideArray_throws() {
        assertThrows(IndexOutOfBoundsException.class, () -> new Sampler(T1).sample(new float[4], 2, 3));
    }
}
