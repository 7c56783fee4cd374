package io.expertmesh.core.model;

import io.expertmesh.core.config.Architecture;
import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Fp8Matrix;
import io.expertmesh.core.tensor.Matrix;
import io.expertmesh.core.tensor.Quantization;
import io.expertmesh.core.tensor.WeightSource;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.function.BiConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Builds a {@link Transformer} from a config and Hugging Face-named weights. Every shape is checked against
 * config.json by the weight source, so a checkpoint that disagrees fails here, naming the tensor.
 */
public final class ModelBuilder {
    private static final Logger LOG = LoggerFactory.getLogger(ModelBuilder.class);

    private final ModelConfig c;
    private final WeightSource w;
    private final Kernels kernels;
    private BiConsumer<Integer, Integer> progress = (done, total) -> { };
    private RoutedExpertsFactory routedExperts;
    private Quantization quantization = Quantization.NONE;
    private QuantizedWeightCache cache;
    private Arena arena;
    /** Weight bytes one token's forward pass reads (batch 1): every projection, top-k routed experts, the head. */
    private long activeWeightBytes;
    private int quantized;
    private int kept;
    /** Whether {@link #q} copied a mapped matrix (woven or quantized), so the mapped pages can go after the build. */
    private boolean copiedFromMap;

    public ModelBuilder(ModelConfig config, WeightSource weights, Kernels kernels) {
        this.c = config;
        this.w = weights;
        this.kernels = kernels;
    }

    /** Called with (layers built, total layers) after each layer: loading a large checkpoint takes a while. */
    public ModelBuilder onProgress(BiConsumer<Integer, Integer> listener) {
        this.progress = listener;
        return this;
    }

    /**
     * Where the routed experts of each MoE layer run instead of in this process (a router whose experts are on
     * expert workers): their weights are then not read here.
     */
    public ModelBuilder routedExperts(RoutedExpertsFactory factory) {
        this.routedExperts = factory;
        return this;
    }

    /**
     * How the projection weights are stored ({@code --quantize}); default {@link Quantization#NONE}. Which
     * matrices are quantized and which stay is documented on {@link Quantization}.
     */
    public ModelBuilder quantize(Quantization q) {
        this.quantization = java.util.Objects.requireNonNull(q, "quantization");
        return this;
    }

    /**
     * Where the quantized weights of an earlier load are mapped from, and this load's are written to (see
     * {@link QuantizedWeightCache}); null (the default): quantize at every load. Used only with {@link #quantize}.
     */
    public ModelBuilder quantizedCache(QuantizedWeightCache cache) {
        this.cache = cache;
        return this;
    }

    /**
     * After {@link #build()}: the weight bytes one token reads at batch 1 (attention, dense and shared MLPs, the
     * router gate, the top-k routed experts of each MoE layer, the LM head), as stored (so int8 and int4 count their
     * scales).
     */
    public long activeWeightBytes() {
        return activeWeightBytes;
    }

    /** Makes the routed experts of one MoE layer. */
    @FunctionalInterface
    public interface RoutedExpertsFactory {
        RoutedExperts forLayer(int layer);
    }

    public Transformer build() {
        int hidden = c.hiddenSize();
        Arena arena = Arena.ofShared();
        this.arena = arena;
        activeWeightBytes = 0;
        copiedFromMap = false;
        QuantizedWeightCache files = quantization == Quantization.NONE ? null : cache;
        try {
            if (files != null) {
                files.load(arena);
            }
            // The embedding stays as stored: a token reads one row of it, not the whole matrix.
            Matrix embed = w.matrix("model.embed_tokens.weight", c.vocabSize(), hidden);
            Block[] blocks = new Block[c.numLayers()];
            for (int l = 0; l < blocks.length; l++) {
                String p = "model.layers." + l + ".";
                Attention attn = c.architecture().usesMla() ? mla(p + "self_attn.", arena) : gqa(p + "self_attn.");
                FeedForward ffn = c.isMoeLayer(l) ? moe(p, l) : dense(p + "mlp.");
                blocks[l] = new Block(w.vector(p + "input_layernorm.weight", hidden), attn,
                        w.vector(p + "post_attention_layernorm.weight", hidden), ffn, c.rmsNormEps(), hidden);
                progress.accept(l + 1, blocks.length);
            }
            // The LM head is quantized too (a tied head gets its own copy; the embedding stays): it is the largest
            // single matrix a token reads. Under int4 it is int8: its error goes straight into the logits, so it is
            // where 4 bits cost most (llama.cpp's Q4_0 keeps it at Q6_K for the same reason; on the default model
            // an int4 head gave 1.5x llama.cpp's Q4_0 mean KL divergence, 9.5e-3 against 6.2e-3).
            Quantization headFormat = quantization == Quantization.INT4 ? Quantization.INT8 : quantization;
            Matrix head = q(c.tieWordEmbeddings() && !w.has("lm_head.weight") ? embed
                    : w.matrix("lm_head.weight", c.vocabSize(), hidden), headFormat);
            if (files != null) {
                files.finish();
            }
            if (copiedFromMap) {
                // What stays mapped-in after the per-matrix releases: pages around each copied matrix that the
                // kernel maps in with its neighbours' (fault-around), pieces read through transposes (MLA's W_UK).
                w.releaseResident();
            }
            if (quantization != Quantization.NONE) {
                LOG.info("Weights {}: {} matrices quantized, {} kept (K not a multiple of the 32-column block, or "
                        + "embedding/router gate); {} MB read per token", quantization.label(), quantized, kept,
                        activeWeightBytes / 1_000_000);
            }
            int ropeDim = c.architecture().usesMla() ? c.qkRopeHeadDim() : c.headDim();
            Rope rope = new Rope(ropeDim, c.ropeTheta(), c.ropeScaling(), c.yarnActive());
            return new Transformer(c, embed, blocks, w.vector("model.norm.weight", hidden), head, rope, kernels,
                    arena);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private Attention mla(String p, Arena arena) {
        int hidden = c.hiddenSize();
        int heads = c.numHeads();
        int qOut = heads * c.qkHeadDim();
        Matrix qA = null;
        float[] qANorm = null;
        Matrix qB;
        if (c.qLoraRank() > 0) {
            qA = q(w.matrix(p + "q_a_proj.weight", c.qLoraRank(), hidden));
            qANorm = w.vector(p + "q_a_layernorm.weight", c.qLoraRank());
            qB = q(w.matrix(p + "q_b_proj.weight", qOut, c.qLoraRank()));
        } else {
            qB = q(w.matrix(p + "q_proj.weight", qOut, hidden));
        }
        int kvLora = c.kvLoraRank();
        Matrix kvA = q(w.matrix(p + "kv_a_proj_with_mqa.weight", kvLora + c.qkRopeHeadDim(), hidden));
        float[] kvANorm = w.vector(p + "kv_a_layernorm.weight", kvLora);
        int perHead = c.qkNopeHeadDim() + c.vHeadDim();
        Matrix kvB = w.matrix(p + "kv_b_proj.weight", heads * perHead, kvLora);
        if (kvB.dtype() == DType.F8_E4M3 && !fp8PiecesSliceable(kvB, heads, perHead, c.qkNopeHeadDim())) {
            // The per-head pieces must be whole 128-row blocks of scales (DeepSeek-V3's 128 + 128 are) or lie
            // inside one (64 + 64) to stay FP8, sharing the checkpoint's bytes. Other head sizes get kv_b as the
            // exact F32 values the FP8 kernels would use (4 bytes a weight): BF16 would round them, and the tiny
            // fixtures' MLA amplifies that to ~0.1 in log-probabilities.
            kvB = Fp8Matrix.toF32(kvB, arena);
        }
        Matrix[] wUkT = new Matrix[heads];
        Matrix[] wUv = new Matrix[heads];
        for (int h = 0; h < heads; h++) {
            // Quantized per piece, after the transpose: the int8/int4 blocks must run along each piece's own K.
            wUkT[h] = q(transpose(kvB.rowSlice(h * perHead, c.qkNopeHeadDim(), kvB.name() + "[uk " + h + "]"),
                    arena));
            wUv[h] = q(kvB.rowSlice(h * perHead + c.qkNopeHeadDim(), c.vHeadDim(), kvB.name() + "[uv " + h + "]"));
        }
        Matrix o = q(w.matrix(p + "o_proj.weight", hidden, heads * c.vHeadDim()));
        return new Mla(c, qA, qANorm, qB, kvA, kvANorm, wUkT, wUv, o);
    }

    /** Whether every head's W_UK and W_UV rows of an FP8 kv_b can be FP8 slices ({@link Matrix#fp8RowSliceable}). */
    private static boolean fp8PiecesSliceable(Matrix kvB, int heads, int perHead, int nope) {
        for (int h = 0; h < heads; h++) {
            if (!kvB.fp8RowSliceable(h * perHead, nope) || !kvB.fp8RowSliceable(h * perHead + nope, perHead - nope)) {
                return false;
            }
        }
        return true;
    }

    private Attention gqa(String p) {
        int hidden = c.hiddenSize();
        int qw = c.numHeads() * c.headDim();
        int kw = c.numKvHeads() * c.headDim();
        boolean bias = c.attentionBias();
        return new Gqa(c,
                q(w.matrix(p + "q_proj.weight", qw, hidden)),
                q(w.matrix(p + "k_proj.weight", kw, hidden)),
                q(w.matrix(p + "v_proj.weight", kw, hidden)),
                q(w.matrix(p + "o_proj.weight", hidden, qw)),
                bias ? w.vector(p + "q_proj.bias", qw) : null,
                bias ? w.vector(p + "k_proj.bias", kw) : null,
                bias ? w.vector(p + "v_proj.bias", kw) : null,
                c.qkNorm() ? w.vector(p + "q_norm.weight", c.headDim()) : null,
                c.qkNorm() ? w.vector(p + "k_norm.weight", c.headDim()) : null);
    }

    private Mlp dense(String p) {
        return mlp(p, c.intermediateSize(), "gate_proj", "up_proj", "down_proj");
    }

    private Mlp mlp(String p, int inter, String gate, String up, String down) {
        int hidden = c.hiddenSize();
        return new Mlp(q(w.matrix(p + gate + ".weight", inter, hidden)),
                q(w.matrix(p + up + ".weight", inter, hidden)), q(w.matrix(p + down + ".weight", hidden, inter)));
    }

    private Moe moe(String layerPrefix, int layer) {
        int hidden = c.hiddenSize();
        int n = c.numRoutedExperts();
        boolean mixtral = c.architecture() == Architecture.MIXTRAL;
        String p = layerPrefix + (mixtral ? "block_sparse_moe." : "mlp.");
        // The router gate stays as stored: small, and an error there changes which experts run.
        Matrix gateW = keep(w.matrix(p + "gate.weight", n, hidden));
        String biasName = p + "gate.e_score_correction_bias";
        float[] bias = w.has(biasName) ? w.vector(biasName, n) : null;
        Gate gate = new Gate(gateW, bias, c.scoring(), c.expertsPerToken(), c.nGroup(), c.topkGroup(),
                c.normTopkProb(), c.routedScalingFactor());
        RoutedExperts routed = routedExperts == null ? localExperts(p, mixtral)
                : routedExperts.forLayer(layer);
        Mlp shared = null;
        Matrix sharedGate = null;
        if (c.sharedExpertSize() > 0) {
            String sp = c.architecture() == Architecture.QWEN2_MOE ? p + "shared_expert." : p + "shared_experts.";
            shared = mlp(sp, c.sharedExpertSize(), "gate_proj", "up_proj", "down_proj");
            if (c.sharedExpertGated()) {
                sharedGate = keep(w.matrix(p + "shared_expert_gate.weight", 1, hidden));
            }
        }
        return new Moe(gate, routed, shared, sharedGate, hidden);
    }

    private LocalExperts localExperts(String p, boolean mixtral) {
        Mlp[] experts = new Mlp[c.numRoutedExperts()];
        long before = activeWeightBytes;
        for (int e = 0; e < experts.length; e++) {
            String ep = p + "experts." + e + ".";
            experts[e] = mixtral ? mlp(ep, c.moeIntermediateSize(), "w1", "w3", "w2")
                    : mlp(ep, c.moeIntermediateSize(), "gate_proj", "up_proj", "down_proj");
        }
        // A token reads top-k of the layer's experts, not all of them.
        activeWeightBytes = before + (activeWeightBytes - before) / experts.length * c.expertsPerToken();
        return new LocalExperts(experts, c.hiddenSize());
    }

    /** {@code m} stored as {@link #quantize} asks, counted in {@link #activeWeightBytes()}. */
    private Matrix q(Matrix m) {
        return q(m, quantization);
    }

    /**
     * {@code m} stored as {@code format}, in the layout the kernels read ({@link Kernels#prepare}), counted in
     * {@link #activeWeightBytes()}.
     */
    private Matrix q(Matrix m, Quantization format) {
        Matrix out = cache != null ? cache.apply(m, format, arena) : format.apply(m, arena);
        if (out != m) {
            quantized++;
        } else if (quantization != Quantization.NONE) {
            kept++;
        }
        activeWeightBytes += out.byteSize();
        Matrix ready = kernels.prepare(out);
        copiedFromMap |= releaseCopied(m, ready);
        return ready;
    }

    /**
     * If {@code copy} holds its own bytes and {@code source} is mapped from a file, lets go of the source's resident
     * pages: they were read once to make the copy and are not read again, so they need not stay resident beside it
     * until the build ends (the kernels do the same slab by slab when they weave). Returns whether it did.
     */
    static boolean releaseCopied(Matrix source, Matrix copy) {
        if (copy.data() == source.data() || !source.data().isMapped()) {
            return false;
        }
        source.data().unload();
        return true;
    }

    /** {@code m} as stored whatever {@link #quantize} says, counted in {@link #activeWeightBytes()}. */
    private Matrix keep(Matrix m) {
        if (quantization != Quantization.NONE) {
            kept++;
        }
        activeWeightBytes += m.byteSize();
        return m;
    }

    /** A same-dtype transposed copy, so the absorbed query product reads rows contiguously. */
    static Matrix transpose(Matrix m, Arena arena) {
        if (m.dtype().blockQuantized()) {
            throw new IllegalArgumentException(m.name() + ": transpose before quantizing, not after");
        }
        if (m.dtype() == DType.F8_E4M3) {
            return Fp8Matrix.transpose(m, arena, m.name() + "ᵀ");
        }
        int bytes = m.dtype().bytes();
        MemorySegment dst = arena.allocate((long) m.rows() * m.cols() * bytes, 8);
        MemorySegment src = m.data();
        for (int r = 0; r < m.rows(); r++) {
            for (int col = 0; col < m.cols(); col++) {
                long from = ((long) r * m.cols() + col) * bytes;
                long to = ((long) col * m.rows() + r) * bytes;
                if (bytes == 4) {
                    dst.set(ValueLayout.JAVA_INT_UNALIGNED, to, src.get(ValueLayout.JAVA_INT_UNALIGNED, from));
                } else {
                    dst.set(ValueLayout.JAVA_SHORT_UNALIGNED, to, src.get(ValueLayout.JAVA_SHORT_UNALIGNED, from));
                }
            }
        }
        return new Matrix(m.name() + "ᵀ", m.dtype(), m.cols(), m.rows(), dst);
    }
}
