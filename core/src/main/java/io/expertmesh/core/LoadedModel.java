package io.expertmesh.core;

import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.model.ModelBuilder;
import io.expertmesh.core.model.QuantizedWeightCache;
import io.expertmesh.core.model.Transformer;
import io.expertmesh.core.safetensors.Checkpoint;
import io.expertmesh.core.safetensors.Fp8Loading;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Quantization;
import io.expertmesh.core.tokenizer.ModelTokenizer;
import io.expertmesh.core.safetensors.WeightDigests;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.function.BiConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A model directory opened for inference: config, memory-mapped checkpoint, forward pass and (when the
 * directory has one) tokenizer. Closing it unmaps the weights.
 */
public final class LoadedModel implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(LoadedModel.class);

    private final Path dir;
    private final ModelConfig config;
    private final Checkpoint checkpoint;
    private final Transformer transformer;
    private final ModelTokenizer tokenizer;
    private final Quantization quantization;
    private ModelIdentity identity;

    private LoadedModel(Path dir, ModelConfig config, Checkpoint checkpoint, Transformer transformer,
                        ModelTokenizer tokenizer, Quantization quantization) {
        this.quantization = quantization;
        this.dir = dir;
        this.config = config;
        this.checkpoint = checkpoint;
        this.transformer = transformer;
        this.tokenizer = tokenizer;
    }

    /**
     * Opens {@code dir}. Errors say what is wrong with the directory: no config.json, an unsupported
     * architecture, a missing or misshapen tensor (named, with its file), a truncated file.
     *
     * @param progress called with (layers loaded, total layers)
     */
    public static LoadedModel open(Path dir, Kernels kernels, BiConsumer<Integer, Integer> progress)
            throws IOException {
        return open(dir, kernels, progress, null);
    }

    /**
     * As {@link #open(Path, Kernels, BiConsumer)}, with the routed experts of every MoE layer made by
     * {@code routedExperts} (a router whose experts run on expert workers) instead of read from the checkpoint;
     * null: local experts.
     */
    public static LoadedModel open(Path dir, Kernels kernels, BiConsumer<Integer, Integer> progress,
                                   ModelBuilder.RoutedExpertsFactory routedExperts) throws IOException {
        return open(dir, kernels, progress, routedExperts, Quantization.NONE);
    }

    /**
     * As {@link #open(Path, Kernels, BiConsumer, ModelBuilder.RoutedExpertsFactory)}, with the projection weights
     * stored as {@code quantization} says ({@code --quantize}; see {@link Quantization} for which).
     */
    public static LoadedModel open(Path dir, Kernels kernels, BiConsumer<Integer, Integer> progress,
                                   ModelBuilder.RoutedExpertsFactory routedExperts, Quantization quantization)
            throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new IOException("model directory " + dir + " does not exist");
        }
        ModelConfig config = ModelConfig.load(dir);
        long start = System.nanoTime();
        Checkpoint checkpoint = Checkpoint.open(dir);
        try {
            ModelIdentity identity = null;
            QuantizedWeightCache cache = null;
            if (quantization != Quantization.NONE && QuantizedWeightCache.enabled()) {
                // The quantized weights are kept on disk by model identity, which hashes the weight files once
                // (the digests are cached by size and modification time, so later starts read only the cache).
                identity = ModelIdentity.of(dir, checkpoint);
                cache = QuantizedWeightCache.in(QuantizedWeightCache.defaultDir(), identity.hex(), quantization);
            }
            Transformer transformer = new ModelBuilder(config, checkpoint, kernels).onProgress(progress)
                    .routedExperts(routedExperts).quantize(quantization).quantizedCache(cache).build();
            ModelTokenizer tokenizer = ModelTokenizer.loadIfPresent(dir).orElse(null);
            LOG.info("Loaded {} from {}: {} layers, hidden {}, {} routed experts, tokenizer {} ({} ms)",
                    config.architecture().hfName(), dir, config.numLayers(), config.hiddenSize(),
                    config.numRoutedExperts(), tokenizer == null ? "absent" : "present",
                    (System.nanoTime() - start) / 1_000_000);
            LoadedModel loaded = new LoadedModel(dir, config, checkpoint, transformer, tokenizer, quantization);
            loaded.identity = identity;
            return loaded;
        } catch (RuntimeException | IOException e) {
            checkpoint.close();
            throw e;
        }
    }

    public Path dir() {
        return dir;
    }

    /** How the projection weights are held ({@code --quantize}): part of what makes two models' KV interchangeable. */
    /**
     * Whether FP8 weights of this checkpoint were widened to BF16 at load ({@code -Dexpertmesh.fp8=bf16}) instead of
     * read natively: the two compute slightly different values, so their KV blocks are not interchangeable.
     */
    public boolean fp8AsBf16() {
        return checkpoint.fp8Loading() == Fp8Loading.DEQUANTIZE_BF16
                && checkpoint.names().stream().anyMatch(n -> checkpoint.info(n).dtype() == DType.F8_E4M3);
    }

    public Quantization quantization() {
        return quantization;
    }

    public ModelConfig config() {
        return config;
    }

    /**
     * The model's identity (config, tensor names, dtypes, shapes and a SHA-256 of the weights; never the path),
     * computed on first call: reads every weight file once, unless its digest is cached under
     * {@code $EXPERTMESH_CACHE} (see {@link WeightDigests}).
     *
     * @throws UncheckedIOException when a weight file cannot be read
     */
    public synchronized ModelIdentity identity() {
        if (identity == null) {
            long start = System.nanoTime();
            try {
                identity = ModelIdentity.of(dir, checkpoint);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read the weights of " + dir + " to identify the model: "
                        + e.getMessage(), e);
            }
            LOG.info("Model identity {} ({} ms)", identity, (System.nanoTime() - start) / 1_000_000);
        }
        return identity;
    }

    public Transformer transformer() {
        return transformer;
    }

    public Optional<ModelTokenizer> tokenizer() {
        return Optional.ofNullable(tokenizer);
    }

    @Override
    public void close() {
        transformer.close();
        if (tokenizer != null) {
            tokenizer.close();
        }
        checkpoint.close();
    }
}
