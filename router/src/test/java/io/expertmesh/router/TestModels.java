package io.expertmesh.router;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.synthetic.SyntheticModels;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Models for router tests: the DeepSeek reference fixture, and a small random model with the real tokenizer. */
final class TestModels {
    static final Path FIXTURE = Path.of("../core/src/test/resources/fixtures/deepseek-v3-tiny/f32");

    private TestModels() {
    }

    /**
     * A random DeepSeek-V3-architecture model small enough for tests but with the real tokenizer, a 4,096-token
     * context and enough work per token that prefill time is measurable.
     */
    static Path withTokenizer(Path dir) {
        if (Files.exists(dir.resolve("model.safetensors"))) {
            return dir;
        }
        ObjectNode c = SyntheticModels.randomConfig();
        c.put("hidden_size", 128).put("intermediate_size", 256).put("moe_intermediate_size", 64)
                .put("num_hidden_layers", 3).put("num_attention_heads", 4).put("num_key_value_heads", 4)
                .put("kv_lora_rank", 64).put("q_lora_rank", 96).put("qk_rope_head_dim", 16).put("v_head_dim", 32)
                .put("qk_nope_head_dim", 32).put("n_routed_experts", 8).put("n_group", 2).put("topk_group", 1)
                .put("num_experts_per_tok", 2).put("max_position_embeddings", 4096);
        ((ObjectNode) c.get("rope_scaling")).put("original_max_position_embeddings", 1024);
        try {
            SyntheticModels.writeModelWithTokenizer(c, 99, dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return dir;
    }

    static LoadedModel load(Path dir) {
        return load(dir, null);
    }

    /** {@code dir} with its routed experts made by {@code experts} (null: in process). */
    static LoadedModel load(Path dir, io.expertmesh.core.model.ModelBuilder.RoutedExpertsFactory experts) {
        try {
            return LoadedModel.open(dir, new VectorKernels(ComputePool.create(2)), (a, b) -> { }, experts);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
