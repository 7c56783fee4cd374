package io.expertmesh.core.safetensors;

import java.util.Locale;

/**
 * How a {@link Checkpoint} hands out F8_E4M3 weights with block scales (the DeepSeek-V3/R1 release format).
 *
 * <p>The default is {@link #NATIVE}; the system property {@value #PROPERTY} ({@code native} or {@code bf16}) picks
 * the default for every checkpoint opened without an explicit choice, so the old path can be had on any command:
 * {@code JAVA_TOOL_OPTIONS=-Dexpertmesh.fp8=bf16 expertmesh run ...}.
 */
public enum Fp8Loading {
    /**
     * 1 byte per weight: the mapped file's bytes plus the block-scale grid ({@code Matrix}'s F8_E4M3 layout), which
     * the kernels widen on the fly. Tensors this form cannot hold exactly (a {@code weight_block_size} other than
     * 128×128, a scale of 2^8 or more) are dequantized to BF16 as {@link #DEQUANTIZE_BF16} does, with a warning.
     */
    NATIVE,
    /** The pre-native path: every FP8 matrix dequantized at load into an off-heap BF16 copy (2 bytes per weight). */
    DEQUANTIZE_BF16;

    /** The system property naming the default: {@code native} or {@code bf16}. */
    public static final String PROPERTY = "expertmesh.fp8";

    /**
     * The default from {@value #PROPERTY}; {@link #NATIVE} when unset.
     *
     * @throws ModelLoadException for a value other than {@code native} or {@code bf16}
     */
    public static Fp8Loading fromSystemProperty() {
        String v = System.getProperty(PROPERTY, "native").strip().toLowerCase(Locale.ROOT);
        return switch (v) {
            case "native" -> NATIVE;
            case "bf16" -> DEQUANTIZE_BF16;
            default -> throw new ModelLoadException("-D" + PROPERTY + " must be native or bf16, got " + v);
        };
    }
}
