// Matmul rows with AVX512-BF16 (vdpbf16ps) for BF16 and FP8 (e4m3, 128x128 block scales) weights, called from
// Java through the FFM API (NativeMatmul).
//
// Why native: the Vector API cannot emit vdpbf16ps, which multiplies 32 bf16 pairs and adds them into 16 float
// lanes in one instruction. The Java kernels (Bf16Matmul, Fp8Matmul) widen every weight to a float first and are
// bound by their loads and conversions; products with several batch rows (prefill, batched decode) run here at
// about twice their speed on the same core.
//
// Numerics: vdpbf16ps takes bf16 on both sides, so each float activation x is split once per call into
// hi = bf16(x) (round to nearest even) and lo = bf16(x - hi). Both products w*hi and w*lo are exact in float
// (8-bit by 8-bit mantissas), so the only loss against float activations is x - hi - lo, under 2^-16 of |x|,
// and the float accumulation itself. bf16 denormals (|x| < 1.2e-38) are read as zero, as the instruction does.
// An FP8 weight converts exactly to bf16 (3 mantissa bits, exponents within range, subnormals by a table); its
// block scale multiplies the activations of that column block (one float rounding) before the split, since the
// four rows of a tile always share their 128-row block.
//
// Determinism (the Kernels contract): every (weight row, batch row) output has one accumulator of 16 lanes that
// takes, for each 32-column chunk in order, the hi product and then the lo product; the last partial chunk is
// read with a mask (missing columns are zero and add nothing); the 16 lanes are then summed by one fixed
// reduction. Every tile shape below runs exactly that sequence, and an FP8 row converted in registers equals the
// same row converted into the row-block scratch, so the bits do not depend on the batch size, the tile, the row
// block or the thread.
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#define KERNEL __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define INLINE static inline __attribute__((always_inline))

// Weight rows per cache block when the batch has whole 4-row tiles: 64 rows of up to 2048 columns (256 KiB)
// stay in L2 while every batch tile runs over them, so each weight is read from memory once per call.
#define ROW_BLOCK 64
#define FP8_BLOCK 128

enum format { BF16, FP8 };

int em_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
}

// Per-thread buffers (activation planes; an FP8 row block converted to bf16), grown as needed, freed at thread
// exit.
#define BUFFERS 2
static pthread_key_t buffer_key[BUFFERS];
static pthread_once_t buffer_once = PTHREAD_ONCE_INIT;
static __thread void* buffer[BUFFERS];
static __thread size_t buffer_bytes[BUFFERS];

static void make_keys(void) {
    for (int i = 0; i < BUFFERS; i++) {
        pthread_key_create(&buffer_key[i], free);
    }
}

static void* thread_buffer(int slot, size_t bytes) {
    if (bytes > buffer_bytes[slot]) {
        pthread_once(&buffer_once, make_keys);
        free(buffer[slot]);
        size_t rounded = (bytes + 63) / 64 * 64;
        buffer[slot] = aligned_alloc(64, rounded);
        buffer_bytes[slot] = buffer[slot] == NULL ? 0 : rounded;
        pthread_setspecific(buffer_key[slot], buffer[slot]);
    }
    return buffer[slot];
}

// Splits each batch row of x (cols floats) into hi and lo bf16 planes of c32 elements (zero padded): row b's hi
// plane starts at act + 2*b*c32, its lo plane c32 later. With block_scales (FP8), column c is first multiplied by
// block_scales[c / 128] * 2^-120 (exact: the scales come folded by 2^120, see Fp8E4M3.SCALE_FOLD).
KERNEL static void split(const float* x, long cols, long batch, long c32, const float* block_scales,
                         uint16_t* act) {
    for (long b = 0; b < batch; b++) {
        const float* xr = x + b * cols;
        uint16_t* hi = act + 2 * b * c32;
        uint16_t* lo = hi + c32;
        for (long c = 0; c < c32; c += 16) {
            long n = cols - c;
            __mmask16 m = n >= 16 ? (__mmask16) 0xFFFF : (__mmask16) ((1u << (n > 0 ? n : 0)) - 1);
            __m512 v = _mm512_maskz_loadu_ps(m, xr + c);
            if (block_scales != NULL) {
                v = _mm512_mul_ps(v, _mm512_set1_ps(block_scales[c / FP8_BLOCK] * 0x1p-120f));
            }
            __m256bh h = _mm512_cvtneps_pbh(v);
            __m512 hf = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i) h), 16));
            __m256bh l = _mm512_cvtneps_pbh(_mm512_sub_ps(v, hf));
            _mm256_storeu_si256((__m256i*) (hi + c), (__m256i) h);
            _mm256_storeu_si256((__m256i*) (lo + c), (__m256i) l);
        }
    }
}

// bf16 bits of the e4m3 subnormals m * 2^-9, m < 8 (a vpermw table, indexed by the byte's low 5 bits: 0-7 when
// the exponent is 0).
static const uint16_t SUBNORMAL[32] = {0x0000, 0x3B00, 0x3B80, 0x3BC0, 0x3C00, 0x3C20, 0x3C40, 0x3C60};

// 32 e4m3 bytes (masked) to 32 bf16 of the same values: the 7 magnitude bits move to bits 10..4 (exponent and top
// of the mantissa), the exponent is rebiased by 127 - 7 = 120, subnormals come from the table, the sign goes to
// bit 15.
KERNEL INLINE __m512bh fp8_to_bf16(const uint8_t* p, __mmask32 mask, __m512i subnormal) {
    __m512i b = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(mask, p));
    __m512i v = _mm512_add_epi16(_mm512_slli_epi16(_mm512_and_si512(b, _mm512_set1_epi16(0x7F)), 4),
                                 _mm512_set1_epi16(120 << 7));
    v = _mm512_mask_permutexvar_epi16(v, _mm512_testn_epi16_mask(b, _mm512_set1_epi16(0x78)), b, subnormal);
    // v | ((b << 8) & 0x8000)
    return (__m512bh) _mm512_ternarylogic_epi32(v, _mm512_slli_epi16(b, 8), _mm512_set1_epi16((short) 0x8000),
                                                0xF8);
}

// 32 weights of row wr from column c (mask: the columns that exist) as bf16.
KERNEL INLINE __m512bh load_weights(enum format f, const void* wr, long c, __mmask32 mask, __m512i subnormal) {
    if (f == FP8) {
        return fp8_to_bf16((const uint8_t*) wr + c, mask, subnormal);
    }
    return (__m512bh) _mm512_maskz_loadu_epi16(mask, (const uint16_t*) wr + c);
}

// One register tile: nr weight rows from row r, nb batch rows from b (nr, nb <= 4, constants after inlining).
KERNEL INLINE void tile(enum format f, const void* w, long cols, long full, __mmask32 tail, const uint16_t* act,
                        long c32, float* out, long rows, long r, long b, int nr, int nb) {
    size_t elem = f == FP8 ? 1 : 2;
    __m512i subnormal = f == FP8 ? _mm512_loadu_si512(SUBNORMAL) : _mm512_setzero_si512();
    __m512 acc[4][4];
    for (int i = 0; i < nr; i++) {
        for (int j = 0; j < nb; j++) {
            acc[i][j] = _mm512_setzero_ps();
        }
    }
    const char* wr[4];
    for (int i = 0; i < nr; i++) {
        wr[i] = (const char*) w + (size_t) (r + i) * cols * elem;
    }
    const uint16_t* xa[4];
    for (int j = 0; j < nb; j++) {
        xa[j] = act + 2 * (b + j) * c32;
    }
    for (long c = 0; c < c32; c += 32) {
        __mmask32 mask = c < full ? (__mmask32) 0xFFFFFFFFu : tail;
        __m512bh wv[4];
        for (int i = 0; i < nr; i++) {
            wv[i] = load_weights(f, wr[i], c, mask, subnormal);
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
    for (int i = 0; i < nr; i++) {
        for (int j = 0; j < nb; j++) {
            out[(b + j) * rows + r + i] = _mm512_reduce_add_ps(acc[i][j]);
        }
    }
}

// Rows [from, to) against batch rows [b, b + nb), nb a constant after inlining: quads, then 1-3 leftover rows.
KERNEL INLINE void rows_of(enum format f, const void* w, long cols, long full, __mmask32 tail, const uint16_t* act,
                           long c32, float* out, long rows, long from, long to, long b, int nb) {
    long r = from;
    for (; r + 4 <= to; r += 4) {
        tile(f, w, cols, full, tail, act, c32, out, rows, r, b, 4, nb);
    }
    switch (to - r) {
        case 3: tile(f, w, cols, full, tail, act, c32, out, rows, r, b, 3, nb); break;
        case 2: tile(f, w, cols, full, tail, act, c32, out, rows, r, b, 2, nb); break;
        case 1: tile(f, w, cols, full, tail, act, c32, out, rows, r, b, 1, nb); break;
        default: break;
    }
}

#define ROWS_NB(F)                                                                                                 \
    KERNEL static void rows_nb_##F(const void* w, long cols, long full, __mmask32 tail, const uint16_t* act,      \
                                   long c32, float* out, long rows, long from, long to, long b, long nb) {         \
        switch (nb) {                                                                                              \
            case 4: rows_of(F, w, cols, full, tail, act, c32, out, rows, from, to, b, 4); break;                   \
            case 3: rows_of(F, w, cols, full, tail, act, c32, out, rows, from, to, b, 3); break;                   \
            case 2: rows_of(F, w, cols, full, tail, act, c32, out, rows, from, to, b, 2); break;                   \
            case 1: rows_of(F, w, cols, full, tail, act, c32, out, rows, from, to, b, 1); break;                   \
            default: break;                                                                                        \
        }                                                                                                          \
    }
ROWS_NB(BF16)
ROWS_NB(FP8)

// Every batch row against rows [from, to) of bf16 weights w: batch tiles of 4 over row blocks of ROW_BLOCK, so a
// block of weights stays in L2 for all of them, then the leftover 1-3 batch rows.
KERNEL static void bf16_all_batch(const uint16_t* w, long cols, long full, __mmask32 tail, const uint16_t* act,
                                  long c32, float* out, long rows, long from, long to, long batch) {
    for (long r = from; r < to; r += ROW_BLOCK) {
        long end = r + ROW_BLOCK < to ? r + ROW_BLOCK : to;
        long b = 0;
        for (; b + 4 <= batch; b += 4) {
            rows_nb_BF16(w, cols, full, tail, act, c32, out, rows, r, end, b, 4);
        }
        if (b < batch) {
            rows_nb_BF16(w, cols, full, tail, act, c32, out, rows, r, end, b, batch - b);
        }
    }
}

// out[b*rows + r] = sum_c w[r*cols + c] * x[b*cols + c] for r in [from, to), b < batch (bf16 weights). Returns 0,
// or -1 when a buffer could not be allocated (nothing written).
KERNEL int em_bf16_rows(const uint16_t* w, long rows, long cols, long from, long to, const float* x, long batch,
                        float* out) {
    long c32 = (cols + 31) / 32 * 32;
    uint16_t* act = thread_buffer(0, (size_t) (2 * batch * c32) * sizeof(uint16_t));
    if (act == NULL) {
        return -1;
    }
    split(x, cols, batch, c32, NULL, act);
    long full = cols / 32 * 32;
    __mmask32 tail = (__mmask32) ((1ull << (cols - full)) - 1);
    if (batch < 4) {
        // One pass over the rows: a weight row is read once for all (at most 3) batch rows.
        rows_nb_BF16(w, cols, full, tail, act, c32, out, rows, from, to, 0, batch);
    } else {
        bf16_all_batch(w, cols, full, tail, act, c32, out, rows, from, to, batch);
    }
    return 0;
}

// The same for e4m3 weights w with block scales: scales[(r/128) * ceil(cols/128) + c/128] * 2^-120 multiplies the
// weights of block (r/128, c/128) (the checkpoint's weight_scale_inv, stored folded by 2^120 for the Java kernel). Fewer than 4 batch rows convert the weights in
// registers; more convert each row block once into a bf16 scratch that every batch tile then reads.
KERNEL int em_fp8_rows(const uint8_t* w, const float* scales, long rows, long cols, long from, long to,
                       const float* x, long batch, float* out) {
    long c32 = (cols + 31) / 32 * 32;
    long col_blocks = (cols + FP8_BLOCK - 1) / FP8_BLOCK;
    uint16_t* act = thread_buffer(0, (size_t) (2 * batch * c32) * sizeof(uint16_t));
    uint16_t* converted = batch < 4 ? NULL : thread_buffer(1, (size_t) (ROW_BLOCK * cols) * sizeof(uint16_t));
    if (act == NULL || (batch >= 4 && converted == NULL)) {
        return -1;
    }
    long full = cols / 32 * 32;
    __mmask32 tail = (__mmask32) ((1ull << (cols - full)) - 1);
    __m512i subnormal = _mm512_loadu_si512(SUBNORMAL);
    for (long r0 = from; r0 < to; ) {
        long block_row = r0 / FP8_BLOCK;
        long r1 = (block_row + 1) * FP8_BLOCK < to ? (block_row + 1) * FP8_BLOCK : to;
        split(x, cols, batch, c32, scales + block_row * col_blocks, act);
        if (batch < 4) {
            rows_nb_FP8(w, cols, full, tail, act, c32, out, rows, r0, r1, 0, batch);
        } else {
            for (long s = r0; s < r1; s += ROW_BLOCK) {
                long e = s + ROW_BLOCK < r1 ? s + ROW_BLOCK : r1;
                for (long r = s; r < e; r++) {
                    const uint8_t* src = w + (size_t) r * cols;
                    uint16_t* dst = converted + (size_t) (r - s) * cols;
                    for (long c = 0; c < c32; c += 32) {
                        __mmask32 mask = c < full ? (__mmask32) 0xFFFFFFFFu : tail;
                        _mm512_mask_storeu_epi16(dst + c, mask, (__m512i) fp8_to_bf16(src + c, mask, subnormal));
                    }
                }
                // Rows [s, e) are rows [0, e - s) of the scratch; out shifted so that row indices stay global.
                bf16_all_batch(converted, cols, full, tail, act, c32, out + s, rows, 0, e - s, batch);
            }
        }
        r0 = r1;
    }
    return 0;
}
