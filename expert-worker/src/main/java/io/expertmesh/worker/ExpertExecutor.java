package io.expertmesh.worker;

import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.model.ExpertRunner;
import io.expertmesh.core.model.Scratch;
import io.expertmesh.core.model.StepContext;
import io.expertmesh.core.tensor.HiddenCodec;
import java.nio.ByteBuffer;
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
    private final CallScratch scratch = new CallScratch();

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
     * {@code i ∈ [offsets[t], offsets[t+1])}, summed in ascending expert id from zero. {@code hidden} holds the
     * {@code tokens} input rows as {@code codec} encodes them; the result comes back in the same encoding.
     *
     * @throws ExpertNotHeldException if an expert is not held (now: it may have been unloaded since validation)
     */
    public byte[] run(int layer, ByteBuffer hidden, HiddenCodec codec, int tokens, int[] offsets, int[] ids,
                      float[] weights) {
        lock.lock();
        try {
            checkHeld(layer, ids, offsets[tokens]);
            int width = shard.config().hiddenSize();
            float[] xn = scratch.input(tokens * width);
            codec.decode(hidden, xn, 0, tokens * width);
            float[] out = scratch.output(tokens * width);
            Arrays.fill(out, 0, tokens * width, 0f);
            shard.runner(layer).run(xn, tokens, offsets, ids, weights, out, ctx.atLayer(layer));
            shard.countTokens(layer, ids, offsets[tokens]);
            return codec.encode(out, 0, tokens * width);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Every entry's expert output, unweighted: row {@code i < offsets[tokens]} is {@code expert_{ids[i]}(xn[t])}
     * for the token {@code t} of entry {@code i}, exactly (each entry runs as its own row with weight 1, and
     * {@code fma(1, r, 0) == r}); experts still run once each on their whole batch. Input and result as in
     * {@link #run}.
     */
    public byte[] runPerAssignment(int layer, ByteBuffer hidden, HiddenCodec codec, int tokens, int[] offsets,
                                   int[] ids) {
        lock.lock();
        try {
            int n = offsets[tokens];
            checkHeld(layer, ids, n);
            int width = shard.config().hiddenSize();
            float[] xn = scratch.input(tokens * width);
            codec.decode(hidden, xn, 0, tokens * width);
            float[] rows = scratch.rows(n * width);
            int[] each = scratch.each(n + 1);
            each[0] = 0;
            for (int t = 0; t < tokens; t++) {
                for (int i = offsets[t]; i < offsets[t + 1]; i++) {
                    System.arraycopy(xn, t * width, rows, i * width, width);
                    each[i + 1] = i + 1;
                }
            }
            float[] ones = scratch.ones(n);
            float[] out = scratch.output(n * width);
            Arrays.fill(out, 0, n * width, 0f);
            shard.runner(layer).run(rows, n, each, ids, ones, out, ctx.atLayer(layer));
            shard.countTokens(layer, ids, n);
            return codec.encode(out, 0, n * width);
        } finally {
            lock.unlock();
        }
    }

    /**
     * The calls' arrays, grown to the largest call and reused under the lock: a worker's expert calls then
     * allocate only their answer's bytes (at DeepSeek-V3's hidden size a 32-token call with 8 experts a token
     * had allocated two 7 MB float arrays, and the decoded input, per layer).
     */
    private static final class CallScratch {
        private float[] input = new float[0];
        private float[] rows = new float[0];
        private float[] output = new float[0];
        private float[] ones = new float[0];
        private int[] each = new int[0];

        float[] input(int n) {
            return input.length >= n ? input : (input = new float[Scratch.grown(input.length, n)]);
        }

        float[] rows(int n) {
            return rows.length >= n ? rows : (rows = new float[Scratch.grown(rows.length, n)]);
        }

        float[] output(int n) {
            return output.length >= n ? output : (output = new float[Scratch.grown(output.length, n)]);
        }

        int[] each(int n) {
            return each.length >= n ? each : (each = new int[Scratch.grown(each.length, n)]);
        }

        /** At least {@code n} ones. */
        float[] ones(int n) {
            if (ones.length < n) {
                ones = new float[Scratch.grown(ones.length, n)];
                Arrays.fill(ones, 1f);
            }
            return ones;
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
