package io.expertmesh.cuda;

/**
 * Launchers for {@code elementwise.cu}: RMSNorm, RoPE (interleaved and rotate-half), SwiGLU and top-k gating on
 * device buffers of float32 activations. Arguments are checked here so a wrong size is a clear error, not a
 * kernel reading past a buffer.
 */
public final class ElementwiseOps {
    // Resolved once here: a launch looks nothing up.
    private final CudaKernel rmsNormF32;
    private final CudaKernel ropeHalfF32;
    private final CudaKernel ropeInterleavedF32;
    private final CudaKernel swigluF32;
    private final CudaKernel topkGateF32;

    public ElementwiseOps(CudaDevice device) {
        this.rmsNormF32 = device.kernel(KernelSpecs.RMS_NORM_F32);
        this.ropeHalfF32 = device.kernel(KernelSpecs.ROPE_HALF_F32);
        this.ropeInterleavedF32 = device.kernel(KernelSpecs.ROPE_INTERLEAVED_F32);
        this.swigluF32 = device.kernel(KernelSpecs.SWIGLU_F32);
        this.topkGateF32 = device.kernel(KernelSpecs.TOPK_GATE_F32);
    }

    /** {@code out[r] = x[r] / sqrt(mean(x[r]²) + eps) · w} for {@code rows} rows of {@code n}; out may be x. */
    public void rmsNorm(DeviceBuffer x, DeviceBuffer w, DeviceBuffer out, int rows, int n, float eps) {
        require(rows > 0 && n > 0, "rows and n must be positive, got " + rows + ", " + n);
        fits(x, (long) rows * n, "x");
        fits(out, (long) rows * n, "out");
        fits(w, n, "weight");
        rmsNormF32.launch(rows, 1, 1, 256, 0).ptr(x).ptr(w).ptr(out).i32(n).f32(eps).go();
    }

    /**
     * Rotary embedding in place on {@code heads} vectors per row: row r, head h starts at
     * {@code r·rowStride + offset + h·headStride}; pair i uses {@code cos/sin[r·csStride + i]}.
     */
    public void rope(boolean interleaved, DeviceBuffer x, DeviceBuffer cos, DeviceBuffer sin, int rows, int heads,
                     int rowStride, int headStride, int offset, int dim, int csStride) {
        require(rows > 0 && heads > 0 && dim > 0 && dim % 2 == 0, "rows, heads > 0 and an even dim required, got "
                + rows + ", " + heads + ", " + dim);
        fits(x, (long) (rows - 1) * rowStride + offset + (long) (heads - 1) * headStride + dim, "x");
        fits(cos, (long) (rows - 1) * csStride + dim / 2, "cos");
        fits(sin, (long) (rows - 1) * csStride + dim / 2, "sin");
        (interleaved ? ropeInterleavedF32 : ropeHalfF32).launch(rows, heads, 1, Math.min(128,
                ((dim / 2 + 31) / 32) * 32), 0).ptr(x).ptr(cos).ptr(sin).i32(rowStride).i32(headStride).i32(offset)
                .i32(dim).i32(csStride).go();
    }

    /** {@code out = silu(gate) · up} over n elements. */
    public void swiglu(DeviceBuffer gate, DeviceBuffer up, DeviceBuffer out, int n) {
        require(n > 0, "n must be positive, got " + n);
        fits(gate, n, "gate");
        fits(up, n, "up");
        fits(out, n, "out");
        swigluF32.launch(Math.min((n + 255) / 256, 4096), 1, 1, 256, 0).ptr(gate).ptr(up).ptr(out).i32(n).go();
    }

    /**
     * Routes {@code tokens} rows of router logits {@code [tokens, experts]} as core's {@code Gate}: writes
     * {@code ids[t·k + j]} and {@code weights[t·k + j]}. {@code bias} may be null.
     */
    public void topkGate(DeviceBuffer logits, DeviceBuffer bias, int tokens, int experts, int k, boolean sigmoid,
                         int nGroup, int topkGroup, boolean normalize, float scale, DeviceBuffer ids,
                         DeviceBuffer weights) {
        require(tokens > 0 && experts > 0, "tokens and experts must be positive");
        require(k >= 1 && k <= experts, "top-k must be in [1, " + experts + "], got " + k);
        require(nGroup >= 1 && experts % nGroup == 0, "n_group " + nGroup + " must divide " + experts + " experts");
        require(topkGroup >= 1 && topkGroup <= nGroup, "topk_group must be in [1, n_group], got " + topkGroup);
        require(nGroup == 1 || topkGroup == nGroup || (long) topkGroup * (experts / nGroup) >= k,
                "topk_group " + topkGroup + " groups of " + experts / nGroup + " hold fewer than k = " + k);
        fits(logits, (long) tokens * experts, "logits");
        fits(ids, (long) tokens * k, "ids");
        fits(weights, (long) tokens * k, "weights");
        if (bias != null) {
            fits(bias, experts, "bias");
        }
        int shared = (2 * experts + nGroup) * Float.BYTES;
        topkGateF32.launch(tokens, 1, 1, 32, shared).ptr(logits).ptr(bias != null ? bias : logits)
                .i32(bias != null ? 1 : 0).i32(experts).i32(k).i32(sigmoid ? 1 : 0).i32(nGroup).i32(topkGroup)
                .i32(normalize ? 1 : 0).f32(scale).ptr(ids).ptr(weights).go();
    }

    static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException(message);
        }
    }

    /** The buffer holds at least {@code elements} 4-byte values. */
    static void fits(DeviceBuffer b, long elements, String what) {
        if (b.bytes() < elements * 4) {
            throw new IllegalArgumentException(what + " needs " + elements + " elements; the buffer holds "
                    + b.bytes() / 4);
        }
    }

    /** The buffer holds at least {@code elements} 2-byte (bf16) values. */
    static void fitsBf16(DeviceBuffer b, long elements, String what) {
        if (b.bytes() < elements * 2) {
            throw new IllegalArgumentException(what + " needs " + elements + " bf16 values; the buffer holds "
                    + b.bytes() / 2);
        }
    }
}
