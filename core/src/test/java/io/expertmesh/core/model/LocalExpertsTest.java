package io.expertmesh.core.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Matrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Catches the traps seen in public MoE code: gate weights not applied, batch rows written to row 0. */
class LocalExpertsTest {
    static final int HIDDEN = 19;
    static final int INTER = 11;

    static Matrix random(String name, int rows, int cols, Random rnd) {
        MemorySegment s = Arena.ofAuto().allocate((long) rows * cols * 4);
        for (long i = 0; i < (long) rows * cols; i++) {
            s.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, (float) rnd.nextGaussian() * 0.3f);
        }
        return new Matrix(name, DType.F32, rows, cols, s);
    }

    static LocalExperts experts(int n, Random rnd) {
        Mlp[] e = new Mlp[n];
        for (int i = 0; i < n; i++) {
            e[i] = new Mlp(random("g" + i, INTER, HIDDEN, rnd), random("u" + i, INTER, HIDDEN, rnd),
                    random("d" + i, HIDDEN, INTER, rnd));
        }
        return new LocalExperts(e, HIDDEN);
    }

    static StepContext ctx() {
        return new StepContext(new VectorKernels(ComputePool.create(1)), new Scratch());
    }

    @Test
    void run_gateWeights_scaleExpertOutputs() {
        Random rnd = new Random(1);
        LocalExperts experts = experts(4, rnd);
        float[] x = new float[HIDDEN];
        for (int i = 0; i < HIDDEN; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        float[] one = new float[HIDDEN];
        experts.run(x, 1, new int[]{2}, new float[]{1f}, 1, one, ctx());
        float[] scaled = new float[HIDDEN];
        experts.run(x, 1, new int[]{2}, new float[]{0.25f}, 1, scaled, ctx());
        for (int i = 0; i < HIDDEN; i++) {
            assertEquals(one[i] * 0.25f, scaled[i], 1e-6f, "output must be scaled by the gate weight");
        }
        float[] two = new float[HIDDEN];
        experts.run(x, 1, new int[]{2, 0}, new float[]{0.25f, 0.5f}, 2, two, ctx());
        float[] e0 = new float[HIDDEN];
        experts.run(x, 1, new int[]{0}, new float[]{0.5f}, 1, e0, ctx());
        for (int i = 0; i < HIDDEN; i++) {
            assertEquals(scaled[i] + e0[i], two[i], 1e-5f, "top-k outputs must be summed");
        }
    }

    @Test
    void run_batchOfTokens_eachRowEqualsItsSingleTokenRunBitForBit() {
        Random rnd = new Random(2);
        LocalExperts experts = experts(5, rnd);
        int tokens = 7;
        int topK = 2;
        float[] x = new float[tokens * HIDDEN];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        int[] ids = {0, 3, 3, 1, 4, 0, 2, 3, 1, 0, 4, 2, 3, 4};
        float[] w = new float[tokens * topK];
        for (int i = 0; i < w.length; i++) {
            w[i] = rnd.nextFloat();
        }
        float[] batched = new float[tokens * HIDDEN];
        experts.run(x, tokens, ids, w, topK, batched, ctx());
        for (int t = 0; t < tokens; t++) {
            float[] xi = java.util.Arrays.copyOfRange(x, t * HIDDEN, (t + 1) * HIDDEN);
            float[] single = new float[HIDDEN];
            experts.run(xi, 1, java.util.Arrays.copyOfRange(ids, t * topK, (t + 1) * topK),
                    java.util.Arrays.copyOfRange(w, t * topK, (t + 1) * topK), topK, single, ctx());
            assertArrayEquals(single, java.util.Arrays.copyOfRange(batched, t * HIDDEN, (t + 1) * HIDDEN),
                    "row " + t + " of the batch");
        }
    }

    @Test
    void runWithOffsets_varyingExpertsPerToken_sameBitsAsFixedTopKOverTheSamePairs() {
        Random rnd = new Random(3);
        Mlp[] all = new Mlp[6];
        LocalExperts full = experts(6, rnd);
        for (int e = 0; e < 6; e++) {
            all[e] = e % 2 == 0 ? full.expert(e) : null;
        }
        LocalExperts evenOnly = new LocalExperts(all, HIDDEN);
        int tokens = 3;
        float[] x = new float[tokens * HIDDEN];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        // token 0: experts 4, 0; token 1: expert 2; token 2: experts 0, 2, 4
        int[] offsets = {0, 2, 3, 6};
        int[] ids = {4, 0, 2, 0, 2, 4};
        float[] w = {0.3f, 0.7f, 1.1f, 0.2f, 0.5f, 0.9f};
        float[] got = new float[tokens * HIDDEN];
        evenOnly.run(x, tokens, offsets, ids, w, got, ctx());
        for (int t = 0; t < tokens; t++) {
            int k = offsets[t + 1] - offsets[t];
            float[] want = new float[HIDDEN];
            full.run(java.util.Arrays.copyOfRange(x, t * HIDDEN, (t + 1) * HIDDEN), 1,
                    java.util.Arrays.copyOfRange(ids, offsets[t], offsets[t + 1]),
                    java.util.Arrays.copyOfRange(w, offsets[t], offsets[t + 1]), k, want, ctx());
            assertArrayEquals(want, java.util.Arrays.copyOfRange(got, t * HIDDEN, (t + 1) * HIDDEN),
                    "token " + t);
        }
    }

    @Test
    void startWithShared_sameBitsAsRoutedRunThenSharedMlp() {
        // Sizes past the kernels' parallel threshold, so both products groups are spread over the 3 threads; the
        // shared expert's intermediate differs from the routed one (as Qwen2-MoE's).
        Random rnd = new Random(4);
        int hidden = 130;
        int inter = 75;
        Mlp[] e = new Mlp[6];
        for (int i = 0; i < e.length; i++) {
            e[i] = new Mlp(random("g" + i, inter, hidden, rnd), random("u" + i, inter, hidden, rnd),
                    random("d" + i, hidden, inter, rnd));
        }
        Mlp shared = new Mlp(random("sg", 93, hidden, rnd), random("su", 93, hidden, rnd),
                random("sd", hidden, 93, rnd));
        int tokens = 9;
        int topK = 3;
        float[] x = new float[tokens * hidden];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        int[] ids = new int[tokens * topK];
        float[] w = new float[tokens * topK];
        for (int t = 0; t < tokens; t++) {
            for (int j = 0; j < topK; j++) {
                ids[t * topK + j] = (t + 2 * j) % e.length;
                w[t * topK + j] = rnd.nextFloat();
            }
        }
        try (ComputePool pool = ComputePool.create(3)) {
            StepContext ctx = new StepContext(new VectorKernels(pool), new Scratch());
            float[] routed = new float[tokens * hidden];
            new LocalExperts(e, hidden).run(x, tokens, ids, w, topK, routed, ctx);
            float[] sharedAlone = new float[tokens * hidden];
            shared.forward(x, sharedAlone, tokens, ctx);

            float[] out = new float[tokens * hidden];
            float[] sharedOut = new float[tokens * hidden];
            new LocalExperts(e, hidden).startWithShared(x, tokens, ids, w, topK, out, shared, sharedOut, ctx).finish();
            assertArrayEquals(routed, out, "routed outputs");
            assertArrayEquals(sharedAlone, sharedOut, "shared expert outputs");
        }
    }
}
