package io.expertmesh.cuda;

/** The kind of one kernel parameter as the launchers pass it, and which PTX parameter types it fits. */
public enum KernelParam {
    /** A device address (a 64-bit PTX parameter). */
    PTR,
    /** A 32-bit integer. */
    I32,
    /** A 32-bit float. */
    F32;

    /** Whether a PTX parameter of type {@code ptxType} ({@code u64}, {@code s32}, {@code f32}, ...) takes this. */
    public boolean fits(String ptxType) {
        return switch (this) {
            case PTR -> ptxType.equals("u64") || ptxType.equals("s64") || ptxType.equals("b64");
            case I32 -> ptxType.equals("u32") || ptxType.equals("s32") || ptxType.equals("b32");
            case F32 -> ptxType.equals("f32");
        };
    }
}
