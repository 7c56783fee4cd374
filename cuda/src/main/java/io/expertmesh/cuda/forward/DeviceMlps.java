package io.expertmesh.cuda.forward;

import io.expertmesh.cuda.forward.DeviceScratch.Slot;
import io.expertmesh.cuda.forward.DeviceWeights.MlpWeights;

/**
 * SwiGLU MLPs on the device, alone (dense layers, shared experts) or as a batch of routed experts run on
 * (token, expert, weight) pairs the host grouped: an expert worker's {@link DeviceExperts} (its pairs arrive from
 * the router on the host anyway; it launches 6 kernels per active expert). The router's device pass groups its
 * local experts on the device instead ({@code DeviceForward}: route_by_expert and grouped products).
 */
final class DeviceMlps {
    private DeviceMlps() {
    }

    /** {@code out = down(silu(gate(in)) · up(in))} for {@code rows} rows of {@code hidden}. */
    static void forward(DeviceOps ops, DeviceScratch s, MlpWeights m, DeviceTensor in, DeviceTensor out, int rows,
                        int hidden) {
        int inter = m.intermediate();
        DeviceTensor h1 = s.f32(Slot.EXPERT_H1, (long) rows * inter);
        DeviceTensor h2 = s.f32(Slot.EXPERT_H2, (long) rows * inter);
        ops.linear(m.gate(), in, h1, inter, hidden, rows);
        ops.linear(m.up(), in, h2, inter, hidden, rows);
        ops.swiglu(h1, h2, h1, rows * inter);
        ops.linear(m.down(), h1, out, hidden, inter, rows);
    }

    /**
     * For pairs {@code i < n}: {@code out[tokenOf[i]] += weights[i] · expert_{ids[i]}(x[tokenOf[i]])}. Pairs are
     * grouped by expert and experts run in ascending id, each adding into its tokens' rows, so every token sums
     * its experts in ascending id (the CPU's order) whatever else is in the batch. {@code tokenOf} must not decrease
     * (pairs come token by token), and a token must not name one expert twice (the rows of one expert's scatter
     * must be distinct).
     *
     * @param experts indexed by expert id; null where not held, which then must not be named
     */
    static void grouped(DeviceOps ops, DeviceScratch s, MlpWeights[] experts, DeviceTensor x, DeviceTensor out,
                        int n, int[] tokenOf, int[] ids, float[] weights, int hidden) {
        int[] offsets = new int[experts.length + 1];
        for (int i = 0; i < n; i++) {
            if (i > 0 && tokenOf[i] < tokenOf[i - 1]) {
                throw new IllegalArgumentException("pairs must come token by token (pair " + i + ")");
            }
            int e = ids[i];
            if (e < 0 || e >= experts.length || experts[e] == null) {
                throw new IllegalArgumentException("expert " + e + " is not held here");
            }
            offsets[e + 1]++;
        }
        int most = 0;
        for (int e = 0; e < experts.length; e++) {
            most = Math.max(most, offsets[e + 1]);
            offsets[e + 1] += offsets[e];
        }
        int[] fill = offsets.clone();
        int[] rowOf = new int[n];
        float[] weightOf = new float[n];
        for (int i = 0; i < n; i++) {
            int slot = fill[ids[i]]++;
            rowOf[slot] = tokenOf[i];
            weightOf[slot] = weights[i];
        }
        for (int e = 0; e < experts.length; e++) {
            for (int j = offsets[e] + 1; j < offsets[e + 1]; j++) {
                if (rowOf[j] == rowOf[j - 1]) {
                    throw new IllegalArgumentException("token " + rowOf[j] + " names expert " + e + " twice");
                }
            }
        }
        if (n == 0) {
            return;
        }
        DeviceTensor idx = s.i32(Slot.ROUTE_IDX, n);
        DeviceTensor rw = s.f32(Slot.ROUTE_W, n);
        ops.copyIn(rowOf, idx, n);
        ops.copyIn(weightOf, 0, rw, 0, n);
        DeviceTensor in = s.f32(Slot.EXPERT_IN, (long) most * hidden);
        DeviceTensor y = s.f32(Slot.EXPERT_OUT, (long) most * hidden);
        for (int e = 0; e < experts.length; e++) {
            int count = offsets[e + 1] - offsets[e];
            if (count == 0) {
                continue;
            }
            ops.gatherRows(x, idx, offsets[e], in, count, hidden);
            forward(ops, s, experts[e], in, y, count, hidden);
            ops.scatterAddRows(y, idx, rw, offsets[e], out, count, hidden);
        }
    }
}
