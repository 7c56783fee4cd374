// Shared device helpers for the ExpertMesh kernels. Every kernel is extern "C" so the Java side finds it by its
// plain name (cuModuleGetFunction), and takes element counts, never byte counts.
#pragma once
#include <cuda_bf16.h>
#include <stdint.h>

#define EM_FULL_MASK 0xffffffffu

__device__ __forceinline__ float em_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(EM_FULL_MASK, v, o);
    return v;
}

__device__ __forceinline__ float em_warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(EM_FULL_MASK, v, o));
    return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// red: 32 floats of shared memory, reusable after the call returns.
__device__ __forceinline__ float em_block_sum(float v, float* red) {
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    v = em_warp_sum(v);
    __syncthreads();  // red may still be read by a previous call
    if (lane == 0) red[warp] = v;
    __syncthreads();
    const int warps = blockDim.x >> 5;
    if (warp == 0) {
        float w = lane < warps ? red[lane] : 0.f;
        w = em_warp_sum(w);
        if (lane == 0) red[0] = w;
    }
    __syncthreads();
    return red[0];
}

// Eight bf16 packed in 16 bytes to eight floats.
__device__ __forceinline__ void em_unpack_bf16x8(uint4 raw, float* f) {
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 p = __bfloat1622float2(h[i]);
        f[2 * i] = p.x;
        f[2 * i + 1] = p.y;
    }
}

// 16-byte asynchronous global -> shared copy (sm_80+), completed by em_cp_async_wait.
__device__ __forceinline__ void em_cp_async16(void* smem, const void* gmem) {
    const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
}

__device__ __forceinline__ void em_cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

template <int N>
__device__ __forceinline__ void em_cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }
