package io.expertmesh.core.model;

import io.expertmesh.core.tensor.Matrix;
import io.expertmesh.core.tensor.Quantization;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import java.util.HashMap;
import java.util.Map;

/**
 * An expert worker's CPU runners with quantized weights: the worker maps its experts from the checkpoint as
 * stored (BF16 slices of the file, FP8 dequantized) and this factory makes the quantized copies the runner
 * reads. A layer's runner is rebuilt whenever its held experts change, so copies are kept per layer by source
 * matrix and reused; those of experts no longer held are dropped with the old runner (their memory is freed by
 * the garbage collector: {@link Arena#ofAuto()}).
 *
 * <p>With a cache directory, each expert's three quantized matrices are also kept in a file of their own
 * ({@code L<layer>-E<expert>.emq}, a {@link QuantizedWeightCache}) and mapped from it the next time the expert is
 * loaded, by this worker after a restart or a rebalance; one file per expert because a worker holds an arbitrary,
 * changing subset of them.
 */
final class QuantizedExperts implements ExpertRunner.Factory {
    private static final Logger LOG = LoggerFactory.getLogger(QuantizedExperts.class);
    private final Quantization quantization;
    private final Path cacheDir;
    private final String identity;
    /** Per layer: source matrix → its quantized copy, for the experts the layer's current runner holds. */
    private final Map<Integer, Map<Matrix, Matrix>> copies = new HashMap<>();

    /** Quantizing at every load. */
    QuantizedExperts(Quantization quantization) {
        this(quantization, null, null);
    }

    /** Keeping each expert's copies in {@code cacheDir} (null: none) for the model with {@code identity}. */
    QuantizedExperts(Quantization quantization, Path cacheDir, String identity) {
        this.quantization = quantization;
        this.cacheDir = cacheDir;
        this.identity = identity;
    }

    @Override
    public synchronized ExpertRunner create(int layer, Mlp[] experts, int hidden) {
        Map<Matrix, Matrix> old = copies.getOrDefault(layer, Map.of());
        Map<Matrix, Matrix> now = new HashMap<>();
        Mlp[] quantized = new Mlp[experts.length];
        int mapped = 0;
        int made = 0;
        for (int e = 0; e < experts.length; e++) {
            Mlp m = experts[e];
            if (m == null) {
                continue;
            }
            Matrix g = old.get(m.gate());
            Matrix u = old.get(m.up());
            Matrix d = old.get(m.down());
            if (g == null || u == null || d == null) {
                Arena arena = Arena.ofAuto();
                QuantizedWeightCache file = cacheDir == null ? null
                        : QuantizedWeightCache.at(cacheDir.resolve("L" + layer + "-E" + e + ".emq"), identity,
                                quantization);
                if (file != null) {
                    file.load(arena);
                    g = file.apply(m.gate(), quantization, arena);
                    u = file.apply(m.up(), quantization, arena);
                    d = file.apply(m.down(), quantization, arena);
                    file.finish();
                    mapped += file.hits() > 0 ? 1 : 0;
                    made += file.hits() > 0 ? 0 : 1;
                } else {
                    g = quantization.apply(m.gate(), arena);
                    u = quantization.apply(m.up(), arena);
                    d = quantization.apply(m.down(), arena);
                    made++;
                }
                ModelBuilder.releaseCopied(m.gate(), g);
                ModelBuilder.releaseCopied(m.up(), u);
                ModelBuilder.releaseCopied(m.down(), d);
            }
            now.put(m.gate(), g);
            now.put(m.up(), u);
            now.put(m.down(), d);
            quantized[e] = new Mlp(g, u, d);
        }
        copies.put(layer, now);
        if (mapped + made > 0) {
            LOG.info("Layer {} experts {}: {} mapped from the quantized cache, {} quantized now", layer,
                    quantization.label(), mapped, made);
        }
        return new LocalExperts(quantized, hidden);
    }
}
