package io.expertmesh.core.tensor;

/**
 * Element types of weight matrices, with their safetensors names and widths. All but {@link #I8} and {@link #I4}
 * are found in safetensors checkpoints; those two are made at load ({@code --quantize int8|int4}) and never read
 * from a file.
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
    I8(null, 1),
    /**
     * Signed 4-bit values in [-8, 7], two per byte, with one F16 scale per block of consecutive columns: value =
     * q · scale, as llama.cpp's Q4_0; see {@link Int4Quantizer} for the layout. {@link #bytes()} has no answer
     * (half a byte): use {@link #bytes(long)}.
     */
    I4(null, 0);

    private final String safetensorsName;
    private final int bytes;

    DType(String safetensorsName, int bytes) {
        this.safetensorsName = safetensorsName;
        this.bytes = bytes;
    }

    /**
     * Bytes per element.
     *
     * @throws IllegalStateException for {@link #I4}, whose elements are half a byte
     */
    public int bytes() {
        if (this == I4) {
            throw new IllegalStateException("I4 packs two values per byte: use bytes(elements)");
        }
        return bytes;
    }

    /** Bytes that {@code elements} values take (scales not included); for {@link #I4} an even count. */
    public long bytes(long elements) {
        return this == I4 ? elements / 2 : elements * bytes;
    }

    /** Whether matrices of this type carry per-block scales ({@link #I8}, {@link #I4}: made at load). */
    public boolean blockQuantized() {
        return this == I8 || this == I4;
    }

    /** The name in a safetensors header; null for {@link #I8} and {@link #I4}, which no checkpoint holds. */
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
