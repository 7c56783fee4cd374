package io.expertmesh.core.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.expertmesh.core.config.ModelConfig.Scoring;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Matrix;
import java.lang.foreign.Arena;
import org.junit.jupiter.api.Test;

class GateTest {

    private static Matrix dummy(int experts) {
        return new Matrix("gate", DType.F32, experts, 1, Arena.ofAuto().allocate(experts * 4L));
    }

    private static float logit(double p) {
        return (float) Math.log(p / (1 - p));
    }

    @Test
    void routeOne_sigmoidWithBias_biasChoosesButWeightsAreUnbiasedScores() {
        // Expert 3 has the lowest score but a bias that makes it the top choice.
        float[] logits = {logit(0.9), logit(0.8), logit(0.7), logit(0.1)};
        float[] bias = {0f, 0f, 0f, 5f};
        Gate gate = new Gate(dummy(4), bias, Scoring.SIGMOID, 2, 1, 1, true, 2.5);
        int[] ids = new int[2];
        float[] w = new float[2];
        gate.routeOne(logits, 0, ids, w, 0);
        assertArrayEquals(new int[]{3, 0}, ids);
        // weights from the unbiased scores 0.1 and 0.9, normalised, times 2.5
        assertEquals(0.1 / 1.0 * 2.5, w[0], 1e-6);
        assertEquals(0.9 / 1.0 * 2.5, w[1], 1e-6);
    }

    @Test
    void routeOne_groupLimited_onlyBestGroupsEligible() {
        // 2 groups of 3; group 1 has the single best expert but group 0 has the better top-2 sum.
        float[] logits = {logit(0.8), logit(0.8), logit(0.1), logit(0.95), logit(0.1), logit(0.1)};
        Gate gate = new Gate(dummy(6), new float[6], Scoring.SIGMOID, 2, 2, 1, true, 1.0);
        int[] ids = new int[2];
        float[] w = new float[2];
        gate.routeOne(logits, 0, ids, w, 0);
        assertArrayEquals(new int[]{0, 1}, ids);
        assertEquals(0.5, w[0], 1e-6);
    }

    @Test
    void routeOne_softmaxWithoutNormalisation_weightsAreFullSoftmaxProbabilities() {
        float[] logits = {2f, 1f, 0f, -1f};
        Gate gate = new Gate(dummy(4), null, Scoring.SOFTMAX, 2, 1, 1, false, 1.0);
        int[] ids = new int[2];
        float[] w = new float[2];
        gate.routeOne(logits, 0, ids, w, 0);
        double z = Math.exp(2) + Math.exp(1) + Math.exp(0) + Math.exp(-1);
        assertArrayEquals(new int[]{0, 1}, ids);
        assertEquals(Math.exp(2) / z, w[0], 1e-6);
        assertEquals(Math.exp(1) / z, w[1], 1e-6);
    }

    @Test
    void routeOne_softmaxNormalised_weightsSumToOne() {
        float[] logits = {2f, 1f, 0f, -1f};
        Gate gate = new Gate(dummy(4), null, Scoring.SOFTMAX, 2, 1, 1, true, 1.0);
        int[] ids = new int[2];
        float[] w = new float[2];
        gate.routeOne(logits, 0, ids, w, 0);
        assertEquals(1.0, w[0] + w[1], 1e-6);
        assertEquals(Math.exp(1) / (1 + Math.exp(1)), w[0], 1e-6);
    }
}
