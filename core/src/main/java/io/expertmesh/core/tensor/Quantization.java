package io.expertmesh.core.tensor;

import java.lang.foreign.Arena;
import java.util.Locale;

/**
 * How the loader stores a model's projection weights ({@code --quantize}): {@link #NONE} as the checkpoint has
 * them (F32/BF16, and FP8 with its block scales, 1 byte per weight; {@code -Dexpertmesh.fp8=bf16} dequantizes FP8
 * to BF16 instead), {@link #INT8} as {@link DType#I8} with per-block scales made at load (from FP8 too),
 * {@link #INT4} as {@link DType#I4} (Q4_0-style, F16 scales) likewise.
 *
 * <p>Which matrices: the loader ({@code ModelBuilder}, and a worker's expert runners) applies this to the linear
 * projections that decode streams every token: attention (q/k/v/o, MLA's q_a/q_b/kv_a, the per-head
 * W_UKᵀ/W_UV pieces of kv_b and o), dense and shared MLPs, every routed expert and the LM head. It keeps the
 * token embedding (one row is read per token, so it costs no bandwidth), the MoE router's gate (small, and an
 * error there changes which experts run, not just a value), the shared-expert gate (one row) and every norm and
 * bias (vectors) as they are. A matrix whose K is not a multiple of the block (32 for both) stays unquantized.
 */
public enum Quantization {
    NONE,
    INT8,
    INT4;

    /**
     * {@code m} stored this way: itself for {@link #NONE}, when already block-quantized (I8 or I4), or when its
     * columns are not whole blocks; else an int8 or int4 copy in {@code arena}.
     */
    public Matrix apply(Matrix m, Arena arena) {
        if (!changes(m)) {
            return m;
        }
        return this == INT8 ? Int8Quantizer.quantize(m, Int8Quantizer.DEFAULT_BLOCK, arena)
                : Int4Quantizer.quantize(m, Int4Quantizer.DEFAULT_BLOCK, arena);
    }

    /** Whether {@link #apply} makes a copy of {@code m} (else it returns {@code m} itself). */
    public boolean changes(Matrix m) {
        return switch (this) {
            case NONE -> false;
            case INT8 -> !m.dtype().blockQuantized() && Int8Quantizer.fits(m.cols(), Int8Quantizer.DEFAULT_BLOCK);
            case INT4 -> !m.dtype().blockQuantized() && Int4Quantizer.fits(m.cols(), Int4Quantizer.DEFAULT_BLOCK);
        };
    }

    /** The dtype of the copies {@link #apply} makes; null for {@link #NONE}. */
    public DType dtype() {
        return switch (this) {
            case NONE -> null;
            case INT8 -> DType.I8;
            case INT4 -> DType.I4;
        };
    }

    /** The command-line spelling: {@code none}, {@code int8}, {@code int4}. */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }
}
