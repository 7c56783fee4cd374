package io.expertmesh.cuda.forward;

import io.expertmesh.cuda.forward.DeviceScratch.Slot;
import io.expertmesh.cuda.forward.DeviceWeights.MlpWeights;
import io.expertmesh.cuda.forward.DeviceWeights.StackedExperts;

/**
 * SwiGLU MLPs on the device, alone (dense layers, shared experts) or as a layer's routed experts stacked by id and
 * run on the top-k choices grouped on the device: the router's local experts ({@code DeviceForward}) and an
 * expert worker's ({@link DeviceExperts}) share that path.
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
     * Routed experts on the (token, expert, weight) choices of {@code tokens} tokens, {@code k} per token
     * ({@code ids}/{@code weights} {@code [tokens, k]}), which stay on the device: grouped by expert there
     * (route_by_expert), one grouped launch per product for all experts, and {@code out[t] = Σ weight ·
     * expert(xn[t])} over token t's choices summed from zero in ascending id (the CPU's order, and the bits of
     * zeroing out and adding the experts one after another). A choice whose id is outside
     * {@code [0, experts.count())} is left out (padding). Seven launches whatever the number of experts; no wait.
     * The router's local experts and an expert worker's experts both run here.
     *
     * @param named how many choices are not padding ({@code tokens·k} when there is none): the grouped rows in use,
     *              as routeByExpert puts every named choice before the unused slots; only these are gathered and
     *              run through the products
     */
    static void routed(DeviceOps ops, DeviceScratch s, StackedExperts experts, DeviceTensor xn, DeviceTensor ids,
                       DeviceTensor weights, DeviceTensor out, int tokens, int k, int named, int hidden) {
        int inter = experts.intermediate();
        int pairs = tokens * k;
        if (named <= 0 || named > pairs) {
            throw new IllegalArgumentException("named choices " + named + " outside [1, " + pairs + "]");
        }
        DeviceTensor offsets = s.i32(Slot.ROUTE_OFFSETS, experts.count() + 1);
        DeviceTensor slotOfPair = s.i32(Slot.ROUTE_SLOT, pairs);
        DeviceTensor tokenOfSlot = s.i32(Slot.ROUTE_IDX, pairs);
        ops.routeByExpert(ids, tokens, k, experts.count(), offsets, slotOfPair, tokenOfSlot);
        DeviceTensor in = s.f32(Slot.EXPERT_IN, (long) named * hidden);
        ops.gatherRows(xn, tokenOfSlot, 0, in, named, hidden);
        DeviceTensor h1 = s.f32(Slot.EXPERT_H1, (long) named * inter);
        DeviceTensor h2 = s.f32(Slot.EXPERT_H2, (long) named * inter);
        ops.groupedLinear(experts.gate(), experts.count(), in, h1, offsets, inter, hidden, named);
        ops.groupedLinear(experts.up(), experts.count(), in, h2, offsets, inter, hidden, named);
        ops.swiglu(h1, h2, h1, named * inter);
        DeviceTensor y = s.f32(Slot.EXPERT_OUT, (long) pairs * hidden);  // combineExperts reads it as [pairs, n]
        ops.groupedLinear(experts.down(), experts.count(), h1, y, offsets, hidden, inter, named);
        ops.combineExperts(y, ids, weights, slotOfPair, tokens, k, out, hidden);
    }
}
