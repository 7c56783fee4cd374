package io.expertmesh.cuda.check;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.config.ModelConfig.Scoring;
import io.expertmesh.core.model.Gate;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Matrix;
import java.lang.foreign.MemorySegment;
import java.lang.reflect.Method;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/** The CPU references the GPU checks trust, checked here (no GPU needed) against core's own definitions. */
class ReferencesTest {

    @ParameterizedTest
    @CsvSource({"64,6,true,true,8,3,true,2.5", "8,2,false,false,1,1,true,1", "60,4,false,false,1,1,false,1",
            "256,8,true,true,8,4,true,2.5", "32,4,false,false,4,2,true,1"})
    void gate_sameIdsAndWeightsAsCoreGate(int experts, int k, boolean sigmoid, boolean withBias, int nGroup,
                                          int topkGroup, boolean normalize, float scale) throws Exception {
        Random r = new Random(experts * 31L + k);
        float[] bias = null;
        if (withBias) {
            bias = new float[experts];
            for (int i = 0; i < experts; i++) {
                bias[i] = (float) (r.nextGaussian() * 0.1);
            }
        }
        Matrix w = new Matrix("gate", DType.F32, experts, 4, MemorySegment.ofArray(new float[experts * 4]));
        Gate gate = new Gate(w, bias, sigmoid ? Scoring.SIGMOID : Scoring.SOFTMAX, k, nGroup, topkGroup, normalize,
                scale);
        Method routeOne = Gate.class.getDeclaredMethod("routeOne", float[].class, int.class, int[].class,
                float[].class, int.class);
        routeOne.setAccessible(true);
        for (int t = 0; t < 20; t++) {
            float[] logits = new float[experts];
            for (int i = 0; i < experts; i++) {
                logits[i] = (float) (r.nextGaussian() * 2);
            }
            int[] wantIds = new int[k];
            float[] wantW = new float[k];
            routeOne.invoke(gate, logits, 0, wantIds, wantW, 0);
            int[] gotIds = new int[k];
            float[] gotW = new float[k];
            References.gate(logits, 0, bias, experts, k, sigmoid, nGroup, topkGroup, normalize, scale, gotIds, gotW,
                    0);
            assertArrayEquals(wantIds, gotIds);
            assertArrayEquals(wantW, gotW);
        }
    }

    @Test
    void mlaDecode_oneTokenContext_returnsThatTokensLatent() {
        // softmax over one position is 1: the output is the latent of the only cached row, whatever q is.
        int row = 6;
        int latent = 4;
        double[] cache = {9, 9, 9, 9, 9, 9, 1, 2, 3, 4, 5, 6};  // page 0 unused, page 1 holds the token
        double[] out = References.mlaDecode(new double[]{0.3, -1, 2, 0.5, 1, 1}, cache, new int[]{1}, new int[]{1},
                1, 1, latent, row, 1, 1, 0.7);
        assertArrayEquals(new double[]{1, 2, 3, 4}, out, 1e-12);
    }

    @Test
    void relativeL2_nanOrUnwrittenOutput_neverPasses() {
        assertTrue(Double.isNaN(Errors.relativeL2(new float[]{1, Float.NaN}, new double[]{1, 2})));
        assertFalse(new CheckResult("x", Errors.relativeL2(new float[]{Float.NaN}, new double[]{1}), 1, "").passed());
        assertEquals(0.0, Errors.relativeL2(new float[]{1, 2}, new double[]{1, 2}));
        assertTrue(new CheckResult("x", 1e-6, 1e-5, "").passed());
    }
}
