package io.expertmesh.core.sample;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class LogProbsTest {

    /** The definition, in double, two passes. */
    private static double[] reference(float[] x) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : x) {
            max = Math.max(max, v);
        }
        double sum = 0;
        for (float v : x) {
            sum += Math.exp(v - max);
        }
        double logZ = max + Math.log(sum);
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i] - logZ;
        }
        return out;
    }

    private static float[] random(long seed, int n, double scale, double shift) {
        var r = new Random(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (r.nextGaussian() * scale + shift);
        }
        return x;
    }

    @Test
    void of_randomLogits_equalDoubleReference() {
        for (long seed = 0; seed < 10; seed++) {
            float[] x = random(seed, 129_280, 3, 0);
            double[] ref = reference(x);
            int chosen = (int) (seed * 9973 % x.length);
            var lp = LogProbs.of(x, 0, x.length, chosen, 20);
            assertEquals((float) ref[chosen], lp.chosen().logprob(), 1e-6f);
            assertEquals(chosen, lp.chosen().tokenId());
            assertEquals(20, lp.top().size());
            for (TokenLogprob t : lp.top()) {
                assertEquals((float) ref[t.tokenId()], t.logprob(), 1e-6f);
            }
        }
    }

    @Test
    void of_smallVocab_expOfAllLogprobsSumsToOne() {
        float[] x = random(3, 20, 5, 0);
        var lp = LogProbs.of(x, 0, x.length, 0, 20);
        double sum = lp.top().stream().mapToDouble(t -> Math.exp(t.logprob())).sum();
        assertEquals(1.0, sum, 1e-6);
        assertEquals(1.0, Math.exp(-LogProbs.logSumExp(x, 0, x.length)) * sumExp(x), 1e-12);
    }

    private static double sumExp(float[] x) {
        double s = 0;
        for (float v : x) {
            s += Math.exp(v);
        }
        return s;
    }

    @Test
    void of_topN_sortedDescendingTiesByLowerId() {
        float[] x = {1f, 5f, 3f, 5f, 3f, 0f, 3f};
        var lp = LogProbs.of(x, 0, x.length, 5, 4);
        assertEquals(List.of(1, 3, 2, 4), lp.top().stream().map(TokenLogprob::tokenId).toList());
        assertEquals(lp.top().get(0).logprob(), lp.top().get(1).logprob());
        assertTrue(lp.top().get(1).logprob() > lp.top().get(2).logprob());
    }

    @Test
    void of_chosenOutsideTop_stillReported() {
        float[] x = {4f, 0f, 3f};
        var lp = LogProbs.of(x, 0, 3, 1, 1);
        assertEquals(1, lp.chosen().tokenId());
        assertEquals((float) reference(x)[1], lp.chosen().logprob(), 1e-7f);
        assertEquals(List.of(0), lp.top().stream().map(TokenLogprob::tokenId).toList());
    }

    @Test
    void of_largeLogits_noOverflow() {
        float[] x = random(5, 1000, 2, 5000);
        var lp = LogProbs.of(x, 0, x.length, 7, 3);
        assertTrue(Float.isFinite(lp.chosen().logprob()));
        assertEquals((float) reference(x)[7], lp.chosen().logprob(), 1e-5f);
    }

    @Test
    void of_maskedTokens_negativeInfinityAndOthersSumToOne() {
        float[] x = {Float.NEGATIVE_INFINITY, 0f, 0f, Float.NEGATIVE_INFINITY};
        var lp = LogProbs.of(x, 0, 4, 0, 4);
        assertEquals(Float.NEGATIVE_INFINITY, lp.chosen().logprob());
        assertEquals((float) Math.log(0.5), lp.top().get(0).logprob(), 1e-7f);
        assertEquals(List.of(1, 2, 0, 3), lp.top().stream().map(TokenLogprob::tokenId).toList());
    }

    @Test
    void of_withOffsetAndNoTop_readsOnlyThatRow() {
        float[] batch = {100f, 100f, 0f, 0f};
        var lp = LogProbs.of(batch, 2, 2, 1, 0);
        assertEquals((float) Math.log(0.5), lp.chosen().logprob(), 1e-7f);
        assertEquals(List.of(), lp.top());
    }

    @Test
    void of_topNAboveLimit_throws() {
        assertThrows(IllegalArgumentException.class, () -> LogProbs.of(new float[30], 0, 30, 0, 21));
        assertThrows(IndexOutOfBoundsException.class, () -> LogProbs.of(new float[3], 0, 3, 3, 1));
    }
}
