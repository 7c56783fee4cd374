package io.expertmesh.core.tensor;

/** Element types found in safetensors checkpoints, with their safetensors names and widths. */
public enum DType {
    F32("F32", 4),
    BF16("BF16", 2),
    F16("F16", 2),
    F8_E4M3("F8_E4M3", 1);

    private final String safetensorsName;
    private final int bytes;

    DType(String safetensorsName, int bytes) {
        this.safetensorsName = safetensorsName;
        this.bytes = bytes;
    }

    public int bytes() {
        return bytes;
    }

    public String safetensorsName() {
        return safetensorsName;
    }

    /** Returns the type named {@code name} in a safetensors header, or null when unsupported. */
    public static DType fromSafetensors(String name) {
        for (DType t : values()) {
            if (t.safetensorsName.equals(name)) {
                return t;
            }
        }
        return null;
    }
}
