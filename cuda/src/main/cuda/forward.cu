// Kernels of the device-resident forward pass (io.expertmesh.cuda.forward.CudaOps implements DeviceOps with
// them and with the kernels of elementwise.cu, linear.cu, attention.cu and mla_decode.cu). Activations are
// float32; weights float32 or bf16; the paged KV pool of a layer is bf16, slot s = block * blockSize + row.
//
// Indices that come from device memory (token ids, block tables, slots, row indices) cannot be checked by the
// host without a synchronisation, so the kernels check them: an id out of range never reads or writes outside its
// buffer; the affected output is NaN (embed, gather) or the write is dropped (kv write, scatter), so a bad table
// shows up as garbage in the result instead of a sticky illegal-address error that would kill the context.
#include "common.cuh"

// ---- small helpers ---------------------------------------------------------------------------------------------

__device__ __forceinline__ float em_load_f(const float* p, size_t i) { return p[i]; }
__device__ __forceinline__ float em_load_f(const __nv_bfloat16* p, size_t i) { return __bfloat162float(p[i]); }

// ---- fill / elementwise ----------------------------------------------------------------------------------------

// x[i] = 0 for i < n. Grid-stride, any grid.
extern "C" __global__ void zero_f32(float* __restrict__ x, int n) {
    for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < static_cast<size_t>(n);
         i += static_cast<size_t>(gridDim.x) * blockDim.x) {
        x[i] = 0.f;
    }
}

// y[i] += x[i] for i < n. Grid-stride.
extern "C" __global__ void add_f32(float* __restrict__ y, const float* __restrict__ x, int n) {
    for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < static_cast<size_t>(n);
         i += static_cast<size_t>(gridDim.x) * blockDim.x) {
        y[i] += x[i];
    }
}

// x[r, j] += bias[j] for r < rows, j < n. Grid (rows), threads over j.
extern "C" __global__ void add_bias_f32(float* __restrict__ x, const float* __restrict__ bias, int n) {
    float* xr = x + static_cast<size_t>(blockIdx.x) * n;
    for (int j = threadIdx.x; j < n; j += blockDim.x) xr[j] += bias[j];
}

// dst[i] = bf16(src[i]) rounded to nearest even, i < n (the fast MLA kernel takes its query in bf16). Grid-stride.
extern "C" __global__ void f32_to_bf16(const float* __restrict__ src, __nv_bfloat16* __restrict__ dst, int n) {
    for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < static_cast<size_t>(n);
         i += static_cast<size_t>(gridDim.x) * blockDim.x) {
        dst[i] = __float2bfloat16_rn(src[i]);
    }
}

// y[r, j] += sigmoid(g[r]) * x[r, j] (Qwen2-MoE's gated shared expert). Grid (rows), threads over j.
extern "C" __global__ void gated_add_f32(float* __restrict__ y, const float* __restrict__ x, const float* __restrict__ g,
                                        int n) {
    const size_t r = blockIdx.x;
    const float s = 1.0f / (1.0f + expf(-g[r]));
    for (int j = threadIdx.x; j < n; j += blockDim.x) y[r * n + j] = fmaf(s, x[r * n + j], y[r * n + j]);
}

// ---- embedding ---------------------------------------------------------------------------------------------------

// out[r, :] = table[ids[r], :] as float32; table [vocab, hidden]. An id outside [0, vocab) gives a NaN row.
// Grid (rows), threads over the hidden size.
template <typename T>
__device__ __forceinline__ void em_embed(const T* __restrict__ table, const int* __restrict__ ids, float* __restrict__ out,
                                         int hidden, int vocab) {
    const int id = ids[blockIdx.x];
    float* o = out + static_cast<size_t>(blockIdx.x) * hidden;
    if (id < 0 || id >= vocab) {
        for (int j = threadIdx.x; j < hidden; j += blockDim.x) o[j] = __int_as_float(0x7fc00000);
        return;
    }
    const size_t base = static_cast<size_t>(id) * hidden;
    for (int j = threadIdx.x; j < hidden; j += blockDim.x) o[j] = em_load_f(table, base + j);
}

extern "C" __global__ void embed_f32(const float* __restrict__ table, const int* __restrict__ ids,
                                     float* __restrict__ out, int hidden, int vocab) {
    em_embed<float>(table, ids, out, hidden, vocab);
}

extern "C" __global__ void embed_bf16(const __nv_bfloat16* __restrict__ table, const int* __restrict__ ids,
                                      float* __restrict__ out, int hidden, int vocab) {
    em_embed<__nv_bfloat16>(table, ids, out, hidden, vocab);
}

// ---- strided RMSNorm ---------------------------------------------------------------------------------------------

// out[r*outStride + i] = x[r*xStride + i] / sqrt(mean_i(x[r]^2) + eps) * w[i]; one block per row. out may alias x
// with the same stride: each element is read and then written by the same thread, after the reduction.
extern "C" __global__ void rms_norm_strided_f32(const float* x, int xStride, const float* __restrict__ w, float* out,
                                               int outStride, int n, float eps) {
    __shared__ float red[32];
    const float* xr = x + static_cast<size_t>(blockIdx.x) * xStride;
    float* o = out + static_cast<size_t>(blockIdx.x) * outStride;
    float ss = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float v = xr[i];
        ss += v * v;
    }
    ss = em_block_sum(ss, red);
    const float inv = 1.0f / sqrtf(ss / static_cast<float>(n) + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) o[i] = xr[i] * inv * w[i];
}

// ---- per-head small products -------------------------------------------------------------------------------------

// out[t*oRow + h*oHead + oOff + r] = sum_c w[h, r, c] * x[t*xRow + h*xHead + xOff + c] (MLA's absorbed W_UK^T and
// W_UV per head). Grid (ceil(rows / 8), heads), 256 threads: one warp per (head, output row), lanes across c,
// eight tokens per pass so each weight element is read once per eight tokens (from L1 after the first).
#define HL_WARPS 8
#define HL_TOKENS 8

template <typename W>
__device__ __forceinline__ void em_head_linear(const W* __restrict__ w, int rows, int cols, const float* __restrict__ x,
                                               int xRow, int xHead, int xOff, float* __restrict__ out, int oRow,
                                               int oHead, int oOff, int tokens) {
    const int h = blockIdx.y;
    const int r = blockIdx.x * HL_WARPS + (threadIdx.x >> 5);
    if (r >= rows) return;
    const int lane = threadIdx.x & 31;
    const W* wr = w + (static_cast<size_t>(h) * rows + r) * cols;
    const float* xh = x + static_cast<size_t>(h) * xHead + xOff;
    float* oh = out + static_cast<size_t>(h) * oHead + oOff + r;
    for (int t0 = 0; t0 < tokens; t0 += HL_TOKENS) {
        const int nt = min(HL_TOKENS, tokens - t0);
        float acc[HL_TOKENS];
#pragma unroll
        for (int i = 0; i < HL_TOKENS; i++) acc[i] = 0.f;
        for (int c = lane; c < cols; c += 32) {
            const float wv = em_load_f(wr, c);
#pragma unroll
            for (int i = 0; i < HL_TOKENS; i++) {
                if (i < nt) acc[i] = fmaf(wv, xh[static_cast<size_t>(t0 + i) * xRow + c], acc[i]);
            }
        }
#pragma unroll
        for (int i = 0; i < HL_TOKENS; i++) {
            const float v = em_warp_sum(acc[i]);
            if (lane == 0 && i < nt) oh[static_cast<size_t>(t0 + i) * oRow] = v;
        }
    }
}

extern "C" __global__ void head_linear_f32w_f32(const float* __restrict__ w, int rows, int cols,
                                                const float* __restrict__ x, int xRow, int xHead, int xOff,
                                                float* __restrict__ out, int oRow, int oHead, int oOff, int tokens) {
    em_head_linear<float>(w, rows, cols, x, xRow, xHead, xOff, out, oRow, oHead, oOff, tokens);
}

extern "C" __global__ void head_linear_bf16w_f32(const __nv_bfloat16* __restrict__ w, int rows, int cols,
                                                 const float* __restrict__ x, int xRow, int xHead, int xOff,
                                                 float* __restrict__ out, int oRow, int oHead, int oOff, int tokens) {
    em_head_linear<__nv_bfloat16>(w, rows, cols, x, xRow, xHead, xOff, out, oRow, oHead, oOff, tokens);
}

// ---- copies, gathers and scatters --------------------------------------------------------------------------------

// dst[t*dRow + h*dHead + dOff + j] = src[t*sRow + h*sHead + sOff + j], j < n. Grid (rows, heads), threads over j.
extern "C" __global__ void copy_strided_f32(const float* __restrict__ src, int sRow, int sHead, int sOff,
                                            float* __restrict__ dst, int dRow, int dHead, int dOff, int n) {
    const size_t t = blockIdx.x, h = blockIdx.y;
    const float* s = src + t * sRow + h * sHead + sOff;
    float* d = dst + t * dRow + h * dHead + dOff;
    for (int j = threadIdx.x; j < n; j += blockDim.x) d[j] = s[j];
}

// dst[r, :] = src[idx[idxOff + r], :], rows of n; an index outside [0, srcRows) gives a NaN row. Grid (rows).
extern "C" __global__ void gather_rows_f32(const float* __restrict__ src, const int* __restrict__ idx, int idxOff,
                                           float* __restrict__ dst, int n, int srcRows) {
    const int i = idx[idxOff + blockIdx.x];
    float* d = dst + static_cast<size_t>(blockIdx.x) * n;
    if (i < 0 || i >= srcRows) {
        for (int j = threadIdx.x; j < n; j += blockDim.x) d[j] = __int_as_float(0x7fc00000);
        return;
    }
    const float* s = src + static_cast<size_t>(i) * n;
    for (int j = threadIdx.x; j < n; j += blockDim.x) d[j] = s[j];
}

// dst[idx[idxOff + r], :] += w[idxOff + r] * src[r, :]. The indices of one launch are distinct (one expert's
// tokens), so blocks never write the same row and no atomics are needed. An index outside [0, dstRows) is
// dropped. Grid (rows).
extern "C" __global__ void scatter_add_rows_f32(const float* __restrict__ src, const int* __restrict__ idx,
                                                const float* __restrict__ w, int idxOff, float* __restrict__ dst, int n,
                                                int dstRows) {
    const int i = idx[idxOff + blockIdx.x];
    if (i < 0 || i >= dstRows) return;
    const float wr = w[idxOff + blockIdx.x];
    const float* s = src + static_cast<size_t>(blockIdx.x) * n;
    float* d = dst + static_cast<size_t>(i) * n;
    for (int j = threadIdx.x; j < n; j += blockDim.x) d[j] = fmaf(wr, s[j], d[j]);
}

// ---- routed experts without a host round trip --------------------------------------------------------------------
// The top-k choices stay on the device: route_by_expert groups the (token, choice) pairs by expert, the grouped
// products run on the grouped rows (grouped_linear_*w_f32 in linear.cu), combine_experts sums each token's
// experts. No synchronisation and a fixed number of launches per MoE layer, whatever the number of experts.

// Pairs i < pairs (pair i = token i / k, choice i % k) with ids[i] in [0, experts), grouped by expert in ascending
// id, within an expert in ascending pair order (so in ascending token: a token names an expert once):
// offsets[e] .. offsets[e+1] are expert e's slots, slotOfPair[i] pair i's slot, tokenOfSlot[s] the slot's token.
// A pair whose id is out of range gets slot -1 and no slot; slots past offsets[experts] get token -1 (a gather
// of them writes NaN). One block; thread e walks the pairs in order for its experts (ids staged in shared memory
// a chunk at a time, read by every thread of a warp at once), so the fill is stable without a sort. Grid 1 x 256.
#define ROUTE_CHUNK 2048

extern "C" __global__ void route_by_expert(const int* __restrict__ ids, int pairs, int k, int experts,
                                           int* __restrict__ offsets, int* __restrict__ slotOfPair,
                                           int* __restrict__ tokenOfSlot) {
    __shared__ int sid[ROUTE_CHUNK];
    // Pass 1: offsets[e + 1] = pairs choosing e (each thread owns its experts' entries).
    for (int e = threadIdx.x; e < experts; e += blockDim.x) offsets[e + 1] = 0;
    for (int i0 = 0; i0 < pairs; i0 += ROUTE_CHUNK) {
        const int n = min(ROUTE_CHUNK, pairs - i0);
        __syncthreads();  // the previous chunk is read by everyone
        for (int i = threadIdx.x; i < n; i += blockDim.x) sid[i] = ids[i0 + i];
        __syncthreads();
        for (int e = threadIdx.x; e < experts; e += blockDim.x) {
            int count = 0;
#pragma unroll 8
            for (int i = 0; i < n; i++) count += sid[i] == e;
            offsets[e + 1] += count;
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) {  // experts is at most a few hundred: a serial prefix sum is shorter than a tree's barriers
        offsets[0] = 0;
        for (int e = 0; e < experts; e++) offsets[e + 1] += offsets[e];
    }
    __syncthreads();
    for (int i = threadIdx.x; i < pairs; i += blockDim.x) {
        if (ids[i] < 0 || ids[i] >= experts) slotOfPair[i] = -1;
        if (i >= offsets[experts]) tokenOfSlot[i] = -1;  // the slots left over by dropped pairs
    }
    // Pass 2: each expert's slots in pair order; the next free slot of expert e lives in a register of its thread
    // (experts past the block size take another walk over the pairs).
    for (int e0 = 0; e0 < experts; e0 += blockDim.x) {
        const int e = e0 + threadIdx.x;
        int slot = e < experts ? offsets[e] : 0;
        for (int i0 = 0; i0 < pairs; i0 += ROUTE_CHUNK) {
            const int n = min(ROUTE_CHUNK, pairs - i0);
            __syncthreads();
            for (int i = threadIdx.x; i < n; i += blockDim.x) sid[i] = ids[i0 + i];
            __syncthreads();
            if (e < experts) {
                for (int i = 0; i < n; i++) {
                    if (sid[i] == e) {
                        slotOfPair[i0 + i] = slot;
                        tokenOfSlot[slot] = (i0 + i) / k;
                        slot++;
                    }
                }
            }
        }
    }
}

// out[t, :] = sum over t's valid choices in ascending expert id of weights[t*k + j] * y[slotOfPair[t*k + j], :],
// accumulated with fmaf from 0: the same bits as zeroing out and scatter-adding the experts in ascending id.
// Grid (tokens) x threads over n.
extern "C" __global__ void combine_experts_f32(const float* __restrict__ y, const int* __restrict__ ids,
                                               const float* __restrict__ weights, const int* __restrict__ slotOfPair,
                                               int k, float* __restrict__ out, int n) {
    const int t = blockIdx.x;
    // Choices sorted by expert id (insertion sort by one thread; k <= 16, checked by the launcher), shared by the
    // block's threads.
    __shared__ int order[16];
    __shared__ int count;
    if (threadIdx.x == 0) {
        int m = 0;
        for (int j = 0; j < k; j++) {
            const int p = t * k + j;
            if (slotOfPair[p] < 0) continue;
            int at = m++;
            while (at > 0 && ids[t * k + order[at - 1]] > ids[p]) {
                order[at] = order[at - 1];
                at--;
            }
            order[at] = j;
        }
        count = m;
    }
    __syncthreads();
    const int m = count;
    float* o = out + static_cast<size_t>(t) * n;
    for (int c = threadIdx.x; c < n; c += blockDim.x) {
        float acc = 0.f;
        for (int a = 0; a < m; a++) {
            const int p = t * k + order[a];
            acc = fmaf(weights[p], y[static_cast<size_t>(slotOfPair[p]) * n + c], acc);
        }
        o[c] = acc;
    }
}

// ---- paged KV cache ------------------------------------------------------------------------------------------------

// pool[slots[r]*poolRow + dstOff + j] = bf16(src[r*srcStride + j]) rounded to nearest even, j < n. A slot outside
// [0, poolSlots) is dropped. Grid (rows), threads over j.
extern "C" __global__ void kv_write_bf16(const float* __restrict__ src, int srcStride, __nv_bfloat16* __restrict__ pool,
                                         int poolRow, int dstOff, const int* __restrict__ slots, int n, int poolSlots) {
    const int slot = slots[blockIdx.x];
    if (slot < 0 || slot >= poolSlots) return;
    const float* s = src + static_cast<size_t>(blockIdx.x) * srcStride;
    __nv_bfloat16* d = pool + static_cast<size_t>(slot) * poolRow + dstOff;
    for (int j = threadIdx.x; j < n; j += blockDim.x) d[j] = __float2bfloat16_rn(s[j]);
}

// ---- generic absorbed MLA attention ------------------------------------------------------------------------------
// For token t = blockIdx.y and head h = blockIdx.x: q = q[t, h, 0..D) (f32, D = latent + rope), rows p < len of the
// paged pool (row = latent then rope, bf16); score_p = scale * q . row_p; out[t, h, :] = sum_p softmax_p *
// row_p[0, latent). Any latent/rope size (the fast tensor-core kernel in mla_decode.cu is for 512 + 64 only).
// 128 threads; positions come in chunks of MLAG_CHUNK: each warp scores a quarter of the chunk (lanes across D,
// shuffle reduce), then each thread folds the chunk into its own output dims with the online softmax (running max
// m, running sum l), so any context length works in fixed shared memory. Dynamic shared memory: (D + latent)
// floats (q, then the output accumulators, each thread owning dims tid, tid + 128, ...).
// Positions whose block id is outside [0, poolBlocks) are skipped; len is capped at maxBlocks * blockSize; a token
// with no position gets a zero output.
#define MLAG_THREADS 128
#define MLAG_CHUNK 64

extern "C" __global__ void __launch_bounds__(MLAG_THREADS) mla_attention_f32q(
        const float* __restrict__ q, const __nv_bfloat16* __restrict__ pool, const int* __restrict__ blockTable,
        const int* __restrict__ seqLens, float* __restrict__ out, int H, int latent, int rope, int maxBlocks,
        int blockSize, int poolBlocks, float scale) {
    extern __shared__ float mlag[];
    __shared__ float sc[MLAG_CHUNK];
    __shared__ int rowOf[MLAG_CHUNK];  // pool slot of each position of the chunk, -1 when skipped
    const int D = latent + rope;
    float* qs = mlag;
    float* o = mlag + D;
    const int h = blockIdx.x, t = blockIdx.y;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int len = min(seqLens[t], maxBlocks * blockSize);
    const int* table = blockTable + static_cast<size_t>(t) * maxBlocks;
    const float* qt = q + (static_cast<size_t>(t) * H + h) * D;
    for (int d = threadIdx.x; d < D; d += MLAG_THREADS) qs[d] = qt[d];
    for (int d = threadIdx.x; d < latent; d += MLAG_THREADS) o[d] = 0.f;
    float m = -INFINITY, l = 0.f;
    __syncthreads();
    for (int p0 = 0; p0 < len; p0 += MLAG_CHUNK) {
        const int n = min(MLAG_CHUNK, len - p0);
        if (threadIdx.x < n) {
            const int p = p0 + threadIdx.x;
            const int blk = table[p / blockSize];
            rowOf[threadIdx.x] = (blk >= 0 && blk < poolBlocks) ? blk * blockSize + p % blockSize : -1;
        }
        __syncthreads();
        for (int j = warp; j < n; j += MLAG_THREADS / 32) {
            const int slot = rowOf[j];
            float s = 0.f;
            if (slot >= 0) {
                const __nv_bfloat16* row = pool + static_cast<size_t>(slot) * D;
                for (int d = lane; d < D; d += 32) s = fmaf(qs[d], __bfloat162float(row[d]), s);
            }
            s = em_warp_sum(s);
            if (lane == 0) sc[j] = slot >= 0 ? s * scale : -INFINITY;
        }
        __syncthreads();
        float cm = -INFINITY;
        for (int j = 0; j < n; j++) cm = fmaxf(cm, sc[j]);
        const float mNew = fmaxf(m, cm);
        if (mNew != -INFINITY) {  // a chunk of skipped positions only changes nothing
            const float alpha = expf(m - mNew);  // m = -inf at the start: alpha = 0, and o, l are 0 anyway
            l *= alpha;
            for (int d = threadIdx.x; d < latent; d += MLAG_THREADS) o[d] *= alpha;
            for (int j = 0; j < n; j++) {
                const int slot = rowOf[j];
                if (slot < 0) continue;
                const float pj = expf(sc[j] - mNew);
                l += pj;
                const __nv_bfloat16* row = pool + static_cast<size_t>(slot) * D;
                for (int d = threadIdx.x; d < latent; d += MLAG_THREADS) o[d] = fmaf(pj, __bfloat162float(row[d]), o[d]);
            }
            m = mNew;
        }
        __syncthreads();  // sc and rowOf are rewritten by the next chunk
    }
    float* ot = out + (static_cast<size_t>(t) * H + h) * latent;
    const float inv = l > 0.f ? 1.0f / l : 0.f;
    for (int d = threadIdx.x; d < latent; d += MLAG_THREADS) ot[d] = o[d] * inv;
}
