// Row-wise and element-wise kernels on float32 activations: RMSNorm, RoPE (both conventions), SwiGLU and
// top-k gating. Each mirrors a method of core's ScalarKernels / Gate; the tests compare them element by element.
#include "common.cuh"

// out[r, i] = x[r, i] / sqrt(mean_i(x[r]^2) + eps) * w[i]; one block per row; out may alias x (each element is
// read before it is written, by the same thread, after the reduction).
extern "C" __global__ void rms_norm_f32(const float* x, const float* __restrict__ w, float* out, int n, float eps) {
    __shared__ float red[32];
    const float* xr = x + static_cast<size_t>(blockIdx.x) * n;
    float* o = out + static_cast<size_t>(blockIdx.x) * n;
    float ss = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float v = xr[i];
        ss += v * v;
    }
    ss = em_block_sum(ss, red);
    const float inv = 1.0f / sqrtf(ss / static_cast<float>(n) + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) o[i] = xr[i] * inv * w[i];
}

// Rotary embedding, in place. Grid (rows, heads); row r's head h is x[r*rowStride + offset + h*headStride ..],
// rotated over dim elements with cos/sin[r*csStride + pair].
// Interleaved pairs (x[2i], x[2i+1]): DeepSeek. Rotate-half pairs (x[i], x[i+dim/2]): Llama, Mixtral, Qwen.
extern "C" __global__ void rope_interleaved_f32(float* x, const float* __restrict__ cos, const float* __restrict__ sin,
                                                int rowStride, int headStride, int offset, int dim, int csStride) {
    float* v = x + static_cast<size_t>(blockIdx.x) * rowStride + offset + static_cast<size_t>(blockIdx.y) * headStride;
    const float* c = cos + static_cast<size_t>(blockIdx.x) * csStride;
    const float* s = sin + static_cast<size_t>(blockIdx.x) * csStride;
    for (int i = threadIdx.x; i < dim / 2; i += blockDim.x) {
        float a = v[2 * i], b = v[2 * i + 1];
        v[2 * i] = a * c[i] - b * s[i];
        v[2 * i + 1] = a * s[i] + b * c[i];
    }
}

extern "C" __global__ void rope_half_f32(float* x, const float* __restrict__ cos, const float* __restrict__ sin,
                                         int rowStride, int headStride, int offset, int dim, int csStride) {
    float* v = x + static_cast<size_t>(blockIdx.x) * rowStride + offset + static_cast<size_t>(blockIdx.y) * headStride;
    const float* c = cos + static_cast<size_t>(blockIdx.x) * csStride;
    const float* s = sin + static_cast<size_t>(blockIdx.x) * csStride;
    const int half = dim / 2;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        float a = v[i], b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = a * s[i] + b * c[i];
    }
}

// out[i] = silu(gate[i]) * up[i]; out may alias either input.
extern "C" __global__ void swiglu_f32(const float* gate, const float* up, float* out, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

// Is (v, i) a better pick than (bv, bi)? Higher score wins, ties go to the lower id (as core's Gate).
__device__ __forceinline__ bool em_better(float v, int i, float bv, int bi) {
    return v > bv || (v == bv && i < bi);
}

// Warp arg-max over a[0..n) skipping entries equal to `skip`; every lane gets the index (or -1 when none).
__device__ __forceinline__ int em_warp_argmax(const float* a, int n, float skip) {
    const int lane = threadIdx.x & 31;
    float bv = -INFINITY;
    int bi = 0x7fffffff;
    for (int i = lane; i < n; i += 32) {
        float v = a[i];
        if (v != skip && (bi == 0x7fffffff || em_better(v, i, bv, bi))) {
            bv = v;
            bi = i;
        }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(EM_FULL_MASK, bv, o);
        int oi = __shfl_xor_sync(EM_FULL_MASK, bi, o);
        if (oi != 0x7fffffff && (bi == 0x7fffffff || em_better(ov, oi, bv, bi))) {
            bv = ov;
            bi = oi;
        }
    }
    return bi == 0x7fffffff ? -1 : bi;
}

// MoE routing of one token per block (one warp), as core's Gate.routeOne: scores = sigmoid or softmax of the
// logits; the bias (hasBias) is added for selection only; with nGroup > 1 and topkGroup < nGroup only the best
// topkGroup groups (by the sum of their top-2 biased scores, or their max without a bias) stay eligible; the
// top-k eligible are chosen, in order; weights are the unbiased scores, renormalised when normalize, times scale.
// Dynamic shared memory: 2*E + nGroup floats.
extern "C" __global__ void topk_gate_f32(const float* __restrict__ logits, const float* __restrict__ bias, int hasBias,
                                         int E, int k, int sigmoidScoring, int nGroup, int topkGroup, int normalize,
                                         float scale, int* __restrict__ ids, float* __restrict__ weights) {
    extern __shared__ float sh[];
    float* scores = sh;
    float* choice = sh + E;
    float* gscore = sh + 2 * E;
    const int lane = threadIdx.x & 31;
    const float* lg = logits + static_cast<size_t>(blockIdx.x) * E;
    if (sigmoidScoring) {
        for (int i = lane; i < E; i += 32) scores[i] = 1.0f / (1.0f + expf(-lg[i]));
    } else {
        float m = -INFINITY;
        for (int i = lane; i < E; i += 32) m = fmaxf(m, lg[i]);
        m = em_warp_max(m);
        float s = 0.f;
        for (int i = lane; i < E; i += 32) {
            float e = expf(lg[i] - m);
            scores[i] = e;
            s += e;
        }
        s = em_warp_sum(s);
        for (int i = lane; i < E; i += 32) scores[i] = scores[i] / s;
    }
    for (int i = lane; i < E; i += 32) choice[i] = hasBias ? scores[i] + bias[i] : scores[i];
    __syncwarp();
    if (nGroup > 1 && topkGroup < nGroup) {
        const int per = E / nGroup;
        for (int g = lane; g < nGroup; g += 32) {
            float first = -INFINITY, second = -INFINITY;
            for (int i = g * per; i < (g + 1) * per; i++) {
                float v = choice[i];
                if (v > first) {
                    second = first;
                    first = v;
                } else if (v > second) {
                    second = v;
                }
            }
            gscore[g] = hasBias ? first + (per > 1 ? second : 0.f) : first;
        }
        __syncwarp();
        for (int kept = 0; kept < topkGroup; kept++) {
            int best = em_warp_argmax(gscore, nGroup, INFINITY);
            __syncwarp();
            if (lane == 0 && best >= 0) gscore[best] = INFINITY;  // marks "kept"
            __syncwarp();
        }
        for (int i = lane; i < E; i += 32) {
            if (gscore[i / per] != INFINITY) choice[i] = -INFINITY;
        }
        __syncwarp();
    }
    int* outIds = ids + static_cast<size_t>(blockIdx.x) * k;
    float* outW = weights + static_cast<size_t>(blockIdx.x) * k;
    float sum = 0.f;
    for (int j = 0; j < k; j++) {
        int best = em_warp_argmax(choice, E, -INFINITY);
        __syncwarp();
        if (best < 0) best = 0;  // fewer eligible experts than k: cannot happen with a valid config
        float w = scores[best];
        sum += w;
        if (lane == 0) {
            outIds[j] = best;
            outW[j] = w;
            choice[best] = -INFINITY;
        }
        __syncwarp();
    }
    if (lane == 0) {
        for (int j = 0; j < k; j++) outW[j] = (normalize ? outW[j] / sum : outW[j]) * scale;
    }
}
