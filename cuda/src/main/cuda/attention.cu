// Attention for the GQA families (Mixtral, Qwen2-MoE, Qwen3-MoE) and causal prefill.
#include "common.cuh"

#define ATT_MAX_D 256   // head dims up to 256: 8 values per lane
#define ATT_DV_PER_LANE (ATT_MAX_D / 32)

// ---- GQA decode over a paged cache ----------------------------------------------------------------------------
// One query token per sequence. q [B, Hq, D] f32; cache [pages, pageSize, 2*Hkv*D] bf16, a row = K of all kv heads
// then V of all kv heads (core's Gqa cache row); blockTable [B, maxPages]; seqLens [B]; out [B, Hq, D] f32.
// Query head h reads kv head h / (Hq / Hkv). Grid (Hq, B), 128 threads: per tile of 32 tokens each warp scores 8
// tokens (lanes across D, shuffle reduce), then every thread updates its output dims with the online softmax.
#define GQA_TILE 32
#define GQA_THREADS 128

extern "C" __global__ void __launch_bounds__(GQA_THREADS) gqa_decode_paged(
        const float* __restrict__ q, const __nv_bfloat16* __restrict__ cache, const int* __restrict__ blockTable,
        const int* __restrict__ seqLens, float* __restrict__ out, int Hq, int Hkv, int D, int maxPages, int pageSize,
        float scale) {
    __shared__ float qs[ATT_MAX_D];
    __shared__ float sc[GQA_TILE];
    const int h = blockIdx.x, b = blockIdx.y;
    const int kvh = h / (Hq / Hkv);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int len = seqLens[b];
    const size_t rowW = static_cast<size_t>(2) * Hkv * D;
    const int* table = blockTable + static_cast<size_t>(b) * maxPages;
    for (int d = threadIdx.x; d < D; d += GQA_THREADS) qs[d] = q[(static_cast<size_t>(b) * Hq + h) * D + d];
    float o[2] = {0.f, 0.f};  // dims threadIdx.x and threadIdx.x + 128
    float m = -INFINITY, l = 0.f;
    __syncthreads();
    for (int t0 = 0; t0 < len; t0 += GQA_TILE) {
        const int n = min(GQA_TILE, len - t0);
        for (int j = warp; j < n; j += GQA_THREADS / 32) {
            const int p = t0 + j;
            const __nv_bfloat16* k = cache + (static_cast<size_t>(table[p / pageSize]) * pageSize + p % pageSize) * rowW
                                     + static_cast<size_t>(kvh) * D;
            float s = 0.f;
            for (int d = lane; d < D; d += 32) s = fmaf(qs[d], __bfloat162float(k[d]), s);
            s = em_warp_sum(s);
            if (lane == 0) sc[j] = s * scale;
        }
        __syncthreads();
        float tm = -INFINITY;
        for (int j = 0; j < n; j++) tm = fmaxf(tm, sc[j]);
        const float mNew = fmaxf(m, tm);
        const float alpha = expf(m - mNew);
        l *= alpha;
        o[0] *= alpha;
        o[1] *= alpha;
        for (int j = 0; j < n; j++) {
            const float pj = expf(sc[j] - mNew);
            l += pj;
            const int p = t0 + j;
            const __nv_bfloat16* v = cache + (static_cast<size_t>(table[p / pageSize]) * pageSize + p % pageSize) * rowW
                                     + static_cast<size_t>(Hkv + kvh) * D;
#pragma unroll
            for (int r = 0; r < 2; r++) {
                const int d = threadIdx.x + r * GQA_THREADS;
                if (d < D) o[r] = fmaf(pj, __bfloat162float(v[d]), o[r]);
            }
        }
        m = mNew;
        __syncthreads();  // sc is rewritten by the next tile
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int d = threadIdx.x + r * GQA_THREADS;
        // len 0 (an empty sequence): no keys, l = 0; write zeros, not 0/0
        if (d < D) out[(static_cast<size_t>(b) * Hq + h) * D + d] = l > 0.f ? o[r] / l : 0.f;
    }
}

// ---- causal prefill, flash-attention style --------------------------------------------------------------------
// One sequence chunk of T query tokens at positions past..past+T-1 over Tk = past + T keys.
// q [T, Hq, Dk] bf16, k [Tk, Hkv, Dk] bf16, v [Tk, Hkv, Dv] bf16, out [T, Hq, Dv] f32. Query i sees keys 0..past+i.
// Grid (ceil(T/16), Hq), 128 threads = 4 warps x 4 queries. K/V tiles of 32 keys are staged in shared memory as
// f32 (dynamic: 32*(Dk+Dv) floats) and reused by the block's 16 queries; each query keeps a running max, sum and
// output (online softmax) so the T x Tk score matrix never exists. Dk, Dv <= 256; Dk + Dv <= 384.
#define PF_Q_PER_WARP 4
#define PF_WARPS 4
#define PF_Q_PER_BLOCK (PF_Q_PER_WARP * PF_WARPS)
#define PF_KT 32

extern "C" __global__ void __launch_bounds__(PF_WARPS * 32) prefill_causal(
        const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k, const __nv_bfloat16* __restrict__ v,
        float* __restrict__ out, int T, int past, int Hq, int Hkv, int Dk, int Dv, float scale) {
    extern __shared__ float pfs[];
    float* Ks = pfs;               // [PF_KT][Dk]
    float* Vs = pfs + PF_KT * Dk;  // [PF_KT][Dv]
    const int h = blockIdx.y;
    const int kvh = h / (Hq / Hkv);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int qBase = blockIdx.x * PF_Q_PER_BLOCK + warp * PF_Q_PER_WARP;

    float qv[PF_Q_PER_WARP][ATT_DV_PER_LANE];
    float ov[PF_Q_PER_WARP][ATT_DV_PER_LANE];
    float m[PF_Q_PER_WARP], l[PF_Q_PER_WARP];
#pragma unroll
    for (int a = 0; a < PF_Q_PER_WARP; a++) {
        m[a] = -INFINITY;
        l[a] = 0.f;
        const int qi = qBase + a;
#pragma unroll
        for (int r = 0; r < ATT_DV_PER_LANE; r++) {
            const int d = lane + 32 * r;
            qv[a][r] = (qi < T && d < Dk) ? __bfloat162float(q[(static_cast<size_t>(qi) * Hq + h) * Dk + d]) : 0.f;
            ov[a][r] = 0.f;
        }
    }
    const int lastQ = min(T, (blockIdx.x + 1) * PF_Q_PER_BLOCK) - 1;
    const int keyEnd = past + lastQ + 1;  // keys this block needs
    for (int k0 = 0; k0 < keyEnd; k0 += PF_KT) {
        const int n = min(PF_KT, keyEnd - k0);
        __syncthreads();  // the previous tile is no longer read
        for (int idx = threadIdx.x; idx < PF_KT * Dk; idx += blockDim.x) {
            const int j = idx / Dk, d = idx % Dk;
            Ks[idx] = j < n ? __bfloat162float(k[(static_cast<size_t>(k0 + j) * Hkv + kvh) * Dk + d]) : 0.f;
        }
        for (int idx = threadIdx.x; idx < PF_KT * Dv; idx += blockDim.x) {
            const int j = idx / Dv, d = idx % Dv;
            Vs[idx] = j < n ? __bfloat162float(v[(static_cast<size_t>(k0 + j) * Hkv + kvh) * Dv + d]) : 0.f;
        }
        __syncthreads();
        for (int j = 0; j < n; j++) {
            const int key = k0 + j;
            float kj[ATT_DV_PER_LANE], vj[ATT_DV_PER_LANE];
#pragma unroll
            for (int r = 0; r < ATT_DV_PER_LANE; r++) {
                const int d = lane + 32 * r;
                kj[r] = d < Dk ? Ks[j * Dk + d] : 0.f;
                vj[r] = d < Dv ? Vs[j * Dv + d] : 0.f;
            }
#pragma unroll
            for (int a = 0; a < PF_Q_PER_WARP; a++) {
                const int qi = qBase + a;
                if (qi >= T || key > past + qi) continue;  // warp-uniform: qi and key are the same on every lane
                float s = 0.f;
#pragma unroll
                for (int r = 0; r < ATT_DV_PER_LANE; r++) s = fmaf(qv[a][r], kj[r], s);
                s = em_warp_sum(s) * scale;
                const float mNew = fmaxf(m[a], s);
                const float alpha = expf(m[a] - mNew);
                const float p = expf(s - mNew);
                l[a] = l[a] * alpha + p;
#pragma unroll
                for (int r = 0; r < ATT_DV_PER_LANE; r++) ov[a][r] = ov[a][r] * alpha + p * vj[r];
                m[a] = mNew;
            }
        }
    }
#pragma unroll
    for (int a = 0; a < PF_Q_PER_WARP; a++) {
        const int qi = qBase + a;
        if (qi >= T) continue;
#pragma unroll
        for (int r = 0; r < ATT_DV_PER_LANE; r++) {
            const int d = lane + 32 * r;
            if (d < Dv) out[(static_cast<size_t>(qi) * Hq + h) * Dv + d] = ov[a][r] / l[a];
        }
    }
}
