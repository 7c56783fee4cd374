package io.expertmesh.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.bench.model.ModelBench;
import io.expertmesh.bench.model.ModelSetup;
import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.model.ExpertRunner;
import io.expertmesh.core.model.ForwardBackend;
import io.expertmesh.core.tensor.Quantization;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code expertmesh bench-model}: the options of bench's {@link ModelBench} (decode and prefill throughput of the
 * benchmark model or a checkpoint, raw or through the router's engine, in process or on loopback workers).
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

    @Option(names = "--warm-up", paramLabel = "SECONDS", description = "Untimed prefills, and untimed decode steps "
            + "before each batch size (with --engine: single-stream requests on the in-process engine), for this "
            + "long first, so that what is timed is compiled code, not the JIT at work (default 5; 0: one prefill "
            + "and three decode steps, or one request).")
    double warmUpSeconds = 5;

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

    @Option(names = "--expert-delay-ms", paramLabel = "MS",
            description = "With --workers: add this latency each way to every call to a worker (in process, on "
                    + "the router's channels), as a network would; the skewed-workload test is skipped.")
    double expertDelayMs;

    @Option(names = "--compare-quantize", description = "Build the model unquantized, int8 and int4 and measure "
            + "prefill and decode batch 1 of each, alternating, for --rounds rounds: the int8/BF16 and int4/BF16 "
            + "ratios (median of the rounds' ratios) on a noisy machine.")
    boolean compareQuantize;

    @Option(names = "--rounds", paramLabel = "N", description = "With --compare-quantize or --workers: rounds, "
            + "each measuring every mode in turn, the best of each kept (default 3).")
    int rounds = 3;

    @Option(names = "--write-model", paramLabel = "DIR",
            description = "Write the benchmark model (the weights every other measurement here uses) as a Hugging Face "
                    + "directory and exit, so that a peer (llama.cpp) or `bench-model --model DIR` runs the very same "
                    + "weights.")
    Path writeModel;

    @Option(names = "--write-format", paramLabel = "bf16|fp8",
            description = "With --write-model: bf16 (default) or fp8 (e4m3 with 128x128 block scales, the "
                    + "DeepSeek-V3 release format, made from the BF16 weights).")
    ModelBench.WriteFormat writeFormat = ModelBench.WriteFormat.bf16;

    @Override
    public Integer call() throws Exception {
        ModelBench.Settings settings = new ModelBench.Settings(batches, steps, context, prefillLength, engine,
                tokensPerStream, kvStoreCompare, workers, skewWorkers, expertWire, compareQuantize, rounds, expertDelayMs,
                warmUpSeconds);
        PrintStream err = System.err;
        if (writeModel != null) {
            ModelBench.writeBenchModel(writeModel, writeFormat);
            err.println("wrote the benchmark model (" + writeFormat + ") to " + writeModel);
            return 0;
        }
        if (model.randomModel) {
            model.model = model.resolveModelDir(); // --random-model: measure that model, like --model DIR
        }
        ObjectNode result = new ModelBench(setup(), settings, err).run();
        if (json) {
            // the result on the command line's out (stdout, or a test's writer); progress and tables go to stderr
            spec.commandLine().getOut().println(result);
            spec.commandLine().getOut().flush();
        }
        return 0;
    }

    /** The model options as bench sees them. */
    private ModelSetup setup() {
        return new ModelSetup() {
            @Override
            public Path model() {
                return model.model;
            }

            @Override
            public Quantization quantization() {
                return model.quantization();
            }

            @Override
            public Kernels newKernels() {
                return model.newKernels();
            }

            @Override
            public Kernels newCpuKernels() {
                return model.newCpuKernels();
            }

            @Override
            public ForwardBackend.Factory forwardBackend() {
                return model.forwardBackend();
            }

            @Override
            public ExpertRunner.Factory expertRunners() {
                return model.expertRunners();
            }

            @Override
            public String describe() {
                return model.threads + " threads, " + model.kernels + " kernels";
            }
        };
    }
}
