package io.expertmesh.core.tensor;

/**
 * Element types of weight matrices, with their safetensors names and widths. All but {@link #I8} are found in
 * safetensors checkpoints; {@link #I8} is made at load ({@code --quantize int8}) and never read from a file.
 */
public enum DType {
    F32("F32", 4),
    BF16("BF16", 2),
    F16("F16", 2),
    F8_E4M3("F8_E4M3", 1),
    /**
     * Signed int8 values with one F32 scale per block of consecutive columns (along K, the input dimension):
     * value = q · scale, as llama.cpp's Q8_0 but with an F32 scale; see {@link Int8Quantizer}. The
     * {@link Matrix} holds the scales in its second segment. {@link #bytes()} is the width of the values only.
     */
    I8(null, 1);

    private final String safetensorsName;
    private final int bytes;

    DType(String safetensorsName, int bytes) {
        this.safetensorsName = safetensorsName;
        this.bytes = bytes;
    }

    public int bytes() {
        return bytes;
    }

    /** The name in a safetensors header; null for {@link #I8}, which no checkpoint holds. */
    public String safetensorsName() {
        return safetensorsName;
    }

    /** Returns the type named {@code name} in a safetensors header, or null when unsupported. */
    public static DType fromSafetensors(String name) {
        for (DType t : values()) {
            if (t.safetensorsName != null && t.safetensorsName.equals(name)) {
                return t;
            }
        }
        return null;
    }
}
