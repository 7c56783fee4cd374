package io.expertmesh.cuda;

/**
 * Launchers for {@code elementwise.cu}: RMSNorm, RoPE (interleaved and rotate-half), SwiGLU and top-k gating on
 * device buffers of float32 activations. Arguments are checked here so a wrong size is a clear error, not a
 * kernel reading past a buffer.
 */
public final class ElementwiseOps {
    private final CudaDevice device;

    public ElementwiseOps(CudaDevice device) {
        this.device = device;
    }

    /** {@code out[r] = x[r] / sqrt(mean(x[r]²) + eps) · w} for {@code rows} rows of {@code n}; out may be x. */
    public void rmsNorm(DeviceBuffer x, DeviceBuffer w, DeviceBuffer out, int rows, int n, float eps) {
        require(rows > 0 && n > 0, "rows and n must be positive, got " + rows + ", " + n);
        fits(x, (long) rows * n, "x");
        fits(out, (long) rows * n, "out");
        fits(w, n, "weight");
        device.launch("rms_norm_f32", rows, 1, 1, 256, 0, x, w, out, n, eps);
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
        device.launch(interleaved ? "rope_interleaved_f32" : "rope_half_f32", rows, heads, 1,
                Math.min(128, ((dim / 2 + 31) / 32) * 32), 0, x, cos, sin, rowStride, headStride, offset, dim,
                csStride);
    }

    /** {@code out = silu(gate) · up} over n elements. */
    public void swiglu(DeviceBuffer gate, DeviceBuffer up, DeviceBuffer out, int n) {
        require(n > 0, "n must be positive, got " + n);
        fits(gate, n, "gate");
        fits(up, n, "up");
        fits(out, n, "out");
        device.launch("swiglu_f32", Math.min((n + 255) / 256, 4096), 1, 1, 256, 0, gate, up, out, n);
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
        device.launch("topk_gate_f32", tokens, 1, 1, 32, shared, logits,
                bias != null ? bias : logits, bias != null ? 1 : 0, experts, k, sigmoid ? 1 : 0, nGroup, topkGroup,
                normalize ? 1 : 0, scale, ids, weights);
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
