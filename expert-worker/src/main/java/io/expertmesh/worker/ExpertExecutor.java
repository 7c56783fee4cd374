package io.expertmesh.worker;

import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.model.ExpertRunner;
import io.expertmesh.core.model.StepContext;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Runs a worker's experts: pure compute over plain arrays, no gRPC. One call groups its tokens by expert and
 * runs each expert once on its batch with core's {@link io.expertmesh.core.model.LocalExperts} (the same code
 * and kernels as a single-process forward pass, so an F32 result is bit-identical to a local run of the same
 * experts); each token gets the weighted sum of its experts in ascending expert id.
 *
 * <p>Thread-safe: calls are serialised by {@link #lock()} (the kernels already spread one call over every core,
 * and the step's scratch buffers are shared), and loading or unloading waits for a running call to finish.
 */
public final class ExpertExecutor implements AutoCloseable {
    private final ExpertShard shard;
    private final StepContext ctx;
    /** Held by every method while it runs. */
    private final ReentrantLock lock = new ReentrantLock();

    public ExpertExecutor(ExpertShard shard, Kernels kernels) {
        this.shard = shard;
        this.ctx = StepContext.standalone(kernels);
    }

    /**
     * The lock every method holds while it runs (reentrant): a caller may take it first to tell the time spent
     * waiting for another call (or a load) from the compute.
     */
    public ReentrantLock lock() {
        return lock;
    }

    /** The shard's model facts (immutable: safe to read without the lock). */
    public ExpertShard shard() {
        return shard;
    }

    /** What computes the experts ({@link ExpertRunner.Factory#computeKind}). */
    public String computeKind() {
        return shard.runnerFactory().computeKind(ctx.kernels());
    }

    /**
     * For every token {@code t < tokens}: {@code out[t] = Σ weights[i] · expert_{ids[i]}(xn[t])} over
     * {@code i ∈ [offsets[t], offsets[t+1])}, summed in ascending expert id from zero.
     *
     * @throws ExpertNotHeldException if an expert is not held (now: it may have been unloaded since validation)
     */
    public float[] run(int layer, float[] xn, int tokens, int[] offsets, int[] ids, float[] weights) {
        lock.lock();
        try {
            checkHeld(layer, ids, offsets[tokens]);
            float[] out = new float[tokens * shard.config().hiddenSize()];
            shard.runner(layer).run(xn, tokens, offsets, ids, weights, out, ctx.atLayer(layer));
            shard.countTokens(layer, ids, offsets[tokens]);
            return out;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Every entry's expert output, unweighted: row {@code i < offsets[tokens]} is {@code expert_{ids[i]}(xn[t])}
     * for the token {@code t} of entry {@code i}, exactly (each entry runs as its own row with weight 1, and
     * {@code fma(1, r, 0) == r}); experts still run once each on their whole batch.
     */
    public float[] runPerAssignment(int layer, float[] xn, int tokens, int[] offsets, int[] ids) {
        lock.lock();
        try {
            int n = offsets[tokens];
            checkHeld(layer, ids, n);
            int hidden = shard.config().hiddenSize();
            float[] rows = new float[n * hidden];
            int[] each = new int[n + 1];
            for (int t = 0; t < tokens; t++) {
                for (int i = offsets[t]; i < offsets[t + 1]; i++) {
                    System.arraycopy(xn, t * hidden, rows, i * hidden, hidden);
                    each[i + 1] = i + 1;
                }
            }
            float[] ones = new float[n];
            Arrays.fill(ones, 1f);
            float[] out = new float[n * hidden];
            shard.runner(layer).run(rows, n, each, ids, ones, out, ctx.atLayer(layer));
            shard.countTokens(layer, ids, n);
            return out;
        } finally {
            lock.unlock();
        }
    }

    private void checkHeld(int layer, int[] ids, int n) {
        List<Integer> missing = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            if (!shard.holds(layer, ids[i]) && !missing.contains(ids[i])) {
                missing.add(ids[i]);
            }
        }
        if (!missing.isEmpty()) {
            throw new ExpertNotHeldException(layer, missing.stream().sorted().mapToInt(Integer::intValue).toArray());
        }
    }

    /** Loads {@code ids} of MoE layer {@code layer}; returns those newly loaded, ascending. */
    public int[] load(int layer, int[] ids) {
        lock.lock();
        try {
            return Arrays.stream(ids).sorted().distinct().filter(e -> shard.load(layer, e)).toArray();
        } finally {
            lock.unlock();
        }
    }

    /** Unloads {@code ids} of {@code layer}; returns those that were held, ascending. */
    public int[] unload(int layer, int[] ids) {
        lock.lock();
        try {
            return Arrays.stream(ids).sorted().distinct().filter(e -> shard.unload(layer, e)).toArray();
        } finally {
            lock.unlock();
        }
    }

    /** Held experts of {@code layer} with their token counts: {@code [ids, counts]}. */
    public LayerUsage usage(int layer) {
        lock.lock();
        try {
            int[] held = shard.held(layer);
            long[] served = new long[held.length];
            for (int i = 0; i < held.length; i++) {
                served[i] = shard.tokensServed(layer, held[i]);
            }
            return new LayerUsage(layer, held, served);
        } finally {
            lock.unlock();
        }
    }

    /** The experts of one layer held now and the tokens each has served since it was loaded. */
    public record LayerUsage(int layer, int[] expertIds, long[] tokensServed) {
    }

    /** An expert named in a call is not held by this worker. */
    public static final class ExpertNotHeldException extends RuntimeException {
        private final int layer;
        private final int[] experts;

        public ExpertNotHeldException(int layer, int[] experts) {
            super("layer " + layer + ": expert" + (experts.length == 1 ? " " : "s ")
                    + Arrays.toString(experts).replaceAll("[\\[\\]]", "") + " not held by this worker");
            this.layer = layer;
            this.experts = experts.clone();
        }

        public int layer() {
            return layer;
        }

        public int[] experts() {
            return experts.clone();
        }
    }

    @Override
    public void close() {
        lock.lock();
        try {
            shard.close();
        } finally {
            lock.unlock();
        }
    }
}
