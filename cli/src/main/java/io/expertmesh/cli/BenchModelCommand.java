package io.expertmesh.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.kernel.Kernels;
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
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code expertmesh bench-model}: decode and prefill throughput of the benchmark model (random BF16 weights of
 * the llama.cpp comparison shape, built in memory), with the achieved weight-read bandwidth next to the machine's
 * measured memory bandwidth.
 */
@Command(name = "bench-model", mixinStandardHelpOptions = true,
        description = "Measure decode/prefill tokens per second on the benchmark model (no download needed).")
final class BenchModelCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model = new ModelOptions();

    @Spec
    CommandSpec spec;

    @Option(names = "--batches", split = ",", paramLabel = "B", description = "Decode batch sizes (default 1,8,32).")
    List<Integer> batches = List.of(1, 8, 32);

    @Option(names = "--steps", paramLabel = "N", description = "Timed decode steps per batch size (default 24).")
    int steps = 24;

    @Option(names = "--context", paramLabel = "N", description = "Prompt tokens before decoding (default 64).")
    int context = 64;

    @Option(names = "--prefill", paramLabel = "N", description = "Prompt length of the prefill test (default 64).")
    int prefillLength = 64;

    @Option(names = "--json", description = "Print the results as one JSON object.")
    boolean json;

    @Option(names = "--engine", description = "Measure decode through the router's engine (continuous batching, "
            + "paged KV cache, sampling): N concurrent streams instead of raw forward steps.")
    boolean engine;

    @Option(names = "--tokens", paramLabel = "N", description = "With --engine: tokens per stream (default 64).")
    int tokensPerStream = 64;

    @Option(names = "--kv-store-compare", description = "With --engine: decode throughput with the distributed KV "
            + "tier publishing (an embedded Hazelcast member on a free loopback port) against no tier; prefix "
            + "caching on in both.")
    boolean kvStoreCompare;

    @Option(names = "--workers", paramLabel = "N",
            description = "With --engine: also run the routed experts on N expert workers over loopback (in this "
                    + "JVM), with one and two micro-batches, and a skewed workload before/after a rebalance.")
    int workers;

    @Option(names = "--skew-workers", paramLabel = "N",
            description = "With --workers: workers of the skewed-workload rebalance test (default 4).")
    int skewWorkers = 4;

    @Option(names = "--expert-wire", paramLabel = "FORMAT", description = "With --workers: exact (default) or bf16.")
    io.expertmesh.router.experts.WireFormat expertWire = io.expertmesh.router.experts.WireFormat.EXACT;

    @Option(names = "--compare-quantize", description = "Build the model unquantized, int8 and int4 and measure "
            + "prefill and decode batch 1 of each, alternating, for --rounds rounds: the int8/BF16 and int4/BF16 "
            + "ratios (median of the rounds' ratios) on a noisy machine.")
    boolean compareQuantize;

    @Option(names = "--rounds", paramLabel = "N", description = "With --compare-quantize: rounds (default 3).")
    int rounds = 3;

    /** {@code --write-format}: how {@code --write-model} stores the benchmark model's weights. */
    enum WriteFormat { bf16, fp8 }

    @Option(names = "--write-model", paramLabel = "DIR",
            description = "Write the benchmark model (the weights every other measurement here uses) as a Hugging Face "
                    + "directory and exit, so that a peer (llama.cpp) or `bench-model --model DIR` runs the very same "
                    + "weights.")
    Path writeModel;

    @Option(names = "--write-format", paramLabel = "bf16|fp8",
            description = "With --write-model: bf16 (default) or fp8 (e4m3 with 128x128 block scales, the "
                    + "DeepSeek-V3 release format, made from the BF16 weights).")
    WriteFormat writeFormat = WriteFormat.bf16;

    @Override
    public Integer call() throws Exception {
        if (steps < 1 || context < 1 || prefillLength < 1 || batches.stream().anyMatch(b -> b < 1)) {
            throw new IllegalArgumentException("--steps, --context, --prefill and --batches must be >= 1");
        }
        PrintStream err = System.err;
        if (writeModel != null) {
            writeBenchModel(writeModel, writeFormat);
            err.println("wrote the benchmark model (" + writeFormat + ") to " + writeModel);
            return 0;
        }
        if (model.randomModel) {
            model.model = model.resolveModelDir(); // --random-model: measure that model, like --model DIR
        }
        ModelConfig config = model.model != null ? ModelConfig.load(model.model)
                : ModelConfig.parse(SyntheticModels.benchConfig());
        String what = model.model != null ? "model " + model.model.getFileName() : "benchmark model";
        Quantization quantization = model.quantization();
        Kernels kernels = model.newKernels();
        ObjectNode result = new ObjectMapper().createObjectNode();
        result.put("quantize", quantization.label());
        double activeBytes = config.activeParamsPerToken() * 2.0;
        err.printf(what + ": hidden %d, %d layers, %d experts top-%d, vocab %d; %.0f MB of BF16 weights "
                        + "read per token at batch 1; %d threads, %s kernels%n", config.hiddenSize(),
                config.numLayers(), config.numRoutedExperts(), config.expertsPerToken(), config.vocabSize(),
                activeBytes / 1e6, model.threads, model.kernels);
        double bandwidth = MemoryBandwidth.measureReadGBs(kernels.pool());
        err.printf("memory read bandwidth (all threads): %.1f GB/s -> decode bound %.0f tokens/s at batch 1%n",
                bandwidth, bandwidth * 1e9 / activeBytes);
        result.put("memory_read_gb_per_s", bandwidth).put("active_weight_bytes_per_token", activeBytes);
        if (model.model != null && engine && workers == 0) {
            throw new IllegalArgumentException("--model with --engine needs --workers; the engine-only measurements "
                    + "run on the built-in benchmark shape");
        }
        if (engine) {
            if (workers > 0) {
                DistributedBench.run(model, batches, context, tokensPerStream, workers, skewWorkers, expertWire,
                        result, err);
            } else if (kvStoreCompare) {
                EngineBench.runKvStoreComparison(model, batches, context, tokensPerStream, result, err);
            } else {
                EngineBench.run(model, batches, context, tokensPerStream, activeBytes, bandwidth, result, err);
            }
            if (json) {
                printJson(result);
            }
            return 0;
        }
        if (compareQuantize) {
            try (BenchWeights weights = weights()) {
                compare(config, weights.source(), kernels, bandwidth, result, err);
            }
            if (json) {
                printJson(result);
            }
            return 0;
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
            // Prefill: one prompt of prefillLength tokens in one step, repeated.
            int[] prompt = rnd.ints(prefillLength, 2, vocab).toArray();
            float[] logits = new float[vocab * Math.max(1, batches.stream().max(Integer::compare).orElse(1))];
            double prefillSeconds = Double.MAX_VALUE;
            for (int rep = 0; rep < 5; rep++) {
                KvCache cache = t.newCache(prefillLength);
                long s = System.nanoTime();
                t.forward(ForwardBatch.ofSequence(prompt, 0, cache, prefillLength - 1), logits);
                prefillSeconds = Math.min(prefillSeconds, (System.nanoTime() - s) / 1e9);
            }
            double prefillTps = prefillLength / prefillSeconds;
            err.printf("prefill %d tokens: %.1f tokens/s (best of 5)%n", prefillLength, prefillTps);
            result.put("prefill_tokens", prefillLength).put("prefill_tokens_per_second", prefillTps);
            ObjectNode decode = result.putObject("decode");
            for (int b : batches) {
                double tps = decode(t, b, rnd, logits);
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
        if (json) {
            printJson(result);
        }
        return 0;
    }

    /**
     * {@code --compare-quantize}: the model unquantized, int8 and int4 from the same random BF16 weights, prefill
     * (best of 3) and decode batch 1 measured alternately, {@link #rounds} rounds, the best of each kept: on a
     * shared, noisy machine a ratio is only worth something when all sides saw the same conditions.
     */
    private void compare(ModelConfig config, WeightSource weights, Kernels kernels, double bandwidth,
                         ObjectNode result, PrintStream err) {
        // In ordinal order: modes[q.ordinal()] is q. The ratios are each mode's over modes[0], none.
        Quantization[] modes = Quantization.values();
        Transformer[] models = new Transformer[modes.length];
        double[] bytes = new double[modes.length];
        double[] prefill = new double[modes.length];
        double[] decode1 = new double[modes.length];
        double[][] prefillRatios = new double[modes.length][Math.max(1, rounds)];
        double[][] decodeRatios = new double[modes.length][Math.max(1, rounds)];
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
                t.forward(ForwardBatch.ofSequence(prompt, 0, t.newCache(prefillLength), prefillLength - 1), logits);
                decode(t, 1, rnd, logits);
            }
            int n = Math.max(1, rounds);
            for (int round = 0; round < n; round++) {
                double[] roundPrefill = new double[modes.length];
                double[] roundDecode = new double[modes.length];
                for (int m = 0; m < modes.length; m++) {
                    Transformer t = models[m];
                    for (int rep = 0; rep < 3; rep++) {
                        KvCache cache = t.newCache(prefillLength);
                        long s = System.nanoTime();
                        t.forward(ForwardBatch.ofSequence(prompt, 0, cache, prefillLength - 1), logits);
                        roundPrefill[m] = Math.max(roundPrefill[m], prefillLength / ((System.nanoTime() - s) / 1e9));
                    }
                    roundDecode[m] = decode(t, 1, rnd, logits);
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
        result.put("weight_bytes_per_token", bytes[model.quantization().ordinal()]);
    }

    /** The result on the command line's out (stdout, or a test's writer); progress and tables go to stderr. */
    private void printJson(ObjectNode result) {
        spec.commandLine().getOut().println(result);
        spec.commandLine().getOut().flush();
    }

    /** The weights measured: {@code --model}'s checkpoint, else the benchmark model's (seed 7, BF16). */
    private record BenchWeights(WeightSource source, AutoCloseable owner) implements AutoCloseable {
        @Override
        public void close() throws Exception {
            owner.close();
        }
    }

    private BenchWeights weights() {
        if (model.model != null) {
            Checkpoint cp = Checkpoint.open(model.model);
            return new BenchWeights(cp, cp);
        }
        RandomWeights random = new RandomWeights(BENCH_SEED, true);
        return new BenchWeights(random, random);
    }

    /** Seed of the benchmark model's weights: the same in memory and as written by {@code --write-model}. */
    static final long BENCH_SEED = 7;

    /** The benchmark model's weights in {@code dir}: as generated (BF16), or converted to block-scaled FP8. */
    static void writeBenchModel(Path dir, WriteFormat format) throws IOException {
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

    /** Aggregate decode tokens/s with {@code b} sequences of {@code context} tokens each stepping together. */
    private double decode(Transformer t, int b, SplittableRandom rnd, float[] logits) {
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
        int warmup = 3;
        long start = 0;
        for (int s = 0; s < warmup + steps; s++) {
            if (s == warmup) {
                start = System.nanoTime();
            }
            int[] pos = new int[b];
            Arrays.fill(pos, context + s);
            t.forward(new ForwardBatch(next.clone(), pos, caches, rows), logits);
            for (int i = 0; i < b; i++) {
                next[i] = argmax(logits, i * vocab, vocab);
            }
        }
        return (double) b * steps / ((System.nanoTime() - start) / 1e9);
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
