package io.expertmesh.cuda;

/**
 * What the one-time GPU probe found: either a usable device (with the facts kernels size themselves by) or the
 * reason there is none.
 *
 * @param reason                 why there is no GPU (null when available)
 * @param name                   device name
 * @param computeMajor           compute capability, major
 * @param computeMinor           compute capability, minor
 * @param multiprocessors        SM count (split-KV and grid sizing)
 * @param maxSharedPerBlockOptin the most dynamic shared memory one block may opt into, bytes
 */
public record CudaProbe(String reason, String name, int computeMajor, int computeMinor, int multiprocessors,
                        int maxSharedPerBlockOptin) {

    static CudaProbe none(String reason) {
        return new CudaProbe(reason, null, 0, 0, 0, 0);
    }

    public boolean available() {
        return reason == null;
    }

    /** The PTX target to load: the sm_90 build on Hopper and newer, else the compute_80 fallback. */
    public String ptxTarget() {
        return computeMajor >= 9 ? "sm_90" : "sm_80";
    }

    public String describe() {
        return available()
                ? name + " (sm_" + computeMajor + computeMinor + ", " + multiprocessors + " SMs)"
                : "no GPU: " + reason;
    }
}
