// BF16 matmul rows with AVX512-BF16 (vdpbf16ps), called from Java through the FFM API (NativeBf16Matmul).
//
// Why native: the Vector API cannot emit vdpbf16ps, which multiplies 32 bf16 pairs and adds them into 16 float
// lanes in one instruction. The Java kernel (Bf16Matmul) widens every weight to float first and is bound by its
// loads at about 115 GFLOP/s per core; this one does twice the multiply-adds per instruction on half the bytes.
//
// Numerics: vdpbf16ps takes bf16 on both sides, so each float activation x is split once per call into
// hi = bf16(x) (round to nearest even) and lo = bf16(x - hi). Both products w*hi and w*lo are exact in float
// (8-bit by 8-bit mantissas), so the only loss against float activations is x - hi - lo, under 2^-16 of |x|,
// and the float accumulation itself. bf16 denormals (|x| < 1.2e-38) are read as zero, as the instruction does.
//
// Determinism (the Kernels contract): every (weight row, batch row) output has one accumulator of 16 lanes that
// takes, for each 32-column chunk in order, the hi product and then the lo product; the last partial chunk is
// read with a mask (missing columns are zero and add nothing); the 16 lanes are then summed by one fixed
// reduction. Every tile shape below runs exactly that sequence, so the bits do not depend on the batch size,
// the tile, the row block or the thread.
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#define KERNEL __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define INLINE static inline __attribute__((always_inline))

// Weight rows per cache block when the batch has whole 4-row tiles: 64 rows of up to 2048 columns (256 KiB)
// stay in L2 while every batch tile runs over them, so each weight is read from memory once per call.
#define ROW_BLOCK 64

int em_bf16_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
}

// Per-thread activation buffer (hi and lo planes of every batch row), grown as needed, freed at thread exit.
static pthread_key_t buffer_key;
static pthread_once_t buffer_once = PTHREAD_ONCE_INIT;
static __thread uint16_t* buffer;
static __thread size_t buffer_elems;

static void make_key(void) {
    pthread_key_create(&buffer_key, free);
}

static uint16_t* activation_buffer(size_t elems) {
    if (elems > buffer_elems) {
        pthread_once(&buffer_once, make_key);
        free(buffer);
        buffer = aligned_alloc(64, (elems * sizeof(uint16_t) + 63) / 64 * 64);
        buffer_elems = buffer == NULL ? 0 : elems;
        pthread_setspecific(buffer_key, buffer);
    }
    return buffer;
}

// Splits each batch row of x (cols floats) into hi and lo bf16 planes of c32 elements (zero padded): row b's hi
// plane starts at act + 2*b*c32, its lo plane c32 later.
KERNEL static void split(const float* x, long cols, long batch, long c32, uint16_t* act) {
    for (long b = 0; b < batch; b++) {
        const float* xr = x + b * cols;
        uint16_t* hi = act + 2 * b * c32;
        uint16_t* lo = hi + c32;
        for (long c = 0; c < c32; c += 16) {
            long n = cols - c;
            __mmask16 m = n >= 16 ? (__mmask16) 0xFFFF : (__mmask16) ((1u << (n > 0 ? n : 0)) - 1);
            __m512 v = _mm512_maskz_loadu_ps(m, xr + c);
            __m256bh h = _mm512_cvtneps_pbh(v);
            __m512 hf = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i) h), 16));
            __m256bh l = _mm512_cvtneps_pbh(_mm512_sub_ps(v, hf));
            _mm256_storeu_si256((__m256i*) (hi + c), (__m256i) h);
            _mm256_storeu_si256((__m256i*) (lo + c), (__m256i) l);
        }
    }
}

// One register tile: nr weight rows from row r, nb batch rows from b (nr, nb <= 4, constants after inlining).
KERNEL INLINE void tile(const uint16_t* w, long cols, long full, __mmask32 tail, const uint16_t* act, long c32,
                        float* out, long rows, long r, long b, int nr, int nb) {
    __m512 acc[4][4];
    for (int i = 0; i < nr; i++) {
        for (int j = 0; j < nb; j++) {
            acc[i][j] = _mm512_setzero_ps();
        }
    }
    const uint16_t* wr[4];
    for (int i = 0; i < nr; i++) {
        wr[i] = w + (r + i) * cols;
    }
    const uint16_t* xa[4];
    for (int j = 0; j < nb; j++) {
        xa[j] = act + 2 * (b + j) * c32;
    }
    for (long c = 0; c < full; c += 32) {
        __m512bh wv[4];
        for (int i = 0; i < nr; i++) {
            wv[i] = (__m512bh) _mm512_loadu_si512((const void*) (wr[i] + c));
        }
        for (int j = 0; j < nb; j++) {
            __m512bh hi = (__m512bh) _mm512_load_si512((const void*) (xa[j] + c));
            __m512bh lo = (__m512bh) _mm512_load_si512((const void*) (xa[j] + c32 + c));
            for (int i = 0; i < nr; i++) {
                acc[i][j] = _mm512_dpbf16_ps(acc[i][j], wv[i], hi);
                acc[i][j] = _mm512_dpbf16_ps(acc[i][j], wv[i], lo);
            }
        }
    }
    if (tail) {
        __m512bh wv[4];
        for (int i = 0; i < nr; i++) {
            wv[i] = (__m512bh) _mm512_maskz_loadu_epi16(tail, (const void*) (wr[i] + full));
        }
        for (int j = 0; j < nb; j++) {
            __m512bh hi = (__m512bh) _mm512_load_si512((const void*) (xa[j] + full));
            __m512bh lo = (__m512bh) _mm512_load_si512((const void*) (xa[j] + c32 + full));
            for (int i = 0; i < nr; i++) {
                acc[i][j] = _mm512_dpbf16_ps(acc[i][j], wv[i], hi);
                acc[i][j] = _mm512_dpbf16_ps(acc[i][j], wv[i], lo);
            }
        }
    }
    for (int i = 0; i < nr; i++) {
        for (int j = 0; j < nb; j++) {
            out[(b + j) * rows + r + i] = _mm512_reduce_add_ps(acc[i][j]);
        }
    }
}

// Rows [from, to) against batch rows [b, b + nb), nb a constant after inlining: quads, then 1-3 leftover rows.
KERNEL INLINE void rows_of(const uint16_t* w, long cols, long full, __mmask32 tail, const uint16_t* act,
                           long c32, float* out, long rows, long from, long to, long b, int nb) {
    long r = from;
    for (; r + 4 <= to; r += 4) {
        tile(w, cols, full, tail, act, c32, out, rows, r, b, 4, nb);
    }
    switch (to - r) {
        case 3: tile(w, cols, full, tail, act, c32, out, rows, r, b, 3, nb); break;
        case 2: tile(w, cols, full, tail, act, c32, out, rows, r, b, 2, nb); break;
        case 1: tile(w, cols, full, tail, act, c32, out, rows, r, b, 1, nb); break;
        default: break;
    }
}

KERNEL static void rows_nb(const uint16_t* w, long cols, long full, __mmask32 tail, const uint16_t* act, long c32,
                           float* out, long rows, long from, long to, long b, long nb) {
    switch (nb) {
        case 4: rows_of(w, cols, full, tail, act, c32, out, rows, from, to, b, 4); break;
        case 3: rows_of(w, cols, full, tail, act, c32, out, rows, from, to, b, 3); break;
        case 2: rows_of(w, cols, full, tail, act, c32, out, rows, from, to, b, 2); break;
        case 1: rows_of(w, cols, full, tail, act, c32, out, rows, from, to, b, 1); break;
        default: break;
    }
}

// out[b*rows + r] = sum_c w[r*cols + c] * x[b*cols + c] for r in [from, to), b < batch. Returns 0, or -1 when the
// activation buffer could not be allocated (nothing written).
KERNEL int em_bf16_rows(const uint16_t* w, long rows, long cols, long from, long to, const float* x, long batch,
                        float* out) {
    long c32 = (cols + 31) / 32 * 32;
    uint16_t* act = activation_buffer((size_t) (2 * batch * c32));
    if (act == NULL) {
        return -1;
    }
    split(x, cols, batch, c32, act);
    long full = cols / 32 * 32;
    __mmask32 tail = (__mmask32) ((1ull << (cols - full)) - 1);
    if (batch < 4) {
        // One pass over the rows: a weight row is read once for all (at most 3) batch rows.
        rows_nb(w, cols, full, tail, act, c32, out, rows, from, to, 0, batch);
        return 0;
    }
    for (long r = from; r < to; r += ROW_BLOCK) {
        long end = r + ROW_BLOCK < to ? r + ROW_BLOCK : to;
        long b = 0;
        for (; b + 4 <= batch; b += 4) {
            rows_nb(w, cols, full, tail, act, c32, out, rows, r, end, b, 4);
        }
        if (b < batch) {
            rows_nb(w, cols, full, tail, act, c32, out, rows, r, end, b, batch - b);
        }
    }
    return 0;
}
