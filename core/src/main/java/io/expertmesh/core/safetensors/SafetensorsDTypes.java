package io.expertmesh.core.safetensors;

import java.util.Map;

/**
 * Element widths of every dtype the safetensors format defines, loadable by ExpertMesh or not.
 *
 * <p>A file is validated against this table (offsets must match shape × width for every tensor), so a checkpoint
 * that carries, say, an I64 buffer beside its weights still opens; only asking for that tensor as a matrix fails.
 * A dtype missing here is not safetensors at all and fails the open.
 */
final class SafetensorsDTypes {
    private static final Map<String, Integer> WIDTHS = Map.ofEntries(
            Map.entry("BOOL", 1), Map.entry("U8", 1), Map.entry("I8", 1),
            Map.entry("F8_E4M3", 1), Map.entry("F8_E5M2", 1), Map.entry("F8_E8M0", 1),
            Map.entry("I16", 2), Map.entry("U16", 2), Map.entry("F16", 2), Map.entry("BF16", 2),
            Map.entry("I32", 4), Map.entry("U32", 4), Map.entry("F32", 4),
            Map.entry("I64", 8), Map.entry("U64", 8), Map.entry("F64", 8));

    private SafetensorsDTypes() {
    }

    /** Bytes per element of {@code dtype}, or -1 when safetensors defines no such type. */
    static int width(String dtype) {
        return WIDTHS.getOrDefault(dtype, -1);
    }
}
