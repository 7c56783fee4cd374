package io.expertmesh.worker;

import io.expertmesh.core.config.Architecture;
import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.model.ExpertRunner;
import io.expertmesh.core.model.Mlp;
import io.expertmesh.core.safetensors.Checkpoint;
import io.expertmesh.core.tensor.Matrix;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * The routed experts this worker holds, per MoE layer, mapped from the checkpoint: only the held experts'
 * {@code gate/up/down} matrices are looked up (F32/BF16 tensors are slices of the memory-mapped files, so
 * nothing else is read). Not thread-safe: {@link ExpertExecutor} serialises access.
 */
public final class ExpertShard implements AutoCloseable {
    private final ModelConfig config;
    private final Checkpoint checkpoint;
    /** [layer][expert], null where not held (every entry null for a dense layer). */
    private final Mlp[][] experts;
    /** [layer][expert]: tokens served since the expert was loaded. */
    private final long[][] tokensServed;
    /** [layer]: the layer's experts as a runner, rebuilt after each change; null when stale. */
    private final ExpertRunner[] runners;
    private final ExpertRunner.Factory runnerFactory;

    ExpertShard(ModelConfig config, Checkpoint checkpoint, ExpertRunner.Factory runnerFactory) {
        this.config = config;
        this.checkpoint = checkpoint;
        this.runnerFactory = runnerFactory;
        int layers = config.numLayers();
        this.experts = new Mlp[layers][config.numRoutedExperts()];
        this.tokensServed = new long[layers][config.numRoutedExperts()];
        this.runners = new ExpertRunner[layers];
    }

    /** Opens the model in {@code dir} with no experts loaded yet; experts run on the CPU. */
    public static ExpertShard open(Path dir) {
        return open(dir, ExpertRunner.Factory.CPU);
    }

    /** Opens the model in {@code dir} with no experts loaded yet; experts run on runners {@code factory} makes. */
    public static ExpertShard open(Path dir, ExpertRunner.Factory factory) {
        ModelConfig config;
        try {
            config = ModelConfig.load(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + dir.resolve("config.json"), e);
        }
        return new ExpertShard(config, Checkpoint.open(dir), factory);
    }

    public ModelConfig config() {
        return config;
    }

    /** Makes the runners of this shard's layers. */
    ExpertRunner.Factory runnerFactory() {
        return runnerFactory;
    }

    public Path dir() {
        return checkpoint.dir();
    }

    public boolean isMoeLayer(int layer) {
        return layer >= 0 && layer < config.numLayers() && config.isMoeLayer(layer);
    }

    /** The model's MoE layers, ascending. */
    public int[] moeLayers() {
        return IntStream.range(0, config.numLayers()).filter(this::isMoeLayer).toArray();
    }

    public boolean holds(int layer, int expert) {
        return experts[layer][expert] != null;
    }

    public Mlp expert(int layer, int expert) {
        return experts[layer][expert];
    }

    /** Held expert ids of {@code layer}, ascending. */
    public int[] held(int layer) {
        Mlp[] row = experts[layer];
        return IntStream.range(0, row.length).filter(e -> row[e] != null).toArray();
    }

    /** Maps expert {@code expert} of MoE layer {@code layer}; false if it was already held. */
    public boolean load(int layer, int expert) {
        if (experts[layer][expert] != null) {
            return false;
        }
        experts[layer][expert] = read(layer, expert);
        tokensServed[layer][expert] = 0;
        runners[layer] = null;
        return true;
    }

    /** Drops expert {@code expert} of {@code layer}; false if it was not held. */
    public boolean unload(int layer, int expert) {
        if (experts[layer][expert] == null) {
            return false;
        }
        experts[layer][expert] = null;
        tokensServed[layer][expert] = 0;
        runners[layer] = null;
        return true;
    }

    /** The grouped runner over this layer's held experts (unheld ones are null in it). */
    ExpertRunner runner(int layer) {
        ExpertRunner r = runners[layer];
        if (r == null) {
            r = runnerFactory.create(layer, experts[layer].clone(), config.hiddenSize());
            runners[layer] = r;
        }
        return r;
    }

    void countTokens(int layer, int[] ids, int count) {
        for (int i = 0; i < count; i++) {
            tokensServed[layer][ids[i]]++;
        }
    }

    long tokensServed(int layer, int expert) {
        return tokensServed[layer][expert];
    }

    /** The checkpoint tensors of one routed expert, named as {@code ModelBuilder} names them. */
    private Mlp read(int layer, int expert) {
        int hidden = config.hiddenSize();
        int inter = config.moeIntermediateSize();
        boolean mixtral = config.architecture() == Architecture.MIXTRAL;
        String p = "model.layers." + layer + (mixtral ? ".block_sparse_moe." : ".mlp.") + "experts." + expert + ".";
        String[] names = mixtral ? new String[]{"w1", "w3", "w2"} : new String[]{"gate_proj", "up_proj", "down_proj"};
        Matrix gate = checkpoint.matrix(p + names[0] + ".weight", inter, hidden);
        Matrix up = checkpoint.matrix(p + names[1] + ".weight", inter, hidden);
        Matrix down = checkpoint.matrix(p + names[2] + ".weight", hidden, inter);
        return new Mlp(gate, up, down);
    }

    @Override
    public void close() {
        for (Mlp[] row : experts) {
            Arrays.fill(row, null);
        }
        Arrays.fill(runners, null);
        checkpoint.close();
    }
}
