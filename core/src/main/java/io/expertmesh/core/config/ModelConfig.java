package io.expertmesh.core.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * The model's shape and behaviour, read once from a Hugging Face {@code config.json}. One record covers all
 * supported families; fields a family does not use hold neutral values (0, false, empty).
 *
 * @param architecture           which forward pass to build
 * @param vocabSize              rows of the embedding and LM head
 * @param hiddenSize             width of the residual stream
 * @param intermediateSize       dense MLP width
 * @param numLayers              decoder layers
 * @param numHeads               attention (query) heads
 * @param numKvHeads             key/value heads (GQA); equal to numHeads for MLA
 * @param headDim                GQA head width
 * @param rmsNormEps             RMSNorm epsilon
 * @param ropeTheta              rotary base
 * @param maxPositions           {@code max_position_embeddings}: the longest sequence served
 * @param ropeScaling            YaRN parameters, or null
 * @param qLoraRank              MLA query compression rank; 0 = plain {@code q_proj}
 * @param kvLoraRank             MLA latent width (what the KV cache stores per token, besides the rope key)
 * @param qkNopeHeadDim          MLA non-rotary query/key head width
 * @param qkRopeHeadDim          MLA rotary query/key head width
 * @param vHeadDim               MLA value head width
 * @param numRoutedExperts       routed experts per MoE layer (0 = dense model)
 * @param expertsPerToken        routed experts chosen per token
 * @param moeIntermediateSize    routed expert width
 * @param sharedExpertSize       width of the always-on shared expert(s) MLP, 0 if none
 * @param sharedExpertGated      Qwen2-MoE: shared expert output scaled by sigmoid(shared_expert_gate·x)
 * @param moeLayers              indices of layers with an MoE feed-forward (the others are dense)
 * @param normTopkProb           renormalise the chosen experts' weights to sum 1
 * @param routedScalingFactor    multiplier on routed expert weights (DeepSeek)
 * @param nGroup                 expert groups (DeepSeek node-limited routing)
 * @param topkGroup              groups kept per token
 * @param scoring                gate scoring function
 * @param attentionBias          q/k/v projections have a bias (Qwen2)
 * @param qkNorm                 per-head RMSNorm on q and k (Qwen3)
 * @param tieWordEmbeddings      LM head shares the embedding matrix
 * @param bosTokenId             begin-of-sequence id, or -1
 * @param eosTokenIds            end-of-sequence ids
 */
public record ModelConfig(
        Architecture architecture,
        int vocabSize, int hiddenSize, int intermediateSize, int numLayers,
        int numHeads, int numKvHeads, int headDim,
        float rmsNormEps, double ropeTheta, int maxPositions, RopeScaling ropeScaling,
        int qLoraRank, int kvLoraRank, int qkNopeHeadDim, int qkRopeHeadDim, int vHeadDim,
        int numRoutedExperts, int expertsPerToken, int moeIntermediateSize,
        int sharedExpertSize, boolean sharedExpertGated, Set<Integer> moeLayers,
        boolean normTopkProb, double routedScalingFactor, int nGroup, int topkGroup, Scoring scoring,
        boolean attentionBias, boolean qkNorm, boolean tieWordEmbeddings,
        int bosTokenId, List<Integer> eosTokenIds) {

    /** How a gate turns router logits into expert scores. */
    public enum Scoring { SOFTMAX, SIGMOID }

    public ModelConfig {
        moeLayers = Set.copyOf(moeLayers);
        eosTokenIds = List.copyOf(eosTokenIds);
        require(vocabSize > 0, "vocab_size must be > 0");
        require(hiddenSize > 0, "hidden_size must be > 0");
        require(numLayers > 0, "num_hidden_layers must be > 0");
        require(numHeads > 0 && numKvHeads > 0 && numHeads % numKvHeads == 0,
                "num_attention_heads (" + numHeads + ") must be a positive multiple of num_key_value_heads ("
                        + numKvHeads + ")");
        require(maxPositions > 0, "max_position_embeddings must be > 0");
        if (architecture.usesMla()) {
            require(kvLoraRank > 0 && qkRopeHeadDim > 0 && qkRopeHeadDim % 2 == 0 && qkNopeHeadDim > 0
                    && vHeadDim > 0, "MLA needs kv_lora_rank, qk_nope_head_dim, v_head_dim > 0 and an even "
                    + "qk_rope_head_dim");
        } else {
            require(headDim > 0 && headDim % 2 == 0, "head_dim must be even and > 0, got " + headDim);
        }
        if (!moeLayers.isEmpty()) {
            require(numRoutedExperts > 0 && expertsPerToken > 0 && expertsPerToken <= numRoutedExperts,
                    "num_experts_per_tok (" + expertsPerToken + ") must be in [1, " + numRoutedExperts + "]");
            require(moeIntermediateSize > 0, "moe_intermediate_size must be > 0");
            require(nGroup >= 1 && numRoutedExperts % nGroup == 0 && topkGroup >= 1 && topkGroup <= nGroup,
                    "n_group (" + nGroup + ") must divide n_routed_experts and topk_group (" + topkGroup
                            + ") must be in [1, n_group]");
            require(topkGroup * (numRoutedExperts / nGroup) >= expertsPerToken,
                    "topk_group groups hold fewer experts than num_experts_per_tok");
        }
        for (int l : moeLayers) {
            require(l >= 0 && l < numLayers, "MoE layer index " + l + " out of range");
        }
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException("config.json: " + message);
        }
    }

    /** Query/key head width for MLA: nope + rope. */
    public int qkHeadDim() {
        return qkNopeHeadDim + qkRopeHeadDim;
    }

    /**
     * Weights read to produce one token alone (batch 1): every attention and dense weight, the gate, the
     * {@code expertsPerToken} routed experts and the shared expert of each MoE layer, and the LM head. The
     * embedding row is negligible and not counted.
     */
    public long activeParamsPerToken() {
        long h = hiddenSize;
        long attn;
        if (architecture.usesMla()) {
            long qOut = (long) numHeads * qkHeadDim();
            long q = qLoraRank > 0 ? qLoraRank * h + qOut * qLoraRank : qOut * h;
            attn = q + (long) (kvLoraRank + qkRopeHeadDim) * h
                    + (long) numHeads * (qkNopeHeadDim + vHeadDim) * kvLoraRank + (long) numHeads * vHeadDim * h;
        } else {
            attn = 2L * numHeads * headDim * h + 2L * numKvHeads * headDim * h;
        }
        long total = attn * numLayers + (long) vocabSize * h;
        for (int l = 0; l < numLayers; l++) {
            if (isMoeLayer(l)) {
                total += (long) numRoutedExperts * h + 3L * h * ((long) expertsPerToken * moeIntermediateSize
                        + sharedExpertSize) + (sharedExpertGated ? h : 0);
            } else {
                total += 3L * h * intermediateSize;
            }
        }
        return total;
    }

    public boolean isMoeLayer(int layer) {
        return moeLayers.contains(layer);
    }

    /** Floats one token occupies in one layer's KV cache: latent + rope key (MLA) or K and V (GQA). */
    public int kvRowWidth() {
        return architecture.usesMla() ? kvLoraRank + qkRopeHeadDim : 2 * numKvHeads * headDim;
    }

    /** True when YaRN corrections apply: only past the pre-training length, as DeepSeek's reference does. */
    public boolean yarnActive() {
        return ropeScaling != null && maxPositions > ropeScaling.originalMaxPositions();
    }

    public static ModelConfig load(Path modelDir) throws IOException {
        Path file = modelDir.resolve("config.json");
        if (!Files.isRegularFile(file)) {
            throw new IOException("no config.json in model directory " + modelDir);
        }
        JsonNode root = new ObjectMapper().readTree(file.toFile());
        try {
            return parse(root);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    public static ModelConfig parse(JsonNode c) {
        JsonNode archs = c.path("architectures");
        if (!archs.isArray() || archs.isEmpty()) {
            throw new IllegalArgumentException("config.json has no 'architectures' list");
        }
        Architecture arch = Architecture.fromHf(archs.get(0).asText());
        int hidden = req(c, "hidden_size");
        int heads = req(c, "num_attention_heads");
        int kvHeads = c.path("num_key_value_heads").asInt(heads);
        int layers = req(c, "num_hidden_layers");
        int headDim = c.hasNonNull("head_dim") ? c.get("head_dim").asInt() : hidden / heads;
        RopeScaling yarn = parseRopeScaling(c.get("rope_scaling"));

        int routed;
        int perTok = c.path("num_experts_per_tok").asInt(0);
        int moeInter = c.path("moe_intermediate_size").asInt(0);
        int sharedSize = 0;
        boolean sharedGated = false;
        boolean normTopk;
        double scale = 1.0;
        int nGroup = 1;
        int topkGroup = 1;
        Scoring scoring = Scoring.SOFTMAX;
        Set<Integer> moeLayers = new TreeSet<>();
        switch (arch) {
            case DEEPSEEK_V3 -> {
                routed = c.path("n_routed_experts").asInt(0);
                int firstDense = c.path("first_k_dense_replace").asInt(0);
                int freq = c.path("moe_layer_freq").asInt(1);
                if (routed > 0) {
                    for (int l = firstDense; l < layers; l++) {
                        if (l % freq == 0) {
                            moeLayers.add(l);
                        }
                    }
                }
                sharedSize = c.path("n_shared_experts").asInt(0) * moeInter;
                normTopk = c.path("norm_topk_prob").asBoolean(true);
                scale = c.path("routed_scaling_factor").asDouble(1.0);
                nGroup = c.path("n_group").asInt(1);
                topkGroup = c.path("topk_group").asInt(1);
                scoring = switch (c.path("scoring_func").asText("sigmoid")) {
                    case "sigmoid" -> Scoring.SIGMOID;
                    case "softmax" -> Scoring.SOFTMAX;
                    default -> throw new IllegalArgumentException("unsupported scoring_func "
                            + c.get("scoring_func"));
                };
                String method = c.path("topk_method").asText("noaux_tc");
                if (!method.equals("noaux_tc") && !method.equals("greedy") && !method.equals("group_limited_greedy")) {
                    throw new IllegalArgumentException("unsupported topk_method " + method);
                }
            }
            case MIXTRAL -> {
                routed = c.path("num_local_experts").asInt(0);
                normTopk = true;
                for (int l = 0; l < layers; l++) {
                    moeLayers.add(l);
                }
                moeInter = req(c, "intermediate_size");
            }
            case QWEN2_MOE, QWEN3_MOE -> {
                routed = c.path("num_experts").asInt(0);
                normTopk = c.path("norm_topk_prob").asBoolean(arch == Architecture.QWEN3_MOE);
                int step = c.path("decoder_sparse_step").asInt(1);
                Set<Integer> mlpOnly = new TreeSet<>();
                c.path("mlp_only_layers").forEach(n -> mlpOnly.add(n.asInt()));
                if (routed > 0) {
                    for (int l = 0; l < layers; l++) {
                        if (!mlpOnly.contains(l) && (l + 1) % step == 0) {
                            moeLayers.add(l);
                        }
                    }
                }
                if (arch == Architecture.QWEN2_MOE) {
                    sharedSize = c.path("shared_expert_intermediate_size").asInt(0);
                    sharedGated = sharedSize > 0;
                }
            }
            default -> throw new IllegalStateException();
        }
        boolean mla = arch.usesMla();
        List<Integer> eos = new ArrayList<>();
        JsonNode eosNode = c.get("eos_token_id");
        if (eosNode != null && eosNode.isArray()) {
            eosNode.forEach(n -> eos.add(n.asInt()));
        } else if (eosNode != null && eosNode.isNumber()) {
            eos.add(eosNode.asInt());
        }
        return new ModelConfig(arch,
                req(c, "vocab_size"), hidden, c.path("intermediate_size").asInt(0), layers,
                heads, mla ? heads : kvHeads, mla ? 0 : headDim,
                (float) c.path("rms_norm_eps").asDouble(1e-6), c.path("rope_theta").asDouble(10000.0),
                req(c, "max_position_embeddings"), yarn,
                mla ? c.path("q_lora_rank").asInt(0) : 0,
                mla ? req(c, "kv_lora_rank") : 0,
                mla ? req(c, "qk_nope_head_dim") : 0,
                mla ? req(c, "qk_rope_head_dim") : 0,
                mla ? req(c, "v_head_dim") : 0,
                routed, perTok, moeInter, sharedSize, sharedGated, moeLayers,
                normTopk, scale, nGroup, topkGroup, scoring,
                c.path("attention_bias").asBoolean(arch == Architecture.QWEN2_MOE) && !mla,
                arch == Architecture.QWEN3_MOE,
                c.path("tie_word_embeddings").asBoolean(false),
                c.path("bos_token_id").asInt(-1), eos);
    }

    private static RopeScaling parseRopeScaling(JsonNode r) {
        if (r == null || r.isNull()) {
            return null;
        }
        String type = r.path("rope_type").asText(r.path("type").asText(""));
        if (type.equals("default")) {
            return null;
        }
        if (!type.equals("yarn")) {
            throw new IllegalArgumentException("unsupported rope_scaling type '" + type + "' (only yarn)");
        }
        return new RopeScaling(r.path("factor").asDouble(1.0),
                r.path("original_max_position_embeddings").asInt(0),
                r.path("beta_fast").asDouble(32), r.path("beta_slow").asDouble(1),
                r.path("mscale").asDouble(1.0), r.path("mscale_all_dim").asDouble(0.0));
    }

    private static int req(JsonNode c, String field) {
        JsonNode n = c.get(field);
        if (n == null || n.isNull() || !n.canConvertToInt()) {
            throw new IllegalArgumentException("config.json is missing integer field '" + field + "'");
        }
        return n.asInt();
    }
}
