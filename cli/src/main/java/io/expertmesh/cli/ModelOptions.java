package io.expertmesh.cli;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.ModelIdentity;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.kernel.ScalarKernels;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.model.ExpertRunner;
import io.expertmesh.core.model.ForwardBackend;
import io.expertmesh.core.model.QuantizedWeightCache;
import io.expertmesh.core.safetensors.Checkpoint;
import io.expertmesh.core.synthetic.SyntheticModels;
import io.expertmesh.core.tensor.Quantization;
import io.expertmesh.cuda.CudaDevice;
import io.expertmesh.cuda.CudaKernels;
import io.expertmesh.cuda.CudaProbe;
import io.expertmesh.cuda.forward.CudaOps;
import io.expertmesh.cuda.forward.DeviceExperts;
import io.expertmesh.cuda.forward.DeviceForward;
import io.expertmesh.defaultmodel.DefaultModel;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Option;

/**
 * Options shared by commands that load a model: which directory, how many threads, which kernels and device, how
 * the weights are stored.
 */
final class ModelOptions {
    private static final Logger LOG = LoggerFactory.getLogger(ModelOptions.class);

    @Option(names = "--model", paramLabel = "DIR",
            description = "Hugging Face model directory (config.json, *.safetensors, tokenizer.json). "
                    + "Default: the built-in model (an 18 M-parameter DeepSeek-V3-architecture MoE trained on "
                    + "English text), unpacked on first use.")
    Path model;

    @Option(names = "--random-model",
            description = "Instead of --model: a random-weight DeepSeek-V3-architecture model with the real "
                    + "DeepSeek-V3 tokenizer (129,280 tokens), generated on first use. Its text is gibberish; it is "
                    + "for tests and benchmarks that want the real vocabulary.")
    boolean randomModel;

    @Option(names = "--threads", paramLabel = "N", description = "Compute threads (default: all cores).")
    int threads = Runtime.getRuntime().availableProcessors();

    /** {@code --kernels}: the CPU kernel set. Lower case: picocli shows and completes the constant names. */
    enum KernelSet { vector, scalar }

    /** {@code --device}: where the products run. */
    enum Device { cpu, cuda, auto }

    @Option(names = "--kernels", paramLabel = "vector|scalar",
            description = "CPU kernels: vector (Vector API, default) or scalar (the reference).")
    KernelSet kernels = KernelSet.vector;

    @Option(names = "--device", paramLabel = "cpu|cuda|auto",
            description = "Where the model runs: cpu (default), cuda (the GPU; an error when there is none) or "
                    + "auto (the GPU when one is usable, else the CPU). On the GPU, run and serve keep weights, "
                    + "activations and the KV cache in device memory, and a worker its experts.")
    Device device = Device.cpu;

    @Option(names = "--quantize", paramLabel = "none|int8|int4",
            description = "How projection weights are stored: none (as the checkpoint has them, default; FP8 "
                    + "checkpoints stay FP8, 1 byte per weight, unless -Dexpertmesh.fp8=bf16), int8 "
                    + "(made at load: int8 values with an F32 scale per 32 weights along K, ~1.1 bytes per weight "
                    + "instead of 2) or int4 (made at load, as llama.cpp's Q4_0: 4-bit values with an F16 scale "
                    + "per 32 weights, ~0.56 bytes per weight; lossy, check your model's accuracy); embedding, "
                    + "router gate and norms stay. CPU only. A worker quantizes its experts.")
    String quantize = "none";

    /**
     * {@code --quantize} as a {@link Quantization}; throws a user error for an unknown value, or for int8/int4 with
     * the GPU (the device pass uploads BF16/F32 weights).
     */
    Quantization quantization() {
        Quantization q = parseQuantize(quantize);
        if (q != Quantization.NONE && useGpu()) {
            throw new IllegalArgumentException("--quantize " + quantize + " runs on the CPU kernels only; use "
                    + "--device cpu or --quantize none");
        }
        return q;
    }

    /** A {@code --quantize} value by its label; a user error listing the labels for any other. */
    static Quantization parseQuantize(String label) {
        for (Quantization q : Quantization.values()) {
            if (q.label().equals(label)) {
                return q;
            }
        }
        throw new IllegalArgumentException("--quantize must be none, int8 or int4, got " + label);
    }

    Path resolveModelDir() {
        return resolve(model, randomModel);
    }

    /** {@code --model}, else {@code --random-model}'s model, else the built-in default model. */
    static Path resolve(Path model, boolean random) {
        if (model != null && random) {
            throw new IllegalArgumentException("give --model DIR or --random-model, not both");
        }
        if (model != null) {
            return model;
        }
        Path cache = SyntheticModels.defaultCacheRoot();
        return random ? SyntheticModels.ensureRandomModel(cache) : DefaultModel.ensure(cache);
    }

    /**
     * Whether the products run on the GPU, from {@code --device}; throws a user error for {@code cuda} without a
     * usable GPU (the reason is the probe's); picocli has already refused an unknown value. Commands that load the model later (serve)
     * call this first so a bad flag fails at start-up.
     */
    boolean useGpu() {
        return switch (device) {
            case cpu -> false;
            case cuda -> {
                CudaProbe probe = CudaDevice.probe();
                if (!probe.available()) {
                    throw new IllegalArgumentException("--device cuda: " + probe.describe());
                }
                yield true;
            }
            // The probe logs its answer once (device, or why there is none); auto then simply follows it.
            case auto -> CudaDevice.probe().available();
        };
    }

    /**
     * Kernels for a model whose products run on the GPU when {@code --device} picks it ({@link CudaKernels}: the
     * benchmarks' kernel sets), else on the CPU.
     */
    Kernels newKernels() {
        return useGpu() ? new CudaKernels(newPool()) : newCpuKernels();
    }

    /**
     * The CPU kernels ({@code --kernels}), for a model whose forward steps run on {@link #forwardBackend()}: on a
     * GPU the device pass uploads the weights it needs itself, and the host only combines remote experts.
     */
    Kernels newCpuKernels() {
        ComputePool pool = newPool();
        return switch (kernels) {
            case vector -> {
                // Which BF16 kernel runs decides the bits (nodes that must agree should match); say it once.
                LOG.info("CPU kernels: Vector API; BF16, FP8, int8 and int4 products: {}", VectorKernels.bf16Kernel());
                yield new VectorKernels(pool);
            }
            case scalar -> new ScalarKernels(pool);
        };
    }

    private ComputePool newPool() {
        if (threads < 1) {
            throw new IllegalArgumentException("--threads must be >= 1, got " + threads);
        }
        return ComputePool.create(threads);
    }

    /**
     * Where an expert worker's experts run: on the GPU in device memory ({@link DeviceExperts}: weights uploaded
     * when an expert is loaded, freed when unloaded), else on the CPU kernels.
     */
    ExpertRunner.Factory expertRunners() {
        Quantization q = quantization();
        if (!useGpu()) {
            if (q == Quantization.NONE || !QuantizedWeightCache.enabled()) {
                return ExpertRunner.Factory.cpu(q);
            }
            // Each held expert's quantized copies are kept on disk, by model identity, for the next load.
            Path dir = resolveModelDir();
            try (Checkpoint checkpoint = Checkpoint.open(dir)) {
                String id = ModelIdentity.of(dir, checkpoint).hex();
                return ExpertRunner.Factory.cpu(q, QuantizedWeightCache.defaultDir()
                        .resolve(id + "-" + q.label() + "-experts"), id);
            } catch (IOException | RuntimeException e) {
                LOG.warn("Not caching quantized experts: cannot identify the model in {}: {}", dir, e.getMessage());
                return ExpertRunner.Factory.cpu(q);
            }
        }
        LOG.info("Backend: GPU {}: the experts in device memory", CudaDevice.probe().describe());
        return new DeviceExperts(new CudaOps(CudaDevice.get()));
    }

    /**
     * Where a router's (or {@code run}'s) forward steps run: on the GPU the device-resident pass (weights,
     * activations and the paged KV cache in device memory, every layer's kernels there), else core's CPU pass.
     */
    ForwardBackend.Factory forwardBackend() {
        quantization();  // a bad --quantize fails here, at start-up, with --device
        if (!useGpu()) {
            return ForwardBackend.CPU;
        }
        LOG.info("Backend: GPU {}: the whole forward pass and the KV cache on the device",
                CudaDevice.probe().describe());
        return DeviceForward.factory(new CudaOps(CudaDevice.get()));
    }

    /** Loads the model with the CPU kernels (see {@link #forwardBackend()}), showing progress on a terminal. */
    LoadedModel load(PrintWriter err) throws IOException {
        Path dir = resolveModelDir();
        Quantization q = quantization();
        Kernels k = newCpuKernels();
        if (useGpu()) {
            LOG.info("Host kernels: CPU {}, {} threads (remote-expert combine, sampling)", kernels, threads);
        } else {
            LOG.info("Backend: CPU, {} kernels, {} threads, Vector API species {}, weights {}", kernels, threads,
                    jdk.incubator.vector.FloatVector.SPECIES_PREFERRED, q.label());
        }
        boolean tty = System.console() != null;
        return LoadedModel.open(dir, k, (done, total) -> {
            if (tty) {
                err.print("\rloading " + dir.getFileName() + ": layer " + done + "/" + total);
                if (done.equals(total)) {
                    err.println();
                }
                err.flush();
            }
        }, null, q);
    }
}
