package io.expertmesh.cuda.forward;

import io.expertmesh.core.tensor.Matrix;

/**
 * Every operation the device-resident forward pass ({@link DeviceForward}) runs, on {@link DeviceTensor}s that
 * stay on the device between operations. {@link CudaOps} launches our CUDA kernels; {@link HostOps} is the
 * scalar reference of the same contract on Java arrays, so the forward pass's orchestration (layouts, block
 * tables, expert grouping) is tested on any machine and each CUDA kernel is checked against it on a GPU.
 *
 * <p>Conventions: offsets, strides and counts are in elements; activations are float32 and accumulate in float32;
 * weights are {@code F32} or {@code BF16} tensors as the checkpoint stores them; the paged KV pool of a layer is
 * one {@code BF16} tensor of {@code slots × poolRow} elements where slot {@code s = block·blockSize + row}. A
 * block table is {@code I32 [tokens, maxBlocks]}: the pool blocks of the sequence that token {@code i} belongs
 * to, in position order. Operations are ordered (one stream): a later operation sees what an earlier one wrote.
 * Arguments are checked (sizes against tensor lengths) so a mistake is an {@link IllegalArgumentException}, not
 * a read past a buffer.
 */
public interface DeviceOps extends AutoCloseable {

    /** A short name for logs: the GPU's name, or "host emulation". */
    String name();

    /** A zeroed tensor of {@code length} elements. */
    DeviceTensor allocate(DeviceTensor.Kind kind, long length);

    /** Uploads a weight matrix as stored ({@code F32} or {@code BF16}, row-major {@code rows × cols}). */
    DeviceTensor upload(Matrix w);

    /** Uploads equally shaped matrices of one dtype one after another: {@code [count, rows, cols]}. */
    DeviceTensor uploadStacked(Matrix[] ws);

    /** Uploads a float vector (norm weights, biases) as an {@code F32} tensor. */
    DeviceTensor upload(float[] v);

    /** {@code dst[dstOff + i] = src[srcOff + i]} for {@code i < n}; dst is {@code F32}. */
    void copyIn(float[] src, int srcOff, DeviceTensor dst, long dstOff, int n);

    /** {@code dst[i] = src[i]} for {@code i < n}; dst is {@code I32}. */
    void copyIn(int[] src, DeviceTensor dst, int n);

    /** {@code dst[dstOff + i] = src[srcOff + i]} (bf16 bit patterns) for {@code i < n}; dst is {@code BF16}. */
    void copyIn(short[] src, int srcOff, DeviceTensor dst, long dstOff, int n);

    /** {@code dst[dstOff + i] = src[srcOff + i]} for {@code i < n}; src is {@code F32}. Waits for the device. */
    void copyOut(DeviceTensor src, long srcOff, float[] dst, int dstOff, int n);

    /** {@code dst[i] = src[i]} for {@code i < n}; src is {@code I32}. Waits for the device. */
    void copyOut(DeviceTensor src, int[] dst, int n);

    /** {@code x[i] = 0} for {@code i < n}; x is {@code F32}. */
    void zero(DeviceTensor x, int n);

    /** {@code out[r, :] = table[ids[r], :]} as float32, for {@code r < rows}; table {@code [vocab, hidden]}. */
    void embed(DeviceTensor table, DeviceTensor ids, DeviceTensor out, int rows, int hidden);

    /**
     * RMSNorm of {@code rows} rows of {@code n} elements: row r reads {@code x[r·xStride ..]} and writes
     * {@code out[r·outStride ..] = x / sqrt(mean(x²) + eps) · w}; out may be x (in place).
     */
    void rmsNorm(DeviceTensor x, int xStride, DeviceTensor w, float eps, DeviceTensor out, int outStride, int rows,
                 int n);

    /**
     * Rotary embedding in place on {@code heads} vectors per row: row r, head h starts at
     * {@code r·rowStride + offset + h·headStride}; pair i uses {@code cos/sin[r·csStride + i]}. Interleaved pairs
     * (x[2i], x[2i+1]) for DeepSeek, rotate-half pairs (x[i], x[i + dim/2]) for the others.
     */
    void rope(boolean interleaved, DeviceTensor x, DeviceTensor cos, DeviceTensor sin, int rows, int heads,
              int rowStride, int headStride, int offset, int dim, int csStride);

    /** {@code out[b, r] = Σ_c w[r, c] · x[b, c]} for {@code b < batch, r < rows}, as {@code F.linear}. */
    void linear(DeviceTensor w, DeviceTensor x, DeviceTensor out, int rows, int cols, int batch);

    /**
     * One small product per head: {@code out[t·oRow + h·oHead + oOff + r] = Σ_c w[h, r, c] ·
     * x[t·xRow + h·xHead + xOff + c]} for {@code t < tokens, h < heads, r < rows, c < cols}; w is
     * {@code [heads, rows, cols]} (MLA's per-head W_UKᵀ and W_UV).
     */
    void headLinear(DeviceTensor w, int heads, int rows, int cols, DeviceTensor x, int xRow, int xHead, int xOff,
                    DeviceTensor out, int oRow, int oHead, int oOff, int tokens);

    /**
     * {@code dst[t·dRow + h·dHead + dOff + j] = src[t·sRow + h·sHead + sOff + j]} for
     * {@code t < rows, h < heads, j < n}; both {@code F32}.
     */
    void copyStrided(DeviceTensor src, int sRow, int sHead, int sOff, DeviceTensor dst, int dRow, int dHead,
                     int dOff, int rows, int heads, int n);

    /** {@code x[r, j] += bias[j]} for {@code r < rows, j < n}. */
    void addBias(DeviceTensor x, DeviceTensor bias, int rows, int n);

    /** {@code y[i] += x[i]} for {@code i < n}. */
    void add(DeviceTensor y, DeviceTensor x, int n);

    /** {@code out[i] = silu(gate[i]) · up[i]}, silu(g) = g / (1 + e^-g); out may alias gate. */
    void swiglu(DeviceTensor gate, DeviceTensor up, DeviceTensor out, int n);

    /**
     * Writes {@code rows} float32 rows into the bf16 pool, rounded to nearest even:
     * {@code pool[slots[r]·poolRow + dstOff + j] = bf16(src[r·srcStride + j])} for {@code j < n}.
     */
    void kvWrite(DeviceTensor src, int srcStride, DeviceTensor pool, int poolRow, int dstOff, DeviceTensor slots,
                 int rows, int n);

    /**
     * The host's copy of the sequence lengths the next attention calls will find in {@code seqLens}
     * ({@code lens[0, tokens)}): only a hint for planning the work (CudaOps sizes the MLA split from it). Results
     * never depend on it: a missing or stale hint only plans worse. HostOps ignores it.
     */
    default void attentionLengths(int[] lens, int tokens) {
    }

    /**
     * Absorbed MLA attention over the paged latent pool (row = {@code latent + rope}: the normalised latent, then
     * the rotary key). For token t and head h, with query {@code q[t, h, :]} ({@code F32 [tokens, heads, latent +
     * rope]}) and positions {@code p < seqLens[t]}: {@code score_p = scale · q · row_p},
     * {@code out[t, h, :] = Σ_p softmax(score)_p · row_p[0, latent)} ({@code F32 [tokens, heads, latent]}); row p
     * is pool slot {@code blockTable[t·maxBlocks + p / blockSize]·blockSize + p % blockSize}.
     */
    void mlaAttention(DeviceTensor q, DeviceTensor pool, DeviceTensor blockTable, DeviceTensor seqLens,
                      DeviceTensor out, int tokens, int heads, int latent, int rope, int maxBlocks, int blockSize,
                      float scale);

    /**
     * Grouped-query attention over the paged pool (row = K of all kv heads, then V): query head h of token t
     * ({@code q F32 [tokens, heads, dim]}) uses kv head {@code h / (heads / kvHeads)} over positions
     * {@code p < seqLens[t]}; {@code out F32 [tokens, heads, dim]}. Block table as {@link #mlaAttention}.
     */
    void gqaAttention(DeviceTensor q, DeviceTensor pool, DeviceTensor blockTable, DeviceTensor seqLens,
                      DeviceTensor out, int tokens, int heads, int kvHeads, int dim, int maxBlocks, int blockSize,
                      float scale);

    /**
     * Routes {@code tokens} rows of router logits {@code [tokens, experts]} exactly as core's {@code Gate}:
     * {@code ids[t·k + j]} ({@code I32}) and {@code weights[t·k + j]} ({@code F32}); bias may be null.
     */
    void topkGate(DeviceTensor logits, DeviceTensor bias, int tokens, int experts, int k, boolean sigmoid,
                  int nGroup, int topkGroup, boolean normalize, float scale, DeviceTensor ids, DeviceTensor weights);

    /** {@code dst[r, :] = src[idx[idxOff + r], :]} for {@code r < rows}, rows of {@code n}. */
    void gatherRows(DeviceTensor src, DeviceTensor idx, int idxOff, DeviceTensor dst, int rows, int n);

    /**
     * {@code dst[idx[idxOff + r], :] += w[idxOff + r] · src[r, :]} for {@code r < rows}; the {@code idx} entries of
     * one call are distinct (one expert's tokens), so rows never collide.
     */
    void scatterAddRows(DeviceTensor src, DeviceTensor idx, DeviceTensor w, int idxOff, DeviceTensor dst, int rows,
                        int n);

    /**
     * Groups the top-k choices by expert without the host: pair {@code i < tokens·k} is token {@code i / k}'s
     * choice {@code ids[i]}. Writes {@code offsets[e] .. offsets[e+1]} ({@code I32 [experts + 1]}), the slots of
     * expert e, in ascending expert id and within an expert in ascending pair; {@code slotOfPair[i]} ({@code I32
     * [pairs]}); {@code tokenOfSlot[s]} ({@code I32 [pairs]}). A pair whose id is outside {@code [0, experts)} gets
     * slot -1 and is left out; the slots it leaves unused get token -1.
     */
    void routeByExpert(DeviceTensor ids, int tokens, int k, int experts, DeviceTensor offsets, DeviceTensor slotOfPair,
                       DeviceTensor tokenOfSlot);

    /**
     * {@link #linear} per expert on grouped rows: rows {@code [offsets[e], offsets[e+1])} of x times expert e's
     * weight (w {@code [experts, rows, cols]}, stacked) into the same rows of out ({@code [pairs, rows]}), for
     * {@code e < experts}. The offsets stay on the device; each expert's rows get the bits of {@link #linear} on
     * those rows alone.
     */
    void groupedLinear(DeviceTensor w, int experts, DeviceTensor x, DeviceTensor out, DeviceTensor offsets, int rows,
                       int cols, int pairs);

    /**
     * {@code out[t, :] = Σ_j weights[t·k + j] · y[slotOfPair[t·k + j], :]} over token t's choices with a slot,
     * summed in ascending expert id ({@code ids[t·k + j]}) from zero: the order of zeroing out and adding the
     * experts one after another in ascending id. {@code y [pairs, n]} as grouped by {@link #routeByExpert}.
     */
    void combineExperts(DeviceTensor y, DeviceTensor ids, DeviceTensor weights, DeviceTensor slotOfPair, int tokens,
                        int k, DeviceTensor out, int n);

    /** {@code y[r, :] += sigmoid(g[r]) · x[r, :]} for {@code r < rows} (Qwen2-MoE's gated shared expert). */
    void gatedAdd(DeviceTensor y, DeviceTensor x, DeviceTensor g, int rows, int n);

    /** Frees what this instance holds beyond the tensors its callers close. */
    @Override
    void close();
}
