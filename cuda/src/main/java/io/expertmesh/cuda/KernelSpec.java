package io.expertmesh.cuda;

import java.util.List;

/** A kernel's name and its parameters as the launchers pass them ({@link KernelSpecs} lists every one). */
public record KernelSpec(String name, List<KernelParam> params) {
    public KernelSpec {
        params = List.copyOf(params);
        if (params.size() > KernelArgs.MAX_PARAMS) {
            throw new IllegalArgumentException(name + " has " + params.size() + " parameters; at most "
                    + KernelArgs.MAX_PARAMS);
        }
    }

    public static KernelSpec of(String name, KernelParam... params) {
        return new KernelSpec(name, List.of(params));
    }

    /**
     * Null when the kernel's PTX parameter types ({@link PtxEntries#signatures}) take these parameters; otherwise
     * what differs, naming the kernel and the parameter.
     */
    public String mismatch(List<String> ptxTypes) {
        if (ptxTypes == null) {
            return "no kernel " + name + " in the loaded modules";
        }
        if (ptxTypes.size() != params.size()) {
            return name + " is declared with " + params.size() + " parameters; its PTX has " + ptxTypes.size();
        }
        for (int i = 0; i < params.size(); i++) {
            if (!params.get(i).fits(ptxTypes.get(i))) {
                return name + " parameter " + i + " is declared " + params.get(i) + "; its PTX type is ."
                        + ptxTypes.get(i);
            }
        }
        return null;
    }
}
