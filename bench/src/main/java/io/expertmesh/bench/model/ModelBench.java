package io.expertmesh.bench.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.model.ForwardBatch;
import io.expertmesh.core.model.KvCache;
import io.expertmesh.core.model.ModelBuilder;
import io.expertmesh.core.model.Transformer;
import io.expertmesh.core.safetensors.Checkpoint;
import io.expertmesh.core.safetensors.Fp8BlockQuantizer;
import io.expertmesh.core.synthetic.RandomWeights;
import io.expertmesh.core.synthetic.SyntheticModels;
import io.expertmesh.core.tensor.Quantization;
import io.expertmesh.core.tensor.WeightSource;
import io.expertmesh.router.experts.WireFormat;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Decode and prefill throughput of a model (the benchmark model, random BF16 weights of the llama.cpp comparison
 * shape built in memory, or a checkpoint), with the achieved weight-read bandwidth next to the machine's measured
 * memory bandwidth; or, with {@link Settings#engine()}, through the router's engine ({@link EngineBench},
 * {@link DistributedBench}). Tables go to {@code err}; the numbers come back as one JSON object.
 */
public final class ModelBench {
    /** Seed of the benchmark model's weights: the same in memory and as written by {@link #writeBenchModel}. */
    public static final long BENCH_SEED = 7;

    /** How {@link #writeBenchModel} stores the benchmark model's weights. Lower case: the command line's values. */
    public enum WriteFormat { bf16, fp8 }

    /**
     * What to measure.
     *
     * @param batches         decode batch sizes (with {@code engine}: concurrent streams)
     * @param steps           timed decode steps per batch size
     * @param context         prompt tokens before decoding
     * @param prefillLength   prompt length of the prefill test
     * @param engine          measure decode through the router's engine instead of raw forward steps
     * @param tokensPerStream with {@code engine}: tokens per stream
     * @param kvStoreCompare  with {@code engine}: with the distributed KV tier publishing against none
     * @param workers         with {@code engine}: also run the routed experts on this many loopback workers
     * @param skewWorkers     with {@code workers}: workers of the skewed-workload rebalance test
     * @param expertWire      with {@code workers}: the experts' wire format
     * @param compareQuantize the model unquantized, int8 and int4, alternating for {@code rounds} rounds
     * @param rounds          with {@code compareQuantize} or {@code workers}: rounds
     * @param expertDelayMs   with {@code workers}: latency added each way to every call to a worker (0: none)
     * @param warmUpSeconds   untimed work for at least this long before timing, so the figures are of compiled
     *                        code, not of the JIT at work: raw forward steps, prefills, and decode steps per batch
     *                        size (always at least one prefill and three decode steps); with {@code engine},
     *                        single-stream requests on the in-process engine (at least one)
     */
    public record Settings(List<Integer> batches, int steps, int context, int prefillLength, boolean engine,
                           int tokensPerStream, boolean kvStoreCompare, int workers, int skewWorkers,
                           WireFormat expertWire, boolean compareQuantize, int rounds, double expertDelayMs,
                           double warmUpSeconds) {
        public Settings {
            batches = List.copyOf(batches);
            if (steps < 1 || context < 1 || prefillLength < 1 || batches.stream().anyMatch(b -> b < 1)) {
                throw new IllegalArgumentException("--steps, --context, --prefill and --batches must be >= 1");
            }
            if (!(expertDelayMs >= 0)) {
                throw new IllegalArgumentException("--expert-delay-ms must be >= 0, got " + expertDelayMs);
            }
            if (!(warmUpSeconds >= 0 && warmUpSeconds <= 3600)) {
                throw new IllegalArgumentException("--warm-up must be between 0 and 3600 seconds, got "
                        + warmUpSeconds);
            }
        }

        /** Without a timed warm-up (the minimum one: a prefill and three decode steps). */
        public Settings(List<Integer> batches, int steps, int context, int prefillLength, boolean engine,
                        int tokensPerStream, boolean kvStoreCompare, int workers, int skewWorkers,
                        WireFormat expertWire, boolean compareQuantize, int rounds, double expertDelayMs) {
            this(batches, steps, context, prefillLength, engine, tokensPerStream, kvStoreCompare, workers,
                    skewWorkers, expertWire, compareQuantize, rounds, expertDelayMs, 0);
        }

        /** Without an added expert latency. */
        public Settings(List<Integer> batches, int steps, int context, int prefillLength, boolean engine,
                        int tokensPerStream, boolean kvStoreCompare, int workers, int skewWorkers,
                        WireFormat expertWire, boolean compareQuantize, int rounds) {
            this(batches, steps, context, prefillLength, engine, tokensPerStream, kvStoreCompare, workers,
                    skewWorkers, expertWire, compareQuantize, rounds, 0);
        }
    }

    private final ModelSetup setup;
    private final Settings settings;
    private final PrintStream err;

    public ModelBench(ModelSetup setup, Settings settings, PrintStream err) {
        this.setup = setup;
        this.settings = settings;
        this.err = err;
        if (setup.model() != null && settings.engine() && settings.workers() == 0) {
            throw new IllegalArgumentException("--model with --engine needs --workers; the engine-only measurements "
                    + "run on the built-in benchmark shape");
        }
    }

    /** Runs the measurements {@link Settings} asks for; their numbers. */
    public ObjectNode run() throws Exception {
        Path dir = setup.model();
        ModelConfig config = dir != null ? ModelConfig.load(dir) : ModelConfig.parse(SyntheticModels.benchConfig());
        String what = dir != null ? "model " + dir.getFileName() : "benchmark model";
        Quantization quantization = setup.quantization();
        Kernels kernels = setup.newKernels();
        ObjectNode result = new ObjectMapper().createObjectNode();
        result.put("quantize", quantization.label());
        result.put("bf16_kernel", VectorKernels.bf16Kernel());
        err.println("BF16, FP8, int8 and int4 products: " + VectorKernels.bf16Kernel());
        double activeBytes = config.activeParamsPerToken() * 2.0;
        err.printf(what + ": hidden %d, %d layers, %d experts top-%d, vocab %d; %.0f MB of BF16 weights "
                        + "read per token at batch 1; %s%n", config.hiddenSize(), config.numLayers(),
                config.numRoutedExperts(), config.expertsPerToken(), config.vocabSize(), activeBytes / 1e6,
                setup.describe());
        double bandwidth = MemoryBandwidth.measureReadGBs(kernels.pool());
        err.printf("memory read bandwidth (all threads): %.1f GB/s -> decode bound %.0f tokens/s at batch 1%n",
                bandwidth, bandwidth * 1e9 / activeBytes);
        result.put("memory_read_gb_per_s", bandwidth).put("active_weight_bytes_per_token", activeBytes);
        Settings s = settings;
        if (s.engine()) {
            if (s.workers() > 0) {
                DistributedBench.run(setup, s.batches(), s.context(), s.tokensPerStream(), s.workers(),
                        s.skewWorkers(), s.expertWire(), (long) (s.expertDelayMs() * 1e6), Math.max(1, s.rounds()),
                        s.warmUpSeconds(), result, err);
            } else if (s.kvStoreCompare()) {
                EngineBench.runKvStoreComparison(setup, s.batches(), s.context(), s.tokensPerStream(),
                        s.warmUpSeconds(), result, err);
            } else {
                EngineBench.run(setup, s.batches(), s.context(), s.tokensPerStream(), activeBytes, bandwidth,
                        s.warmUpSeconds(), result, err);
            }
            return result;
        }
        if (s.compareQuantize()) {
            try (BenchWeights weights = weights()) {
                compare(config, weights.source(), kernels, bandwidth, result);
            }
            return result;
        }
        ModelBuilder builder;
        try (BenchWeights weights = weights();
             Transformer t = (builder = new ModelBuilder(config, weights.source(), kernels).quantize(quantization))
                     .build()) {
            double weightBytes = builder.activeWeightBytes();
            err.printf("weights as stored (--quantize %s): %.0f MB read per token at batch 1%n", quantization.label(),
                    weightBytes / 1e6);
            result.put("weight_bytes_per_token", weightBytes);
            int vocab = config.vocabSize();
            SplittableRandom rnd = new SplittableRandom(42);
            // Prefill: one prompt of prefillLength tokens in one step, repeated: untimed until the warm-up time
            // has passed (the first one also pages the weights in), then 5 timed.
            int prefillLength = s.prefillLength();
            int[] prompt = rnd.ints(prefillLength, 2, vocab).toArray();
            float[] logits = new float[vocab * Math.max(1, s.batches().stream().max(Integer::compare).orElse(1))];
            int warmUps = warmUpPrefills(t, prompt, logits, s.warmUpSeconds());
            double[] prefillTps = new double[5];
            for (int rep = 0; rep < prefillTps.length; rep++) {
                prefillTps[rep] = prefillLength / prefill(t, prompt, logits);
            }
            double best = Arrays.stream(prefillTps).max().orElseThrow();
            err.printf("prefill %d tokens: %.1f tokens/s (best of 5; median %.1f; after %d untimed)%n",
                    prefillLength, best, median(prefillTps), warmUps);
            result.put("prefill_tokens", prefillLength).put("prefill_tokens_per_second", best)
                    .put("prefill_tokens_per_second_median", median(prefillTps))
                    .put("warm_up_seconds", s.warmUpSeconds());
            ObjectNode decode = result.putObject("decode");
            for (int b : s.batches()) {
                double tps = decode(t, b, rnd, logits, s.warmUpSeconds());
                double gbs = b == 1 ? tps * weightBytes / 1e9 : Double.NaN;
                if (b == 1) {
                    err.printf("decode batch %2d: %8.1f tokens/s  (weights read %.1f GB/s = %.0f%% of measured "
                            + "bandwidth)%n", b, tps, gbs, 100 * gbs / bandwidth);
                } else {
                    err.printf("decode batch %2d: %8.1f tokens/s aggregate%n", b, tps);
                }
                ObjectNode d = decode.putObject(Integer.toString(b)).put("tokens_per_second", tps);
                if (b == 1) {
                    d.put("weight_read_gb_per_s", gbs);
                }
            }
        }
        return result;
    }

    /**
     * The model unquantized, int8 and int4 from the same random BF16 weights, prefill (best of 3) and decode batch
     * 1 measured alternately, {@link Settings#rounds()} rounds, the best of each kept: on a shared, noisy machine a
     * ratio is only worth something when all sides saw the same conditions.
     */
    private void compare(ModelConfig config, WeightSource weights, Kernels kernels, double bandwidth,
                         ObjectNode result) {
        int prefillLength = settings.prefillLength();
        // In ordinal order: modes[q.ordinal()] is q. The ratios are each mode's over modes[0], none.
        Quantization[] modes = Quantization.values();
        Transformer[] models = new Transformer[modes.length];
        double[] bytes = new double[modes.length];
        double[] prefill = new double[modes.length];
        double[] decode1 = new double[modes.length];
        int n = Math.max(1, settings.rounds());
        double[][] prefillRatios = new double[modes.length][n];
        double[][] decodeRatios = new double[modes.length][n];
        try {
            for (int m = 0; m < modes.length; m++) {
                ModelBuilder b = new ModelBuilder(config, weights, kernels).quantize(modes[m]);
                models[m] = b.build();
                bytes[m] = b.activeWeightBytes();
            }
            int vocab = config.vocabSize();
            SplittableRandom rnd = new SplittableRandom(42);
            int[] prompt = rnd.ints(prefillLength, 2, vocab).toArray();
            float[] logits = new float[vocab];
            // Warm-up, not counted: the JIT compiles each mode's kernels; without it the mode measured first loses.
            for (Transformer t : models) {
                warmUpPrefills(t, prompt, logits, settings.warmUpSeconds());
                decode(t, 1, rnd, logits, settings.warmUpSeconds());
            }
            for (int round = 0; round < n; round++) {
                double[] roundPrefill = new double[modes.length];
                double[] roundDecode = new double[modes.length];
                for (int m = 0; m < modes.length; m++) {
                    Transformer t = models[m];
                    for (int rep = 0; rep < 3; rep++) {
                        roundPrefill[m] = Math.max(roundPrefill[m], prefillLength / prefill(t, prompt, logits));
                    }
                    roundDecode[m] = decode(t, 1, rnd, logits, 0);
                    prefill[m] = Math.max(prefill[m], roundPrefill[m]);
                    decode1[m] = Math.max(decode1[m], roundDecode[m]);
                    err.printf("round %d %-4s: prefill %d tokens %.1f tokens/s, decode batch 1 %.1f tokens/s%n",
                            round + 1, modes[m].label(), prefillLength, roundPrefill[m], roundDecode[m]);
                }
                for (int m = 1; m < modes.length; m++) {
                    prefillRatios[m][round] = roundPrefill[m] / roundPrefill[0];
                    decodeRatios[m][round] = roundDecode[m] / roundDecode[0];
                }
            }
        } finally {
            for (Transformer t : models) {
                if (t != null) {
                    t.close();
                }
            }
        }
        ObjectNode out = result.putObject("quantize_comparison");
        for (int m = 0; m < modes.length; m++) {
            double gbs = decode1[m] * bytes[m] / 1e9;
            err.printf("%-4s: %.0f MB read per token; prefill %d: %.1f tokens/s; decode batch 1: %.1f tokens/s "
                            + "(weights read %.1f GB/s = %.0f%% of measured bandwidth)%n", modes[m].label(),
                    bytes[m] / 1e6, prefillLength, prefill[m], decode1[m], gbs, 100 * gbs / bandwidth);
            out.putObject(modes[m].label()).put("weight_bytes_per_token", bytes[m])
                    .put("prefill_tokens_per_second", prefill[m]).put("decode_batch_1_tokens_per_second", decode1[m])
                    .put("weight_read_gb_per_s", gbs);
        }
        // The median of the rounds' ratios (each round measured all modes back to back) is the figure to quote on
        // a noisy machine; the ratio of the bests is printed too. JSON: int8_over_none, int4_over_none.
        for (int m = 1; m < modes.length; m++) {
            double prefillMedian = median(prefillRatios[m]);
            double decodeMedian = median(decodeRatios[m]);
            err.printf("%s / none: prefill %.2fx, decode batch 1 %.2fx (median of %d rounds; of the bests %.2fx and "
                            + "%.2fx), bytes per token %.2fx%n", modes[m].label(), prefillMedian, decodeMedian,
                    decodeRatios[m].length, prefill[m] / prefill[0], decode1[m] / decode1[0], bytes[m] / bytes[0]);
            out.putObject(modes[m].label() + "_over_none").put("prefill", prefillMedian)
                    .put("decode_batch_1", decodeMedian).put("prefill_best", prefill[m] / prefill[0])
                    .put("decode_batch_1_best", decode1[m] / decode1[0])
                    .put("weight_bytes_per_token", bytes[m] / bytes[0]);
        }
        result.put("weight_bytes_per_token", bytes[setup.quantization().ordinal()]);
    }

    /** The weights measured: the model's checkpoint, else the benchmark model's (seed {@link #BENCH_SEED}, BF16). */
    private record BenchWeights(WeightSource source, AutoCloseable owner) implements AutoCloseable {
        @Override
        public void close() throws Exception {
            owner.close();
        }
    }

    private BenchWeights weights() {
        if (setup.model() != null) {
            Checkpoint cp = Checkpoint.open(setup.model());
            return new BenchWeights(cp, cp);
        }
        RandomWeights random = new RandomWeights(BENCH_SEED, true);
        return new BenchWeights(random, random);
    }

    /** The benchmark model's weights in {@code dir}: as generated (BF16), or converted to block-scaled FP8. */
    public static void writeBenchModel(Path dir, WriteFormat format) throws IOException {
        if (format == WriteFormat.bf16) {
            SyntheticModels.writeModel(SyntheticModels.benchConfig(), BENCH_SEED, dir);
            return;
        }
        Path bf16 = Files.createTempDirectory("expertmesh-bench-bf16");
        try {
            SyntheticModels.writeModel(SyntheticModels.benchConfig(), BENCH_SEED, bf16);
            Fp8BlockQuantizer.quantize(bf16, dir);
        } finally {
            try (var files = Files.list(bf16)) {
                for (Path f : files.toList()) {
                    Files.delete(f);
                }
            }
            Files.delete(bf16);
        }
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    /** Untimed prefills of {@code prompt}, at least one, until {@code seconds} have passed; how many ran. */
    private static int warmUpPrefills(Transformer t, int[] prompt, float[] logits, double seconds) {
        long end = System.nanoTime() + (long) (seconds * 1e9);
        int n = 0;
        do {
            prefill(t, prompt, logits);
            n++;
        } while (System.nanoTime() < end);
        return n;
    }

    /** Seconds of one prefill of {@code prompt} into a new cache. */
    private static double prefill(Transformer t, int[] prompt, float[] logits) {
        KvCache cache = t.newCache(prompt.length);
        long start = System.nanoTime();
        t.forward(ForwardBatch.ofSequence(prompt, 0, cache, prompt.length - 1), logits);
        return (System.nanoTime() - start) / 1e9;
    }

    /**
     * Aggregate decode tokens/s with {@code b} sequences of {@code context} tokens each stepping together: after
     * untimed steps (at least three, and for {@code warmUpSeconds}) over the very positions then timed,
     * whose cache rows the timed steps write again.
     */
    private double decode(Transformer t, int b, SplittableRandom rnd, float[] logits, double warmUpSeconds) {
        int context = settings.context();
        int steps = settings.steps();
        int vocab = t.config().vocabSize();
        KvCache[] caches = new KvCache[b];
        int[] next = new int[b];
        for (int i = 0; i < b; i++) {
            caches[i] = t.newCache(context + steps + 4);
            int[] p = rnd.ints(context, 2, vocab).toArray();
            t.forward(ForwardBatch.ofSequence(p, 0, caches[i], context - 1), logits);
            next[i] = argmax(logits, 0, vocab);
        }
        int[] rows = new int[b];
        Arrays.setAll(rows, i -> i);
        long warmUpEnd = System.nanoTime() + (long) (warmUpSeconds * 1e9);
        for (int s = 0; s < 3 || System.nanoTime() < warmUpEnd; s++) {
            step(t, next, context + s % steps, caches, rows, logits);
        }
        long start = System.nanoTime();
        for (int s = 0; s < steps; s++) {
            step(t, next, context + s, caches, rows, logits);
        }
        return (double) b * steps / ((System.nanoTime() - start) / 1e9);
    }

    /** One decode step of every sequence at {@code position}; {@code next} becomes each one's greedy token. */
    private static void step(Transformer t, int[] next, int position, KvCache[] caches, int[] rows, float[] logits) {
        int b = next.length;
        int vocab = t.config().vocabSize();
        int[] pos = new int[b];
        Arrays.fill(pos, position);
        t.forward(new ForwardBatch(next.clone(), pos, caches, rows), logits);
        for (int i = 0; i < b; i++) {
            next[i] = argmax(logits, i * vocab, vocab);
        }
    }

    private static int argmax(float[] x, int off, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (x[off + i] > x[off + best]) {
                best = i;
            }
        }
        return best;
    }
}
