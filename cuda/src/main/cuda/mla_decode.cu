// MLA decode attention in the absorbed form over the paged latent cache (DeepSeek-V2/V3, as FlashMLA).
//
// Each cached token is one row of D = DL + DR bf16: the normalised latent c_kv (DL = kv_lora_rank, 512 for V3)
// then the rotary key k_pe (DR = 64). A query head's full query is [q_abs | q_pe] (D values, W_UK already folded
// in), so its score against a token is one dot product over D, and its output is the softmax-weighted sum of the
// tokens' latents (the first DL values): all heads share the cached rows (MQA over the latent). That sharing is
// what the kernel exploits: a block loads a tile of rows once and uses it for 16 heads on the tensor cores.
//
// Shapes: q [B, H, D] bf16; cache [pages, pageSize, D] bf16 (one layer); blockTable [B, maxPages] int (page ids of
// sequence b in order); seqLens [B]; partial outputs oPart [B, H, splits, DL] f32 and lsePart [B, H, splits] f32.
// Long contexts are split across `splits` blocks per (sequence, head group) (grid.y); mla_decode_merge combines
// the splits with their log-sum-exp. BF16 inputs, FP32 accumulation and softmax; P is rounded to bf16 for the
// P*V product (as FlashAttention/FlashMLA).
//
// One block: 16 heads (a wmma M tile; heads past H are zero queries whose results are dropped) x one split, 8
// warps. Rows come in tiles of 64 through shared memory with cp.async, STAGES deep (2: load tile t+1 while tile t
// is computed; 1 for GPUs with less shared memory). Per tile: S = Q K^T (16x64, split-K over two warp halves),
// online softmax per head, O = O*alpha + P V with O (16 x DL f32) kept in shared memory.
#include <mma.h>
#include "common.cuh"

using namespace nvcuda;

#define MLA_HEADS 16
#define MLA_TILE 64
#define MLA_THREADS 256

template <int DL, int DR>
struct MlaDims {
    static constexpr int D = DL + DR;
    static constexpr int DP = D + 8;           // padded bf16 row: wmma ld multiple of 8, rows shift banks by 16 B
    static constexpr int SLD = MLA_TILE + 4;   // f32 score row
    static constexpr int PLD = MLA_TILE + 8;   // bf16 probability row
    static constexpr int OLD = DL + 4;         // f32 output row
    static constexpr int CHUNKS = D / 8;       // 16-byte chunks per cached row
    static_assert(D % 16 == 0 && DL % 16 == 0, "latent and rope widths must be multiples of 16");
};

// Shared memory layout in bytes, each part 128-byte aligned. Mirrored by MlaDecode.sharedBytes on the host.
template <int DL, int DR, int STAGES>
struct MlaSmem {
    using Dm = MlaDims<DL, DR>;
    static constexpr size_t align(size_t x) { return (x + 127) / 128 * 128; }
    static constexpr size_t Q = 0;
    static constexpr size_t K = Q + align(sizeof(__nv_bfloat16) * MLA_HEADS * Dm::DP);
    static constexpr size_t S = K + align(sizeof(__nv_bfloat16) * STAGES * MLA_TILE * Dm::DP);
    static constexpr size_t P = S + align(sizeof(float) * 2 * MLA_HEADS * Dm::SLD);
    static constexpr size_t O = P + align(sizeof(__nv_bfloat16) * MLA_HEADS * Dm::PLD);
    static constexpr size_t STATS = O + align(sizeof(float) * MLA_HEADS * Dm::OLD);
    static constexpr size_t TOTAL = STATS + align(sizeof(float) * 3 * MLA_HEADS);
};

// A tile of rows into shared memory: MLA_THREADS / MLA_TILE threads per row, each taking every 4th 16-byte chunk
// of its row, so a thread's row (and its page-table entry and base address) is found once per tile, not once per
// chunk; a warp's 16-byte copies cover 8 rows x 64 contiguous bytes each.
template <int DL, int DR>
__device__ __forceinline__ void mla_load_tile(__nv_bfloat16* dst, const __nv_bfloat16* __restrict__ cache,
                                              const int* __restrict__ table, int pageSize, int row0, int rows) {
    using Dm = MlaDims<DL, DR>;
    constexpr int TPR = MLA_THREADS / MLA_TILE;
    static_assert(MLA_THREADS % MLA_TILE == 0, "whole threads per row");
    const int r = threadIdx.x / TPR;
    const int sub = threadIdx.x % TPR;
    __nv_bfloat16* d = dst + r * Dm::DP;
    if (r < rows) {
        const int p = row0 + r;
        const __nv_bfloat16* s = cache + (static_cast<size_t>(table[p / pageSize]) * pageSize + p % pageSize) * Dm::D;
#pragma unroll
        for (int c = sub; c < Dm::CHUNKS; c += TPR) em_cp_async16(d + c * 8, s + c * 8);
    } else {
        // Rows past the end are zeros, not stale data: P is 0 there, but 0 * NaN would still poison O.
#pragma unroll
        for (int c = sub; c < Dm::CHUNKS; c += TPR) *reinterpret_cast<uint4*>(d + c * 8) = make_uint4(0, 0, 0, 0);
    }
}

// REG: the O accumulators (4 fragments per warp) and the warp's Q fragments stay in registers across tiles, and
// O is rescaled in registers: each thread learns which row each of its accumulator elements holds by loading a
// fragment from a matrix whose every element is its row index (the layout is fixed per fragment type, so this
// holds for every later fragment). Without REG, O lives in shared memory and is loaded/stored every tile (the
// first version; kept as a benchmark baseline).
template <int DL, int DR, int STAGES, bool REG>
__device__ __forceinline__ void mla_decode_split_impl(const __nv_bfloat16* __restrict__ q,
                                                      const __nv_bfloat16* __restrict__ cache,
                                                      const int* __restrict__ blockTable, const int* __restrict__ seqLens,
                                                      float* __restrict__ oPart, float* __restrict__ lsePart, int H,
                                                      int maxPages, int pageSize, int splits, float scale) {
    using Dm = MlaDims<DL, DR>;
    using Sm = MlaSmem<DL, DR, STAGES>;
    constexpr int D = Dm::D, DP = Dm::DP;
    extern __shared__ __align__(128) unsigned char smem[];
    __nv_bfloat16* Qs = reinterpret_cast<__nv_bfloat16*>(smem + Sm::Q);
    __nv_bfloat16* Ks = reinterpret_cast<__nv_bfloat16*>(smem + Sm::K);
    float* S = reinterpret_cast<float*>(smem + Sm::S);
    __nv_bfloat16* P = reinterpret_cast<__nv_bfloat16*>(smem + Sm::P);
    float* O = reinterpret_cast<float*>(smem + Sm::O);
    float* mRow = reinterpret_cast<float*>(smem + Sm::STATS);
    float* lRow = mRow + MLA_HEADS;
    float* aRow = lRow + MLA_HEADS;

    const int h0 = blockIdx.x * MLA_HEADS;
    const int split = blockIdx.y;
    const int b = blockIdx.z;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    // A length past the block table's reach would read page ids beyond the sequence's row: clamp, as the generic
    // kernel (forward.cu) does.
    const int len = min(seqLens[b], maxPages * pageSize);
    // Splits cover whole tiles so only the last tile of a sequence is partial.
    const int tilesTotal = (len + MLA_TILE - 1) / MLA_TILE;
    const int tilesPer = (tilesTotal + splits - 1) / splits;
    const int start = split * tilesPer * MLA_TILE;
    const int end = min(len, start + tilesPer * MLA_TILE);
    const int* table = blockTable + static_cast<size_t>(b) * maxPages;

    if (start >= end) {  // nothing for this split: the merge skips it
        for (int i = threadIdx.x; i < MLA_HEADS; i += MLA_THREADS) {
            if (h0 + i < H) lsePart[(static_cast<size_t>(b) * H + h0 + i) * splits + split] = -INFINITY;
        }
        return;
    }
    const int nTiles = (end - start + MLA_TILE - 1) / MLA_TILE;

    mla_load_tile<DL, DR>(Ks, cache, table, pageSize, start, min(MLA_TILE, end - start));
    em_cp_async_commit();
    for (int idx = threadIdx.x; idx < MLA_HEADS * (D / 8); idx += MLA_THREADS) {
        const int i = idx / (D / 8), c = (idx % (D / 8)) * 8;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (h0 + i < H) v = *reinterpret_cast<const uint4*>(q + (static_cast<size_t>(b) * H + h0 + i) * D + c);
        *reinterpret_cast<uint4*>(Qs + i * DP + c) = v;
    }
    for (int i = threadIdx.x; i < MLA_HEADS * Dm::OLD; i += MLA_THREADS) O[i] = 0.f;
    if (threadIdx.x < MLA_HEADS) {
        mRow[threadIdx.x] = -INFINITY;
        lRow[threadIdx.x] = 0.f;
    }
    // Scores in the log2 domain: exp2f(s*scale*log2e - m) = exp(s*scale - m').
    const float scaleLog2 = scale * 1.4426950408889634f;

    constexpr int KSTEPS = D / 16;
    constexpr int KHALF = KSTEPS / 2;
    constexpr int NF = DL / 16;
    constexpr int FPW = NF / (MLA_THREADS / 32);  // O fragments per warp
    static_assert(KSTEPS % 2 == 0 && NF % (MLA_THREADS / 32) == 0, "shape does not split evenly over the warps");
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> qf[REG ? KHALF : 1];
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> oacc[REG ? FPW : 1];
    int rowOf[REG ? 8 : 1];
    if constexpr (REG) {
        static_assert(sizeof(oacc[0].x) / sizeof(float) == 8, "expected 8 accumulator elements per thread");
        // Row indices through the O area (not yet used): element (r, c) = r.
        for (int i = threadIdx.x; i < MLA_HEADS * Dm::OLD; i += MLA_THREADS) O[i] = static_cast<float>(i / Dm::OLD);
        __syncthreads();
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> probe;
        wmma::load_matrix_sync(probe, O, Dm::OLD, wmma::mem_row_major);
#pragma unroll
        for (int e = 0; e < 8; e++) rowOf[e] = static_cast<int>(probe.x[e]);
#pragma unroll
        for (int f = 0; f < FPW; f++) wmma::fill_fragment(oacc[f], 0.f);
        __syncthreads();  // Qs complete (written above) and the probe read before anyone reuses O
        const int half = warp >> 2;
#pragma unroll
        for (int ks = 0; ks < KHALF; ks++) wmma::load_matrix_sync(qf[ks], Qs + (half * KHALF + ks) * 16, DP);
    }

    for (int t = 0; t < nTiles; t++) {
        const int row0 = start + t * MLA_TILE;
        const int rows = min(MLA_TILE, end - row0);
        __nv_bfloat16* Kt = Ks + (t % STAGES) * MLA_TILE * DP;
        if (STAGES > 1 && t + 1 < nTiles) {
            const int nr0 = row0 + MLA_TILE;
            mla_load_tile<DL, DR>(Ks + ((t + 1) % STAGES) * MLA_TILE * DP, cache, table, pageSize, nr0,
                                  min(MLA_TILE, end - nr0));
            em_cp_async_commit();
            em_cp_async_wait<1>();
        } else {
            em_cp_async_wait<0>();
        }
        __syncthreads();

        // S = Q Kt^T: 4 column fragments of 16 rows each; warps 0-3 sum the first half of D, warps 4-7 the second.
        {
            const int nf = warp & 3;
            const int half = warp >> 2;
            const int kBegin = half * KHALF;
            const int kEnd = kBegin + KHALF;
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::fill_fragment(acc, 0.f);
            if constexpr (REG) {
                // Two accumulators over alternate k-steps: two dependent chains of KHALF/2 tensor-core ops that
                // overlap, instead of one chain of KHALF; summed element by element (same fragment type, so the
                // same layout) at the end.
                wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc2;
                wmma::fill_fragment(acc2, 0.f);
#pragma unroll
                for (int ks = 0; ks < KHALF; ks += 2) {
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb, fb2;
                    wmma::load_matrix_sync(fb, Kt + nf * 16 * DP + (kBegin + ks) * 16, DP);
                    wmma::mma_sync(acc, qf[ks], fb, acc);
                    if (ks + 1 < KHALF) {
                        wmma::load_matrix_sync(fb2, Kt + nf * 16 * DP + (kBegin + ks + 1) * 16, DP);
                        wmma::mma_sync(acc2, qf[ks + 1], fb2, acc2);
                    }
                }
#pragma unroll
                for (int e = 0; e < acc.num_elements; e++) acc.x[e] += acc2.x[e];
            } else {
                for (int ks = kBegin; ks < kEnd; ks++) {
                    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
                    wmma::load_matrix_sync(fa, Qs + ks * 16, DP);
                    wmma::load_matrix_sync(fb, Kt + nf * 16 * DP + ks * 16, DP);
                    wmma::mma_sync(acc, fa, fb, acc);
                }
            }
            wmma::store_matrix_sync(S + half * MLA_HEADS * Dm::SLD + nf * 16, acc, Dm::SLD, wmma::mem_row_major);
        }
        __syncthreads();

        // Online softmax: warp w owns heads 2w and 2w+1; lane owns columns lane and lane+32.
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            const int i = warp * 2 + hh;
            const float* s0 = S + i * Dm::SLD;
            const float* s1 = S + (MLA_HEADS + i) * Dm::SLD;
            float a = lane < rows ? (s0[lane] + s1[lane]) * scaleLog2 : -INFINITY;
            float c = lane + 32 < rows ? (s0[lane + 32] + s1[lane + 32]) * scaleLog2 : -INFINITY;
            const float mOld = mRow[i];
            const float mNew = fmaxf(mOld, em_warp_max(fmaxf(a, c)));  // finite: rows >= 1
            const float pa = exp2f(a - mNew), pc = exp2f(c - mNew);
            const float sum = em_warp_sum(pa + pc);
            const float alpha = exp2f(mOld - mNew);  // 0 on the first tile (mOld = -inf)
            P[i * Dm::PLD + lane] = __float2bfloat16(pa);
            P[i * Dm::PLD + lane + 32] = __float2bfloat16(pc);
            if (lane == 0) {
                mRow[i] = mNew;
                lRow[i] = lRow[i] * alpha + sum;
                aRow[i] = alpha;
            }
        }
        __syncthreads();

        // O = O * alpha + P V: DL/16 column fragments, FPW per warp (warp w owns fragments w, w+8, ...).
        if constexpr (REG) {
            float alpha[8];
#pragma unroll
            for (int e = 0; e < 8; e++) alpha[e] = aRow[rowOf[e]];
#pragma unroll
            for (int j = 0; j < FPW; j++) {
                const int f = warp + j * (MLA_THREADS / 32);
#pragma unroll
                for (int e = 0; e < 8; e++) oacc[j].x[e] *= alpha[e];
#pragma unroll
                for (int ks = 0; ks < MLA_TILE / 16; ks++) {
                    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fp;
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fv;
                    wmma::load_matrix_sync(fp, P + ks * 16, Dm::PLD);
                    wmma::load_matrix_sync(fv, Kt + ks * 16 * DP + f * 16, DP);
                    wmma::mma_sync(oacc[j], fp, fv, oacc[j]);
                }
            }
        } else {
            for (int f = warp; f < NF; f += MLA_THREADS / 32) {
                float* Of = O + f * 16;
                for (int e = lane; e < MLA_HEADS * 16; e += 32) {
                    const int i = e >> 4, c = e & 15;
                    Of[i * Dm::OLD + c] *= aRow[i];
                }
                __syncwarp();
                wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
                wmma::load_matrix_sync(acc, Of, Dm::OLD, wmma::mem_row_major);
#pragma unroll
                for (int ks = 0; ks < MLA_TILE / 16; ks++) {
                    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fp;
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fv;
                    wmma::load_matrix_sync(fp, P + ks * 16, Dm::PLD);
                    wmma::load_matrix_sync(fv, Kt + ks * 16 * DP + f * 16, DP);
                    wmma::mma_sync(acc, fp, fv, acc);
                }
                wmma::store_matrix_sync(Of, acc, Dm::OLD, wmma::mem_row_major);
            }
        }
        // Everyone is done with Kt, P and aRow before the next tile's load overwrites them.
        __syncthreads();
        if (STAGES == 1 && t + 1 < nTiles) {
            const int nr0 = row0 + MLA_TILE;
            mla_load_tile<DL, DR>(Ks, cache, table, pageSize, nr0, min(MLA_TILE, end - nr0));
            em_cp_async_commit();
        }
    }

    if constexpr (REG) {
#pragma unroll
        for (int j = 0; j < FPW; j++) {
            wmma::store_matrix_sync(O + (warp + j * (MLA_THREADS / 32)) * 16, oacc[j], Dm::OLD, wmma::mem_row_major);
        }
        __syncthreads();
    }
    // Normalised partial output and its log-sum-exp (natural log) for the merge.
    for (int idx = threadIdx.x; idx < MLA_HEADS * DL; idx += MLA_THREADS) {
        const int i = idx / DL, c = idx % DL;
        if (h0 + i < H) {
            oPart[((static_cast<size_t>(b) * H + h0 + i) * splits + split) * DL + c] = O[i * Dm::OLD + c] / lRow[i];
        }
    }
    if (threadIdx.x < MLA_HEADS && h0 + threadIdx.x < H) {
        const int i = threadIdx.x;
        lsePart[(static_cast<size_t>(b) * H + h0 + i) * splits + split] = (mRow[i] + log2f(lRow[i])) * 0.6931471805599453f;
    }
}

extern "C" __global__ void __launch_bounds__(MLA_THREADS, 1)
mla_decode_split_512_64_s2(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ cache,
                           const int* __restrict__ blockTable, const int* __restrict__ seqLens, float* __restrict__ oPart,
                           float* __restrict__ lsePart, int H, int maxPages, int pageSize, int splits, float scale) {
    mla_decode_split_impl<512, 64, 2, true>(q, cache, blockTable, seqLens, oPart, lsePart, H, maxPages, pageSize,
                                               splits, scale);
}

extern "C" __global__ void __launch_bounds__(MLA_THREADS, 1)
mla_decode_split_512_64_s1(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ cache,
                           const int* __restrict__ blockTable, const int* __restrict__ seqLens, float* __restrict__ oPart,
                           float* __restrict__ lsePart, int H, int maxPages, int pageSize, int splits, float scale) {
    mla_decode_split_impl<512, 64, 1, true>(q, cache, blockTable, seqLens, oPart, lsePart, H, maxPages, pageSize,
                                               splits, scale);
}

extern "C" __global__ void __launch_bounds__(MLA_THREADS, 1)
mla_decode_split_512_64_s2_smem_o(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ cache,
                           const int* __restrict__ blockTable, const int* __restrict__ seqLens, float* __restrict__ oPart,
                           float* __restrict__ lsePart, int H, int maxPages, int pageSize, int splits, float scale) {
    mla_decode_split_impl<512, 64, 2, false>(q, cache, blockTable, seqLens, oPart, lsePart, H, maxPages, pageSize,
                                               splits, scale);
}

// out[b, h, :] = sum_s w_s * oPart[b, h, s, :] / sum_s w_s with w_s = exp(lse_s - max lse); empty splits
// (lse = -inf) are skipped, never multiplied (their oPart was not written); all empty gives zeros. Grid B*H
// blocks, DL/4.. threads.
extern "C" __global__ void mla_decode_merge(const float* __restrict__ oPart, const float* __restrict__ lsePart,
                                            float* __restrict__ out, int splits, int DL) {
    const size_t bh = blockIdx.x;
    const float* lse = lsePart + bh * splits;
    float m = -INFINITY;
    for (int s = 0; s < splits; s++) m = fmaxf(m, lse[s]);
    float denom = 0.f;
    for (int s = 0; s < splits; s++) {
        if (lse[s] != -INFINITY) denom += expf(lse[s] - m);
    }
    for (int c = threadIdx.x; c < DL; c += blockDim.x) {
        float acc = 0.f;
        for (int s = 0; s < splits; s++) {
            if (lse[s] != -INFINITY) acc += expf(lse[s] - m) * oPart[(bh * splits + s) * DL + c];
        }
        // An empty sequence (len 0: every split empty) has no softmax: zeros, not 0/0.
        out[bh * DL + c] = denom > 0.f ? acc / denom : 0.f;
    }
}
