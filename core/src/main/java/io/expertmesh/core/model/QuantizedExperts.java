package io.expertmesh.core.model;

import io.expertmesh.core.tensor.Matrix;
import io.expertmesh.core.tensor.Quantization;
import java.lang.foreign.Arena;
import java.util.HashMap;
import java.util.Map;

/**
 * An expert worker's CPU runners with quantized weights: the worker maps its experts from the checkpoint as
 * stored (BF16 slices of the file, FP8 dequantized) and this factory makes the quantized copies the runner
 * reads. A layer's runner is rebuilt whenever its held experts change, so copies are kept per layer by source
 * matrix and reused; those of experts no longer held are dropped with the old runner (their memory is freed by
 * the garbage collector: {@link Arena#ofAuto()}).
 */
final class QuantizedExperts implements ExpertRunner.Factory {
    private final Quantization quantization;
    /** Per layer: source matrix → its quantized copy, for the experts the layer's current runner holds. */
    private final Map<Integer, Map<Matrix, Matrix>> copies = new HashMap<>();

    QuantizedExperts(Quantization quantization) {
        this.quantization = quantization;
    }

    @Override
    public synchronized ExpertRunner create(int layer, Mlp[] experts, int hidden) {
        Map<Matrix, Matrix> old = copies.getOrDefault(layer, Map.of());
        Map<Matrix, Matrix> now = new HashMap<>();
        Mlp[] quantized = new Mlp[experts.length];
        for (int e = 0; e < experts.length; e++) {
            Mlp m = experts[e];
            if (m != null) {
                quantized[e] = new Mlp(copy(m.gate(), old, now), copy(m.up(), old, now), copy(m.down(), old, now));
            }
        }
        copies.put(layer, now);
        return new LocalExperts(quantized, hidden);
    }

    private Matrix copy(Matrix source, Map<Matrix, Matrix> old, Map<Matrix, Matrix> now) {
        Matrix q = old.get(source);
        if (q == null) {
            q = quantization.apply(source, Arena.ofAuto());
        }
        now.put(source, q);
        return q;
    }
}
