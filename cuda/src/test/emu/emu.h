// A tiny CUDA execution model on CPU threads: one OS thread per CUDA thread, blocks run one after another,
// __syncthreads and warp shuffles through barriers. Enough to run simple kernels for their results (not races).
#pragma once
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>
#include "cuda_bf16.h"
// CUDA's integer min/max: mixed int/unsigned arguments compare as unsigned (as the device functions do).
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline unsigned min(int a, unsigned b) { return min(static_cast<unsigned>(a), b); }
inline unsigned min(unsigned a, int b) { return min(a, static_cast<unsigned>(b)); }
inline unsigned max(int a, unsigned b) { return max(static_cast<unsigned>(a), b); }
inline unsigned max(unsigned a, int b) { return max(a, static_cast<unsigned>(b)); }

struct dim3 { unsigned x = 1, y = 1, z = 1; };
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
inline std::barrier<>* emuBlockBar;
inline std::vector<std::unique_ptr<std::barrier<>>> emuWarpBar;
inline uint32_t emuSlots[32][32];
inline std::vector<unsigned char> emuDynSmem;

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(x)

inline void __syncthreads() { emuBlockBar->arrive_and_wait(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emuWarpBar[threadIdx.x >> 5]->arrive_and_wait(); }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline unsigned __cvta_generic_to_shared(const void*) { return 0; }

template <typename T>
inline T __shfl_xor_sync(unsigned, T v, int o) {
    static_assert(sizeof(T) == 4, "32-bit shuffles only");
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    std::memcpy(&emuSlots[w][lane], &v, 4);
    emuWarpBar[w]->arrive_and_wait();
    T r;
    std::memcpy(&r, &emuSlots[w][lane ^ o], 4);
    emuWarpBar[w]->arrive_and_wait();
    return r;
}

// Runs kernel() for every thread of every block; dynamic shared memory is filled with NaN bytes (0xff).
inline void emuLaunch(dim3 grid, unsigned threads, size_t dynShared, const std::function<void()>& kernel) {
    gridDim = grid;
    blockDim = {threads, 1, 1};
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                std::barrier<> block(threads);
                emuBlockBar = &block;
                emuWarpBar.clear();
                for (unsigned w = 0; w < (threads + 31) / 32; w++)
                    emuWarpBar.push_back(std::make_unique<std::barrier<>>(std::min(32u, threads - w * 32)));
                emuDynSmem.assign(dynShared + 16, 0xff);
                std::vector<std::thread> ts;
                for (unsigned t = 0; t < threads; t++) {
                    ts.emplace_back([&, t, x, y, z] {
                        threadIdx = {t, 0, 0};
                        blockIdx = {x, y, z};
                        kernel();
                        emuWarpBar[t >> 5]->arrive_and_drop();
                        emuBlockBar->arrive_and_drop();
                    });
                }
                for (auto& th : ts) th.join();
            }
}
