package io.expertmesh.core.model;

import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.tensor.Quantization;

/**
 * Runs the held experts of one MoE layer on (token, expert, weight) pairs: an expert worker's work. core's
 * {@link LocalExperts} runs them on the CPU kernels; module cuda's {@code DeviceExperts} runs them in device
 * memory.
 */
public interface ExpertRunner {

    /**
     * Token {@code t}'s pairs are {@code ids/weights[offsets[t] .. offsets[t+1])} ({@code offsets[0] == 0}); for
     * every token, {@code out[t] += Σ weight · expert_id(xn[t])} in ascending expert id. An expert not held
     * here must not be named.
     */
    void run(float[] xn, int tokens, int[] offsets, int[] ids, float[] weights, float[] out, StepContext ctx);

    /** Makes the runner of one layer's experts; called again whenever the layer's held experts change. */
    @FunctionalInterface
    interface Factory {
        /** The CPU's: {@link LocalExperts}. */
        Factory CPU = (layer, experts, hidden) -> new LocalExperts(experts, hidden);

        /**
         * The CPU's with the experts' weights stored as {@code q} says ({@code worker --quantize}): {@link #CPU}
         * for {@link Quantization#NONE}, else {@link QuantizedExperts}.
         */
        static Factory cpu(Quantization q) {
            return q == Quantization.NONE ? CPU : new QuantizedExperts(q);
        }

        /**
         * As {@link #cpu(Quantization)}, keeping each expert's quantized weights under {@code cacheDir} for the
         * model with {@code identity} (see {@link QuantizedWeightCache}), mapped instead of quantized next time.
         */
        static Factory cpu(Quantization q, java.nio.file.Path cacheDir, String identity) {
            return q == Quantization.NONE ? CPU : new QuantizedExperts(q, cacheDir, identity);
        }

        /** @param experts indexed by expert id, {@code null} where not held */
        ExpertRunner create(int layer, Mlp[] experts, int hidden);

        /**
         * What computes the experts this factory's runners hold, given the kernels of their step context: on the
         * CPU, {@code "cpu, "} and {@link Kernels#matmulKind()} (reported to routers, which warn when it is not
         * theirs: see {@code GetWorkerStatusResponse.expert_kernels}).
         */
        default String computeKind(Kernels kernels) {
            return "cpu, " + kernels.matmulKind();
        }
    }
}
