// Matrix products. Weights are stored as the checkpoint has them, [rows = out features, cols = in features],
// row-major (torch.nn.functional.linear's layout): out[b, r] = sum_c w[r, c] * x[b, c].
//
// linear_*_f32: float32 activations, float32 accumulation on CUDA cores, one warp per weight row. This is what
// CudaKernels runs for the forward pass: it computes the same function as the CPU kernels to float32 rounding,
// so greedy tokens match, and for decode batches it is bound by reading the weights once (memory-bound).
// gemm_bf16_tc / grouped_gemm_bf16_tc: bf16 x bf16 -> float32 on the tensor cores (wmma 16x16x16), for prefill-size
// dense projections and the expert FFNs grouped by expert.
#include <mma.h>
#include "common.cuh"

using namespace nvcuda;

// Eight batch rows per pass: each weight row is read once per 8 activations (from L1/L2 after the first).
template <typename W>
__device__ __forceinline__ void em_load8(const W* p, float* f);

template <>
__device__ __forceinline__ void em_load8<__nv_bfloat16>(const __nv_bfloat16* p, float* f) {
    em_unpack_bf16x8(*reinterpret_cast<const uint4*>(p), f);
}

template <>
__device__ __forceinline__ void em_load8<float>(const float* p, float* f) {
    float4 a = reinterpret_cast<const float4*>(p)[0];
    float4 b = reinterpret_cast<const float4*>(p)[1];
    f[0] = a.x; f[1] = a.y; f[2] = a.z; f[3] = a.w;
    f[4] = b.x; f[5] = b.y; f[6] = b.z; f[7] = b.w;
}

__device__ __forceinline__ float em_to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float em_to_float(float v) { return v; }

template <typename W>
__device__ __forceinline__ void em_linear_warp_row(const W* __restrict__ w, const float* __restrict__ x,
                                                   float* __restrict__ out, int rows, int cols, int batch) {
    const int warpsPerBlock = blockDim.x >> 5;
    const int r = blockIdx.x * warpsPerBlock + (threadIdx.x >> 5);
    if (r >= rows) return;
    const int lane = threadIdx.x & 31;
    const W* wr = w + static_cast<size_t>(r) * cols;
    // 16-byte loads need every row to start 16-byte aligned: cols a multiple of 8 (and base pointers from
    // cuMemAlloc, 256-byte aligned). Other sizes take the scalar loop.
    const bool vec = (cols & 7) == 0;
    for (int b0 = 0; b0 < batch; b0 += 8) {
        const int nb = min(8, batch - b0);
        float acc[8];
#pragma unroll
        for (int i = 0; i < 8; i++) acc[i] = 0.f;
        if (vec) {
            for (int c = lane * 8; c < cols; c += 256) {
                float wf[8];
                em_load8<W>(wr + c, wf);
#pragma unroll
                for (int bb = 0; bb < 8; bb++) {
                    if (bb < nb) {
                        float xf[8];
                        em_load8<float>(x + static_cast<size_t>(b0 + bb) * cols + c, xf);
#pragma unroll
                        for (int j = 0; j < 8; j++) acc[bb] = fmaf(wf[j], xf[j], acc[bb]);
                    }
                }
            }
        } else {
            for (int c = lane; c < cols; c += 32) {
                const float wv = em_to_float(wr[c]);
#pragma unroll
                for (int bb = 0; bb < 8; bb++) {
                    if (bb < nb) acc[bb] = fmaf(wv, x[static_cast<size_t>(b0 + bb) * cols + c], acc[bb]);
                }
            }
        }
#pragma unroll
        for (int bb = 0; bb < 8; bb++) {
            float v = em_warp_sum(acc[bb]);
            if (lane == 0 && bb < nb) out[static_cast<size_t>(b0 + bb) * rows + r] = v;
        }
    }
}

extern "C" __global__ void linear_bf16w_f32(const __nv_bfloat16* __restrict__ w, const float* __restrict__ x,
                                            float* __restrict__ out, int rows, int cols, int batch) {
    em_linear_warp_row<__nv_bfloat16>(w, x, out, rows, cols, batch);
}

extern "C" __global__ void linear_f32w_f32(const float* __restrict__ w, const float* __restrict__ x,
                                           float* __restrict__ out, int rows, int cols, int batch) {
    em_linear_warp_row<float>(w, x, out, rows, cols, batch);
}

// ---- linear_*w_f32_xs: the same products for batches above 8, activations staged in shared memory ----------------
// linear_*w_f32 gives every weight row its own warp, and each warp reads all batch rows of x (from L1/L2): at batch
// 64 and 7168 columns that is 1.8 MB of x per weight row. Here a block of 8 warps owns 32 weight rows (4 per warp)
// and stages 16 batch rows x 512 columns of x in shared memory once for all 32: x is read from L2 once per 32 rows
// instead of once per row, and each staged float feeds 4 FMAs (one per row held in registers).
//
// Bit for bit the result of linear_*w_f32: every (row, batch) sum is accumulated in the same order (lane l adds its
// columns 8l + 256i, j = 0..7, with fmaf, or l + 32i on the scalar path; chunks of 512 columns keep that order),
// then reduced by the same em_warp_sum. So a request's output does not depend on which kernel its batch size picks.
// Grid ceil(rows / 32) x 256 threads.
#define LX_WARPS 8
#define LX_ROWS 4      // weight rows per warp: each staged activation is used LX_ROWS times from a register
#define LX_BATCH 16    // batch rows per pass: LX_ROWS x LX_BATCH accumulators per lane
#define LX_COLS 512    // columns per staged chunk: a multiple of 256 (one vector pass of a warp)

template <typename W>
__device__ __forceinline__ void em_linear_staged(const W* __restrict__ w, const float* __restrict__ x,
                                                 float* __restrict__ out, int rows, int cols, int batch) {
    __shared__ __align__(16) float xs[LX_BATCH][LX_COLS];
    const int warp = threadIdx.x >> 5;
    const int lane = threadIdx.x & 31;
    const int r0 = (blockIdx.x * LX_WARPS + warp) * LX_ROWS;
    const bool vec = (cols & 7) == 0;  // as linear_*w_f32: 16-byte loads need 16-byte aligned rows
    for (int b0 = 0; b0 < batch; b0 += LX_BATCH) {
        const int nb = min(LX_BATCH, batch - b0);
        float acc[LX_ROWS][LX_BATCH];
#pragma unroll
        for (int rr = 0; rr < LX_ROWS; rr++)
#pragma unroll
            for (int bb = 0; bb < LX_BATCH; bb++) acc[rr][bb] = 0.f;
        for (int c0 = 0; c0 < cols; c0 += LX_COLS) {
            const int nc = min(LX_COLS, cols - c0);
            __syncthreads();  // every warp is done with the previous chunk
            if (vec) {        // nc is a multiple of 8 here
                for (int i = threadIdx.x; i < LX_BATCH * (LX_COLS / 4); i += blockDim.x) {
                    const int bb = i / (LX_COLS / 4), c = (i % (LX_COLS / 4)) * 4;
                    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
                    if (bb < nb && c < nc) v = *reinterpret_cast<const float4*>(x + static_cast<size_t>(b0 + bb) * cols + c0 + c);
                    *reinterpret_cast<float4*>(&xs[bb][c]) = v;
                }
            } else {
                for (int i = threadIdx.x; i < LX_BATCH * LX_COLS; i += blockDim.x) {
                    const int bb = i / LX_COLS, c = i % LX_COLS;
                    xs[bb][c] = (bb < nb && c < nc) ? x[static_cast<size_t>(b0 + bb) * cols + c0 + c] : 0.f;
                }
            }
            __syncthreads();
            if (vec) {
                for (int c = lane * 8; c < nc; c += 256) {
                    float wf[LX_ROWS][8];
#pragma unroll
                    for (int rr = 0; rr < LX_ROWS; rr++) {
                        if (r0 + rr < rows) {
                            em_load8<W>(w + static_cast<size_t>(r0 + rr) * cols + c0 + c, wf[rr]);
                        } else {
#pragma unroll
                            for (int j = 0; j < 8; j++) wf[rr][j] = 0.f;
                        }
                    }
#pragma unroll
                    for (int bb = 0; bb < LX_BATCH; bb++) {
                        if (bb < nb) {
                            float xf[8];
                            em_load8<float>(&xs[bb][c], xf);
#pragma unroll
                            for (int rr = 0; rr < LX_ROWS; rr++)
#pragma unroll
                                for (int j = 0; j < 8; j++) acc[rr][bb] = fmaf(wf[rr][j], xf[j], acc[rr][bb]);
                        }
                    }
                }
            } else {
                for (int c = lane; c < nc; c += 32) {
                    float wv[LX_ROWS];
#pragma unroll
                    for (int rr = 0; rr < LX_ROWS; rr++)
                        wv[rr] = r0 + rr < rows ? em_to_float(w[static_cast<size_t>(r0 + rr) * cols + c0 + c]) : 0.f;
#pragma unroll
                    for (int bb = 0; bb < LX_BATCH; bb++) {
                        if (bb < nb) {
                            const float xv = xs[bb][c];
#pragma unroll
                            for (int rr = 0; rr < LX_ROWS; rr++) acc[rr][bb] = fmaf(wv[rr], xv, acc[rr][bb]);
                        }
                    }
                }
            }
        }
#pragma unroll
        for (int rr = 0; rr < LX_ROWS; rr++)
#pragma unroll
            for (int bb = 0; bb < LX_BATCH; bb++) {
                const float v = em_warp_sum(acc[rr][bb]);
                if (lane == 0 && bb < nb && r0 + rr < rows) out[static_cast<size_t>(b0 + bb) * rows + r0 + rr] = v;
            }
    }
}

extern "C" __global__ void __launch_bounds__(LX_WARPS * 32) linear_bf16w_f32_xs(
        const __nv_bfloat16* __restrict__ w, const float* __restrict__ x, float* __restrict__ out, int rows, int cols,
        int batch) {
    em_linear_staged<__nv_bfloat16>(w, x, out, rows, cols, batch);
}

extern "C" __global__ void __launch_bounds__(LX_WARPS * 32) linear_f32w_f32_xs(
        const float* __restrict__ w, const float* __restrict__ x, float* __restrict__ out, int rows, int cols,
        int batch) {
    em_linear_staged<float>(w, x, out, rows, cols, batch);
}

// ---- grouped products of routed experts ------------------------------------------------------------------------
// Expert e's rows of x, [offsets[e], offsets[e+1]) (grouped by route_by_expert in forward.cu), times its weight
// w[e] ([rows, cols], the experts stacked), into the same rows of out, through either product body on the
// expert's rows: the bits are those of linear_*w_f32 on that expert alone. The row counts stay on the device:
// grid (ceil(rows / 8), experts) x 256 (warp-row: decode, a few rows per expert) or (ceil(rows / 32), experts) x
// 256 (_xs, staged: prefill, tens of rows per expert); the blocks of an expert without tokens return at once.
template <typename W, bool STAGED>
__device__ __forceinline__ void em_grouped_linear(const W* __restrict__ w, const float* __restrict__ x,
                                                  float* __restrict__ out, const int* __restrict__ offsets, int rows,
                                                  int cols) {
    const int e = blockIdx.y;
    const int row0 = offsets[e];
    const int count = offsets[e + 1] - row0;
    if (count <= 0) return;  // the whole block: the staged body's barriers stay uniform
    const W* we = w + static_cast<size_t>(e) * rows * cols;
    const float* xe = x + static_cast<size_t>(row0) * cols;
    float* oe = out + static_cast<size_t>(row0) * rows;
    if constexpr (STAGED) {
        em_linear_staged<W>(we, xe, oe, rows, cols, count);
    } else {
        em_linear_warp_row<W>(we, xe, oe, rows, cols, count);
    }
}

extern "C" __global__ void grouped_linear_bf16w_f32(const __nv_bfloat16* __restrict__ w, const float* __restrict__ x,
                                                    float* __restrict__ out, const int* __restrict__ offsets, int rows,
                                                    int cols) {
    em_grouped_linear<__nv_bfloat16, false>(w, x, out, offsets, rows, cols);
}

extern "C" __global__ void grouped_linear_f32w_f32(const float* __restrict__ w, const float* __restrict__ x,
                                                   float* __restrict__ out, const int* __restrict__ offsets, int rows,
                                                   int cols) {
    em_grouped_linear<float, false>(w, x, out, offsets, rows, cols);
}

extern "C" __global__ void __launch_bounds__(LX_WARPS * 32) grouped_linear_bf16w_f32_xs(
        const __nv_bfloat16* __restrict__ w, const float* __restrict__ x, float* __restrict__ out,
        const int* __restrict__ offsets, int rows, int cols) {
    em_grouped_linear<__nv_bfloat16, true>(w, x, out, offsets, rows, cols);
}

extern "C" __global__ void __launch_bounds__(LX_WARPS * 32) grouped_linear_f32w_f32_xs(
        const float* __restrict__ w, const float* __restrict__ x, float* __restrict__ out,
        const int* __restrict__ offsets, int rows, int cols) {
    em_grouped_linear<float, true>(w, x, out, offsets, rows, cols);
}

// ---- tensor-core GEMM ---------------------------------------------------------------------------------------
// C[m, n] = sum_k A[m, k] * B[n, k]: A activations [M, K] bf16, B weight [N, K] bf16, C float32 [M, N] with row
// stride ldc. Block tile 64x64, k-step 32, 4 warps each owning a 32x32 quarter (2x2 wmma fragments). Tiles are
// staged through shared memory with bounds checks, so any M, N, K works (zeros pad the edges).
#define GT_M 64
#define GT_N 64
#define GT_K 32
#define GT_LD (GT_K + 8)   // bf16 elements: a multiple of 8 for wmma, and rows shift banks by 16 bytes
#define GT_CLD (GT_N + 4)  // float elements

struct __align__(128) GemmSmem {
    union {
        struct {
            __nv_bfloat16 a[GT_M][GT_LD];
            __nv_bfloat16 b[GT_N][GT_LD];
        } in;
        float c[GT_M][GT_CLD];
    };
};

__device__ __forceinline__ void em_gemm_tile(const __nv_bfloat16* __restrict__ A, const __nv_bfloat16* __restrict__ B,
                                             float* __restrict__ C, int M, int N, int K, int ldc, int m0, int n0,
                                             GemmSmem& sm) {
    const int warp = threadIdx.x >> 5;
    const int wm = (warp >> 1) * 32;
    const int wn = (warp & 1) * 32;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.f);

    const bool vecK = (K & 7) == 0;
    for (int k0 = 0; k0 < K; k0 += GT_K) {
        // 64 rows x 32 cols of A and of B: 256 chunks of 8 elements each, 2 per thread per matrix.
        for (int idx = threadIdx.x; idx < GT_M * (GT_K / 8); idx += blockDim.x) {
            const int r = idx / (GT_K / 8);
            const int c = (idx % (GT_K / 8)) * 8;
            __nv_bfloat16* da = &sm.in.a[r][c];
            __nv_bfloat16* db = &sm.in.b[r][c];
            const int gm = m0 + r, gn = n0 + r, gk = k0 + c;
            if (vecK && gm < M && gk + 8 <= K) {
                *reinterpret_cast<uint4*>(da) = *reinterpret_cast<const uint4*>(A + static_cast<size_t>(gm) * K + gk);
            } else {
                for (int j = 0; j < 8; j++)
                    da[j] = (gm < M && gk + j < K) ? A[static_cast<size_t>(gm) * K + gk + j] : __float2bfloat16(0.f);
            }
            if (vecK && gn < N && gk + 8 <= K) {
                *reinterpret_cast<uint4*>(db) = *reinterpret_cast<const uint4*>(B + static_cast<size_t>(gn) * K + gk);
            } else {
                for (int j = 0; j < 8; j++)
                    db[j] = (gn < N && gk + j < K) ? B[static_cast<size_t>(gn) * K + gk + j] : __float2bfloat16(0.f);
            }
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < GT_K; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb[2];
#pragma unroll
            for (int i = 0; i < 2; i++) wmma::load_matrix_sync(fa[i], &sm.in.a[wm + 16 * i][kk], GT_LD);
            // B^T[k][n] = B[n][k]: the weight tile read column-major.
#pragma unroll
            for (int j = 0; j < 2; j++) wmma::load_matrix_sync(fb[j], &sm.in.b[wn + 16 * j][kk], GT_LD);
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
            wmma::store_matrix_sync(&sm.c[wm + 16 * i][wn + 16 * j], acc[i][j], GT_CLD, wmma::mem_row_major);
    __syncthreads();
    for (int idx = threadIdx.x; idx < GT_M * GT_N; idx += blockDim.x) {
        const int r = idx / GT_N, c = idx % GT_N;
        if (m0 + r < M && n0 + c < N) C[static_cast<size_t>(m0 + r) * ldc + n0 + c] = sm.c[r][c];
    }
}

// Grid (ceil(N/64), ceil(M/64)), 128 threads.
extern "C" __global__ void __launch_bounds__(128) gemm_bf16_tc(const __nv_bfloat16* __restrict__ A,
                                                               const __nv_bfloat16* __restrict__ B,
                                                               float* __restrict__ C, int M, int N, int K) {
    __shared__ GemmSmem sm;
    em_gemm_tile(A, B, C, M, N, K, N, blockIdx.y * GT_M, blockIdx.x * GT_N, sm);
}

// Expert FFN products grouped by expert: rows [offsets[e], offsets[e+1]) of A (the tokens routed to expert e,
// gathered contiguously) times expert e's weight W[e] ([N, K], the experts stacked), into the same rows of C.
// Grid (ceil(N/64), ceil(maxRowsPerExpert/64), E), 128 threads; blocks past an expert's row count exit.
extern "C" __global__ void __launch_bounds__(128) grouped_gemm_bf16_tc(const __nv_bfloat16* __restrict__ A,
                                                                       const __nv_bfloat16* __restrict__ W,
                                                                       float* __restrict__ C,
                                                                       const int* __restrict__ offsets, int N, int K) {
    __shared__ GemmSmem sm;
    const int e = blockIdx.z;
    const int row0 = offsets[e];
    const int M = offsets[e + 1] - row0;
    if (static_cast<int>(blockIdx.y) * GT_M >= M) return;
    em_gemm_tile(A + static_cast<size_t>(row0) * K, W + static_cast<size_t>(e) * N * K, C + static_cast<size_t>(row0) * N,
                 M, N, K, N, blockIdx.y * GT_M, blockIdx.x * GT_N, sm);
}
