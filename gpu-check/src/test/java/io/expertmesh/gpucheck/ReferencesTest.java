package io.expertmesh.gpucheck;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The CPU references the GPU checks trust, checked here (no GPU needed) against core's own definitions. */
class ReferencesTest {

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
