// CPU stand-in for mma.h: nvcuda::wmma 16x16x16 bf16 -> f32 on the execution model of emu.h. A fragment holds 8
// elements per lane; element e of lane l is matrix entry (l*8 + e) / 16, (l*8 + e) % 16 for every fragment type.
// The hardware's layout differs and is unspecified; kernels may only rely on it being fixed per fragment type
// (which this model keeps), never on what it is. mma_sync exchanges the warp's fragments through memory.
#pragma once
#include <type_traits>
#include "emu.h"

namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
    static_assert(M == 16 && N == 16 && K == 16, "the model has 16x16x16 fragments only");
    static constexpr int num_elements = 8;
    T x[8];
};

inline int emuRow(int e) { return (static_cast<int>(threadIdx.x & 31) * 8 + e) / 16; }
inline int emuCol(int e) { return (static_cast<int>(threadIdx.x & 31) * 8 + e) % 16; }

template <typename Use, typename T, typename L>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, T, L>& f, const T* p, unsigned ldm) {
    constexpr bool rowMajor = std::is_same_v<L, row_major>;
    for (int e = 0; e < 8; e++) f.x[e] = rowMajor ? p[emuRow(e) * ldm + emuCol(e)] : p[emuCol(e) * ldm + emuRow(e)];
}

inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float>& f, const float* p, unsigned ldm, layout_t l) {
    for (int e = 0; e < 8; e++)
        f.x[e] = l == mem_row_major ? p[emuRow(e) * ldm + emuCol(e)] : p[emuCol(e) * ldm + emuRow(e)];
}

inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f, unsigned ldm, layout_t l) {
    for (int e = 0; e < 8; e++)
        (l == mem_row_major ? p[emuRow(e) * ldm + emuCol(e)] : p[emuCol(e) * ldm + emuRow(e)]) = f.x[e];
}

template <typename Use, typename T, typename L, typename V>
inline void fill_fragment(fragment<Use, 16, 16, 16, T, L>& f, const V& v) {
    for (int e = 0; e < 8; e++) f.x[e] = static_cast<T>(v);
}

inline float emuA[32][256], emuB[32][256];

// d = a * b + c; d may be c.
template <typename LA, typename LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float>& d,
                     const fragment<matrix_a, 16, 16, 16, __nv_bfloat16, LA>& a,
                     const fragment<matrix_b, 16, 16, 16, __nv_bfloat16, LB>& b,
                     const fragment<accumulator, 16, 16, 16, float>& c) {
    const int w = threadIdx.x >> 5;
    for (int e = 0; e < 8; e++) {
        emuA[w][emuRow(e) * 16 + emuCol(e)] = __bfloat162float(a.x[e]);
        emuB[w][emuRow(e) * 16 + emuCol(e)] = __bfloat162float(b.x[e]);
    }
    emuWarpBar[w]->arrive_and_wait();
    float out[8];
    for (int e = 0; e < 8; e++) {
        float s = c.x[e];
        for (int k = 0; k < 16; k++) s = fmaf(emuA[w][emuRow(e) * 16 + k], emuB[w][k * 16 + emuCol(e)], s);
        out[e] = s;
    }
    emuWarpBar[w]->arrive_and_wait();  // the warp's operands are read before any lane's next mma writes them
    for (int e = 0; e < 8; e++) d.x[e] = out[e];
}
}  // namespace wmma
}  // namespace nvcuda
