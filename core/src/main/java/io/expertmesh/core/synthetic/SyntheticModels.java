package io.expertmesh.core.synthetic;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.kernel.ScalarKernels;
import io.expertmesh.core.model.ModelBuilder;
import io.expertmesh.core.model.Transformer;
import io.expertmesh.core.safetensors.SafetensorsWriter;
import io.expertmesh.core.tensor.Matrix;
import io.expertmesh.core.tokenizer.TokenizerResources;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.Map;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Models that need no download: random DeepSeek-V3-architecture weights in a real Hugging Face layout.
 * <ul>
 *   <li>the random model ({@link #ensureRandomModel}, {@code --random-model}): small, with the real DeepSeek-V3
 *       tokenizer and its 129,280-token vocabulary, written once into a cache directory so every command (and the
 *       checkpoint loader) treats it like any downloaded model. It was the default model before the trained one
 *       (module {@code default-model}); tests and benchmarks that want the real tokenizer's size keep it;</li>
 *   <li>the benchmark model ({@link #benchConfig}): the shape of the llama.cpp comparison in the foundation
 *       issue (hidden 1024, 8 layers, 16 experts top-4), built in memory.</li>
 * </ul>
 * The weights are random, so their text is gibberish; they exist to exercise and measure the system.
 */
public final class SyntheticModels {
    private static final Logger LOG = LoggerFactory.getLogger(SyntheticModels.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Bump when the random model's shape or generation changes, so stale caches are not reused. */
    static final String RANDOM_MODEL_NAME = "deepseek-v3-random-v1";
    static final long SEED = 20261128L;

    private SyntheticModels() {
    }

    /** The random model's config.json: DeepSeek-V3 architecture at 1/28 width, vocabulary of the real model. */
    public static ObjectNode randomConfig() {
        ObjectNode c = deepseekBase();
        c.put("vocab_size", 129280).put("hidden_size", 256).put("intermediate_size", 768)
                .put("moe_intermediate_size", 192).put("num_hidden_layers", 4).put("num_attention_heads", 8)
                .put("num_key_value_heads", 8).put("n_shared_experts", 1).put("n_routed_experts", 16)
                .put("routed_scaling_factor", 2.5).put("kv_lora_rank", 128).put("q_lora_rank", 192)
                .put("qk_rope_head_dim", 16).put("v_head_dim", 32).put("qk_nope_head_dim", 32)
                .put("n_group", 4).put("topk_group", 2).put("num_experts_per_tok", 4)
                .put("first_k_dense_replace", 1).put("max_position_embeddings", 16384);
        c.putObject("rope_scaling").put("type", "yarn").put("rope_type", "yarn").put("factor", 4.0)
                .put("original_max_position_embeddings", 4096).put("beta_fast", 32).put("beta_slow", 1)
                .put("mscale", 1.0).put("mscale_all_dim", 1.0);
        return c;
    }

    /**
     * DeepSeek-V3's attention shapes (16 heads of a TP-8 shard, kv_lora 512, rope 64, nope 128, v 128) in a model
     * small enough to write in a second: hidden 256, 2 layers (the first dense), 8 experts top-2, vocabulary 1024.
     * The GPU check runs the device forward pass on it, the only fixture that takes the fast MLA kernel.
     */
    public static ObjectNode v3AttentionConfig() {
        ObjectNode c = deepseekBase();
        c.put("vocab_size", 1024).put("hidden_size", 256).put("intermediate_size", 512)
                .put("moe_intermediate_size", 128).put("num_hidden_layers", 2).put("num_attention_heads", 16)
                .put("num_key_value_heads", 16).put("n_shared_experts", 1).put("n_routed_experts", 8)
                .put("routed_scaling_factor", 2.5).put("kv_lora_rank", 512).put("q_lora_rank", 384)
                .put("qk_rope_head_dim", 64).put("v_head_dim", 128).put("qk_nope_head_dim", 128)
                .put("n_group", 1).put("topk_group", 1).put("num_experts_per_tok", 2)
                .put("first_k_dense_replace", 1).put("max_position_embeddings", 4096);
        return c;
    }

    /**
     * The benchmark model: hidden 1024, 8 layers (first dense, intermediate 2816), 16 routed experts top-4
     * (moe intermediate 704) + 1 shared, q_lora 384, kv_lora 256, qk_nope 64, qk_rope 32, v 64, vocab 32000,
     * 16 heads — about 280 MB of BF16 weights read per decoded token.
     */
    public static ObjectNode benchConfig() {
        ObjectNode c = deepseekBase();
        c.put("vocab_size", 32000).put("hidden_size", 1024).put("intermediate_size", 2816)
                .put("moe_intermediate_size", 704).put("num_hidden_layers", 8).put("num_attention_heads", 16)
                .put("num_key_value_heads", 16).put("n_shared_experts", 1).put("n_routed_experts", 16)
                .put("routed_scaling_factor", 2.5).put("kv_lora_rank", 256).put("q_lora_rank", 384)
                .put("qk_rope_head_dim", 32).put("v_head_dim", 64).put("qk_nope_head_dim", 64)
                .put("n_group", 1).put("topk_group", 1).put("num_experts_per_tok", 4)
                .put("first_k_dense_replace", 1).put("max_position_embeddings", 4096);
        c.putNull("rope_scaling");
        return c;
    }

    private static ObjectNode deepseekBase() {
        ObjectNode c = JSON.createObjectNode();
        c.putArray("architectures").add("DeepseekV3ForCausalLM");
        c.put("model_type", "deepseek_v3").put("topk_method", "noaux_tc").put("scoring_func", "sigmoid")
                .put("norm_topk_prob", true).put("moe_layer_freq", 1).put("hidden_act", "silu")
                .put("rms_norm_eps", 1e-6).put("rope_theta", 10000.0).put("bos_token_id", 0)
                .put("eos_token_id", 1).put("tie_word_embeddings", false).put("attention_bias", false)
                .put("torch_dtype", "bfloat16");
        return c;
    }

    /** The benchmark model written as a checkpoint (about 350 MB) under {@code cacheRoot}, once. */
    public static Path ensureBenchModel(Path cacheRoot) {
        Path dir = cacheRoot.resolve("models").resolve("deepseek-v3-bench-v1");
        if (Files.isRegularFile(dir.resolve("model.safetensors"))) {
            return dir;
        }
        try {
            Files.createDirectories(dir.getParent());
            Path tmp = Files.createTempDirectory(dir.getParent(), "bench.tmp");
            writeModel(benchConfig(), 7, tmp);
            Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the benchmark model under " + cacheRoot, e);
        }
    }

    /** {@code $EXPERTMESH_CACHE}, else {@code ~/.cache/expertmesh}. */
    public static Path defaultCacheRoot() {
        String env = System.getenv("EXPERTMESH_CACHE");
        return env != null && !env.isBlank() ? Path.of(env)
                : Path.of(System.getProperty("user.home"), ".cache", "expertmesh");
    }

    /**
     * Returns the random model's directory under {@code cacheRoot}, generating it (about 140 MB, a few seconds)
     * on first use. Generation writes to a temporary directory and renames it, so an interrupted run leaves
     * nothing half-written behind.
     */
    public static Path ensureRandomModel(Path cacheRoot) {
        Path dir = cacheRoot.resolve("models").resolve(RANDOM_MODEL_NAME);
        if (Files.isRegularFile(dir.resolve("model.safetensors"))) {
            return dir;
        }
        try {
            Files.createDirectories(dir.getParent());
            Path tmp = Files.createTempDirectory(dir.getParent(), RANDOM_MODEL_NAME + ".tmp");
            LOG.info("Generating the random model into {} (first use only)", dir);
            writeModelWithTokenizer(randomConfig(), SEED, tmp);
            try {
                Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException raced) {
                // Another process finished first: use its copy.
                deleteTree(tmp);
                if (!Files.isRegularFile(dir.resolve("model.safetensors"))) {
                    throw raced;
                }
            }
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the random model under " + cacheRoot, e);
        }
    }

    /**
     * Writes a random model with this config plus the DeepSeek-V3 tokenizer files into {@code dir} (the config's
     * vocabulary must cover the tokenizer's 128,815 ids).
     */
    public static void writeModelWithTokenizer(ObjectNode configJson, long seed, Path dir) throws IOException {
        writeModel(configJson, seed, dir);
        Path tokenizer = TokenizerResources.extractDeepSeekV3(dir.resolve("tokenizer-cache"));
        try (Stream<Path> files = Files.list(tokenizer)) {
            for (Path f : files.toList()) {
                Files.move(f, dir.resolve(f.getFileName()));
            }
        }
        deleteTree(dir.resolve("tokenizer-cache"));
    }

    /** Writes config.json and model.safetensors of a random model with this config into {@code dir}. */
    public static void writeModel(ObjectNode configJson, long seed, Path dir) throws IOException {
        Files.createDirectories(dir);
        JSON.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("config.json").toFile(), configJson);
        ModelConfig config = ModelConfig.parse(configJson);
        try (RandomWeights weights = new RandomWeights(seed, true)) {
            // Building the model asks for every tensor it needs, by name and shape: exactly the checkpoint.
            try (Transformer ignored = new ModelBuilder(config, weights, new ScalarKernels()).build()) {
                SafetensorsWriter writer = new SafetensorsWriter();
                for (Map.Entry<String, Object> e : weights.issued().entrySet()) {
                    if (e.getValue() instanceof Matrix m) {
                        writer.add(e.getKey(), m.dtype(), m.data(), m.rows(), m.cols());
                    } else {
                        float[] v = (float[]) e.getValue();
                        writer.addF32(e.getKey(), v, v.length);
                    }
                }
                writer.write(dir.resolve("model.safetensors"));
            }
        }
    }

    private static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(p)) {
            for (Path x : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(x);
            }
        }
    }
}
