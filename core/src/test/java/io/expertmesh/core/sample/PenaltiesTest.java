package io.expertmesh.core.sample;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class PenaltiesTest {

    private static TokenHistory history(int[] prompt, int... output) {
        var h = new TokenHistory();
        h.observePrompt(prompt);
        for (int t : output) {
            h.accept(t);
        }
        return h;
    }

    @Test
    void apply_repetition_dividesPositiveMultipliesNegativeOverPromptAndOutputOnce() {
        float[] logits = {2f, -2f, 1f, 0.5f, 3f};
        // token 0: prompt only; token 1: prompt and output (penalised once); token 2: output twice; 3, 4 unseen
        new Penalties(2f, 0f, 0f).apply(logits, 0, 5, history(new int[] {0, 1, 0}, 1, 2, 2));
        assertArrayEquals(new float[] {1f, -4f, 0.5f, 0.5f, 3f}, logits);
    }

    @Test
    void apply_frequency_subtractsPerOccurrenceInOutputOnly() {
        float[] logits = {1f, 1f, 1f, 1f};
        new Penalties(1f, 0f, 0.5f).apply(logits, 0, 4, history(new int[] {0, 0, 1}, 2, 2, 3));
        assertArrayEquals(new float[] {1f, 1f, 0f, 0.5f}, logits);
    }

    @Test
    void apply_presence_subtractsOncePerDistinctOutputToken() {
        float[] logits = {1f, 1f, 1f, 1f};
        new Penalties(1f, 0.25f, 0f).apply(logits, 0, 4, history(new int[] {0}, 2, 2, 3));
        assertArrayEquals(new float[] {1f, 1f, 0.75f, 0.75f}, logits);
    }

    @Test
    void apply_negativePresence_raisesLogit() {
        float[] logits = {1f, 1f};
        new Penalties(1f, -1f, 0f).apply(logits, 0, 2, history(new int[0], 1));
        assertArrayEquals(new float[] {1f, 2f}, logits);
    }

    @Test
    void apply_allThree_repetitionBeforeFrequencyAndPresence() {
        float[] logits = {2f, 9f};
        // vLLM order: 2 / 2 − 1·1 − 0.5 = −0.5 (frequency first would give (2 − 1.5) / 2 = 0.25)
        new Penalties(2f, 0.5f, 1f).apply(logits, 0, 2, history(new int[0], 0));
        assertArrayEquals(new float[] {-0.5f, 9f}, logits);
    }

    @Test
    void apply_withOffset_touchesOnlyThatRow() {
        float[] logits = {7f, 7f, 4f, 4f};
        new Penalties(1f, 1f, 0f).apply(logits, 2, 2, history(new int[0], 1));
        assertArrayEquals(new float[] {7f, 7f, 4f, 3f}, logits);
    }

    @Test
    void apply_tokenIdsOutsideVocab_ignored() {
        float[] logits = {1f, 1f};
        new Penalties(2f, 1f, 1f).apply(logits, 0, 2, history(new int[] {5, -1}, 9));
        assertArrayEquals(new float[] {1f, 1f}, logits);
    }

    @Test
    void active_defaults_false() {
        assertFalse(Penalties.of(SamplingParams.defaults()).active());
        assertTrue(Penalties.of(SamplingParams.defaults().withFrequencyPenalty(0.1f)).active());
    }

    @Test
    void tokenCounts_manyDistinctTokens_countsSurviveRehash() {
        var h = new TokenHistory();
        for (int round = 0; round < 3; round++) {
            for (int t = 0; t < 5000; t += 7) {
                h.accept(t * 31);
            }
        }
        for (int t = 0; t < 5000; t++) {
            int expected = t % 7 == 0 ? 3 : 0;
            if (h.outputCount(t * 31) != expected) {
                throw new AssertionError("token " + t * 31 + ": " + h.outputCount(t * 31));
            }
        }
    }
}
