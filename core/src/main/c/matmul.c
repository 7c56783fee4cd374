// Matmul rows with AVX512-BF16 (vdpbf16ps) for BF16, FP8 (e4m3, 128x128 block scales) and int8 (F32 scales per
// 32k columns) weights, and with AVX512-VNNI (vpdpbusd) for int4 (Q4_0 blocks; see the sections at the end),
// called from Java through the FFM API (NativeMatmul).
//
// Why native: the Vector API cannot emit vdpbf16ps, which multiplies 32 bf16 pairs and adds them into 16 float
// lanes in one instruction. The Java kernels (Bf16Matmul, Fp8Matmul) widen every weight to a float first and are
// bound by their loads and conversions; BF16 and FP8 products with several batch rows (prefill, batched decode)
// run here at about twice their speed on the same core, int4 at 1.5-2.9 times at any batch (measured before it
// became W4A8), int8 at 1.25-3 times (README).
//
// Numerics: vdpbf16ps takes bf16 on both sides, so each float activation x is split once per call into
// hi = bf16(x) (round to nearest even) and lo = bf16(x - hi). Both products w*hi and w*lo are exact in float
// (8-bit by 8-bit mantissas), so the only loss against float activations is x - hi - lo, under 2^-16 of |x|,
// and the float accumulation itself. bf16 denormals (|x| < 1.2e-38) are read as zero, as the instruction does.
// FP8 and int8 weights convert exactly to bf16 (at most 8 significant bits, exponents within range) by byte
// lookups. An FP8 block scale multiplies the activations of that column block (one float rounding) before the
// split, since the four rows of a tile always share their 128-row block; int8's scales, one per row and block,
// multiply each block's partial sums. int4 differs: W4A8, integer dot products against activations quantized to
// int8 per 32 columns (its section).
//
// BF16 and FP8 weights come in plain rows or interleaved, BF16 in eights and FP8 in fours, and int8 always in fours
// (woven_row; InterleavedRows.java: a batch-1 tile of rows then reads one stream from memory instead of one per row);
// the layout moves bytes, not the order of any output's sums.
//
// Determinism (the Kernels contract): every (weight row, batch row) output has one accumulator of 16 lanes that
// takes, for each 32-column chunk in order, the hi product and then the lo product (int4: its own sequence); the
// last partial chunk is read with a mask (missing columns are zero and add nothing); the 16 lanes are then summed
// by one fixed reduction. Every tile shape below runs exactly that sequence, and an FP8 row converted in
// registers equals the same row converted into the row-block scratch, so the bits do not depend on the batch size,
// the tile, the row block or the thread.
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#define KERNEL __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi,avx512bf16,avx512vnni")))
#define INLINE static inline __attribute__((always_inline))

// Weight rows per cache block when the batch has whole 4-row tiles: 64 rows of up to 2048 columns (256 KiB)
// stay in L2 while every batch tile runs over them, so each weight is read from memory once per call.
#define ROW_BLOCK 64
// The first block of a call is smaller: nothing prefetched it (struct next_block), so the tiles wait for its bytes,
// and a call of a chunk of a small product (a 384-row product in 8 chunks: 48 rows) had no next block to overlap.
// Two threads, 8 chunks, out of cache, batch 8, first block of 32 rows against 64: 384x1024 36-37 / 41 us,
// 1024x1024 73-76 / 78-80, 2816x1024 169-175 / 179-181, 32000x1024 1602-1630 / 1681-1723.
#define FIRST_BLOCK 32

// Where the row block starting at s ends, in a call whose rows start at `from`: FIRST_BLOCK rows for the call's first
// block, ROW_BLOCK for the others, never past `limit`.
static inline long block_end(long from, long s, long limit) {
    long e = s + (s == from ? FIRST_BLOCK : ROW_BLOCK);
    return e < limit ? e : limit;
}
#define FP8_BLOCK 128

// Software prefetch distance along the weights, in bytes. A batch-1 product streams each weight once from memory,
// several rows at a time, and the hardware prefetchers alone leave those streams short of the bandwidth. Two
// threads, 704x1024 products over 280 MB of mapped weights (an AMD EPYC Zen 5), GB/s with the prefetch 1 KiB /
// 4 KiB ahead: FP8 32-36 / 44-46, int8 27-28 / 37-39, int4 (the bf16-lookup kernel before W4A8; none before)
// 28-29 / 35-37, BF16 (none before) 47-50 / 50-51; 8 KiB no better. At 1 KiB a 1024-column row's prefetch
// mostly hit the next row of its own tile, already being read.
#define PREFETCH_AHEAD 4096

// Batched products (4 or more batch rows) take the weights a row block at a time: the block is read from memory by
// the first batch tile (or converted from FP8/int8 into scratch) and every batch tile then computes from cache. Read
// that way, a block's memory time and its compute time add up instead of overlapping: one thread, a 2816x1024
// BF16 product out of cache at batch 8 took 428-438 us against 230-270 in cache. So while the tiles compute on one
// block they prefetch the next one, spread evenly over their steps (a burst of the whole block at once did not
// help): 281-291 us; a batch-4 tile pass then reads at about the bandwidth (README, "Batched products"). Not for
// int4 (its section says why).
struct next_block {
    const char* p;    // next line to prefetch
    const char* end;  // end of the next block
    long per_step;    // bytes to prefetch per tile step
};

// The next block [p, p + bytes), spread over about `steps` tile steps (at least one line per step).
INLINE struct next_block next_block(const void* p, long bytes, long steps) {
    struct next_block n = {(const char*) p, (const char*) p + (bytes > 0 ? bytes : 0),
                           steps > 0 ? (bytes / steps + 63) / 64 * 64 : bytes};
    if (n.per_step < 64) {
        n.per_step = 64;
    }
    return n;
}

// One tile step's share of the next block (none when n is NULL: batch 1-3, which streams its weights once).
INLINE void next_block_step(struct next_block* n) {
    if (n == NULL) {
        return;
    }
    const char* stop = n->p + n->per_step < n->end ? n->p + n->per_step : n->end;
    for (; n->p < stop; n->p += 64) {
        _mm_prefetch(n->p, _MM_HINT_T0);
    }
}

int em_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vbmi")
            && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vnni");
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

// hi and lo bf16 halves of 16 floats.
KERNEL INLINE void halves(__m512 v, __m256bh* h, __m256bh* l) {
    *h = _mm512_cvtneps_pbh(v);
    __m512 hf = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i) *h), 16));
    *l = _mm512_cvtneps_pbh(_mm512_sub_ps(v, hf));
}

// 16 floats of x from column c, zero past cols.
KERNEL INLINE __m512 load16(const float* x, long c, long cols) {
    long n = cols - c;
    __mmask16 m = n >= 16 ? (__mmask16) 0xFFFF : (__mmask16) ((1u << (n > 0 ? n : 0)) - 1);
    return _mm512_maskz_loadu_ps(m, x + c);
}

// Splits each batch row of x (cols floats) into hi and lo bf16 planes of c32 elements (zero padded): row b's hi
// plane starts at act + 2*b*c32, its lo plane c32 later.
KERNEL static void split(const float* x, long cols, long batch, long c32, uint16_t* act) {
    for (long b = 0; b < batch; b++) {
        uint16_t* hi = act + 2 * b * c32;
        uint16_t* lo = hi + c32;
        for (long c = 0; c < c32; c += 16) {
            __m256bh h, l;
            halves(load16(x + b * cols, c, cols), &h, &l);
            _mm256_storeu_si256((__m256i*) (hi + c), (__m256i) h);
            _mm256_storeu_si256((__m256i*) (lo + c), (__m256i) l);
        }
    }
}

// The FP8 form of split: planes of c64 elements, each column multiplied first by its block's scale
// (block_scales[c / 128] * 2^-120: exact, the scales come folded by 2^120, see Fp8E4M3.SCALE_FOLD), and within
// each 64-column group the order fp8_to_bf16 gives the weights: columns 0-7, 16-23, 32-39, 48-55, then the rest.
KERNEL static void split_fp8(const float* x, long cols, long batch, long c64, const float* block_scales,
                             uint16_t* act) {
    for (long b = 0; b < batch; b++) {
        uint16_t* hi = act + 2 * b * c64;
        uint16_t* lo = hi + c64;
        for (long g = 0; g < c64; g += 64) {
            __m512 scale = _mm512_set1_ps(block_scales[g / FP8_BLOCK] * 0x1p-120f);
            for (int p = 0; p < 4; p++) {
                __m256bh h, l;
                halves(_mm512_mul_ps(load16(x + b * cols, g + 16 * p, cols), scale), &h, &l);
                // columns 16p..16p+7 go to the first half of the group, 16p+8..16p+15 to the second
                _mm_storeu_si128((__m128i*) (hi + g + 8 * p), _mm256_castsi256_si128((__m256i) h));
                _mm_storeu_si128((__m128i*) (hi + g + 32 + 8 * p), _mm256_extracti128_si256((__m256i) h, 1));
                _mm_storeu_si128((__m128i*) (lo + g + 8 * p), _mm256_castsi256_si128((__m256i) l));
                _mm_storeu_si128((__m128i*) (lo + g + 32 + 8 * p), _mm256_extracti128_si256((__m256i) l, 1));
            }
        }
    }
}

// The bf16 bits of every e4m3 magnitude (7 bits: exponent and mantissa), split into high and low bytes for two
// 128-entry byte lookups (vpermi2b): exact, subnormals included. Filled once when the library loads.
static uint8_t FP8_HI[128] __attribute__((aligned(64)));
static uint8_t FP8_LO[128] __attribute__((aligned(64)));

__attribute__((constructor)) static void fill_fp8_tables(void) {
    for (int mag = 0; mag < 128; mag++) {
        int e = mag >> 3;
        int m = mag & 7;
        // value = 2^(e-7) * (1 + m/8), or m * 2^-9 when e == 0; as bf16: exponent e + 120, mantissa m << 4
        uint16_t bits;
        if (e > 0) {
            bits = (uint16_t) (((e + 120) << 7) | (m << 4));
        } else if (m == 0) {
            bits = 0;
        } else {
            int shift = 0;  // normalise m * 2^-9: m = 1, 2-3, 4-7 have their leading one at bit 0, 1, 2
            while ((m >> (shift + 1)) != 0) {
                shift++;
            }
            bits = (uint16_t) (((118 + shift) << 7) | (((m << (7 - shift)) & 0x7F)));
        }
        FP8_HI[mag] = (uint8_t) (bits >> 8);
        FP8_LO[mag] = (uint8_t) bits;
    }
}

// Two 128-entry byte tables, the high and the low bytes of bf16 values (FP8's and int8's), for vpermi2b.
struct byte_tables {
    __m512i hi0, hi1, lo0, lo1;
};

KERNEL INLINE struct byte_tables byte_tables(const uint8_t* hi, const uint8_t* lo) {
    struct byte_tables t = {_mm512_load_si512(hi), _mm512_load_si512(hi + 64), _mm512_load_si512(lo),
                            _mm512_load_si512(lo + 64)};
    return t;
}

// 64 e4m3 bytes (masked; missing ones read as zero) to 64 bf16 of the same values, in two vectors: a holds
// columns 0-7, 16-23, 32-39, 48-55 of the group and b the others (byte unpacking works within 128-bit lanes; the
// FP8 activation planes are laid out in the same order, see split_fp8). Two lookups, one sign merge, two unpacks.
KERNEL INLINE void fp8_to_bf16(const uint8_t* p, __mmask64 mask, const struct byte_tables* t, __m512bh* a,
                               __m512bh* b) {
    __m512i v = _mm512_maskz_loadu_epi8(mask, p);
    __m512i hi = _mm512_permutex2var_epi8(t->hi0, v, t->hi1);
    __m512i lo = _mm512_permutex2var_epi8(t->lo0, v, t->lo1);
    hi = _mm512_ternarylogic_epi32(hi, v, _mm512_set1_epi8((char) 0x80), 0xF8);  // hi | (v & 0x80)
    *a = (__m512bh) _mm512_unpacklo_epi8(lo, hi);
    *b = (__m512bh) _mm512_unpackhi_epi8(lo, hi);
}

// The accumulation every output gets, one 32-column chunk: acc += w * hi, then acc += w * lo.
#define DP2(acc, w, hi, lo) (acc) = _mm512_dpbf16_ps(_mm512_dpbf16_ps((acc), (w), (hi)), (w), (lo))

// Where row r's full 64-byte chunks start (the first at p, `step` bytes apart) and its last partial chunk, rows of
// row_bytes with `full` bytes in whole chunks: plain rows, or, for r below `woven` (rows / g * g of a matrix whose
// rows are woven g at a time, else 0), InterleavedRows.java's layout: chunk k of row gq + i at gq * row_bytes +
// 64 (g k + i), so the g rows of a tile are one sequential stream through memory, and a last partial chunk of
// t = row_bytes - full bytes at gq * row_bytes + g full + t i. BF16 weaves 8 rows (g = 8), FP8 and int8 4.
struct woven_row {
    const uint8_t* p;
    long step;
    const uint8_t* part;
};

KERNEL INLINE struct woven_row woven_row(const uint8_t* w, long row_bytes, long full, long woven, long g,
                                         long r) {
    struct woven_row b;
    if (r < woven) {
        const uint8_t* group = w + (r & ~(g - 1)) * row_bytes;
        long i = r & (g - 1);
        b.p = group + 64 * i;
        b.step = 64 * g;
        b.part = group + g * full + (row_bytes - full) * i;
    } else {
        b.p = w + r * row_bytes;
        b.step = 64;
        b.part = b.p + full;
    }
    return b;
}

// The tile's step for one 32-column chunk at column c: every (row, batch row) accumulator takes w * hi, then w * lo.
KERNEL INLINE void bf16_chunk(__m512 acc[8][4], const __m512bh* wv, const uint16_t* act, long c32, long c, long b,
                              int nr, int nb) {
    for (int j = 0; j < nb; j++) {
        const uint16_t* xa = act + 2 * (b + j) * c32 + c;
        __m512bh hi = (__m512bh) _mm512_load_si512((const void*) xa);
        __m512bh lo = (__m512bh) _mm512_load_si512((const void*) (xa + c32));
        for (int i = 0; i < nr; i++) {
            DP2(acc[i][j], wv[i], hi, lo);
        }
    }
}

// One register tile of bf16 weights: nr rows from r (row stride `stride` elements; rows below `woven` woven in
// eights, woven_row), nb batch rows from b (nr <= 8, nb <= 4, constants after inlining), over c32 columns of which
// the chunk at `full` (if any) is partial.
KERNEL INLINE void tile_bf16(const uint16_t* w, long stride, long full, __mmask32 tail, long woven,
                             const uint16_t* act, long c32, float* out, long rows, struct next_block* nx, long r,
                             long b, int nr, int nb) {
    __m512 acc[8][4];
    for (int i = 0; i < nr; i++) {
        for (int j = 0; j < nb; j++) {
            acc[i][j] = _mm512_setzero_ps();
        }
    }
    const uint8_t* p[8];
    const uint8_t* part[8];
    long step[8];
    for (int i = 0; i < nr; i++) {
        struct woven_row row = woven_row((const uint8_t*) w, 2 * stride, 2 * full, woven, 8, r + i);
        p[i] = row.p;
        part[i] = row.part;
        step[i] = row.step;
    }
    __m512bh wv[8];
    for (long c = 0; c < full; c += 32) {
        for (int i = 0; i < nr; i++) {
            if (nx == NULL) {
                _mm_prefetch((const char*) p[i] + PREFETCH_AHEAD, _MM_HINT_T0);
            }
            wv[i] = (__m512bh) _mm512_loadu_si512((const void*) p[i]);
            p[i] += step[i];
        }
        bf16_chunk(acc, wv, act, c32, c, b, nr, nb);
        next_block_step(nx);
    }
    if (full < c32) {
        for (int i = 0; i < nr; i++) {
            wv[i] = (__m512bh) _mm512_maskz_loadu_epi16(tail, part[i]);
        }
        bf16_chunk(acc, wv, act, c32, full, b, nr, nb);
    }
    for (int i = 0; i < nr; i++) {
        for (int j = 0; j < nb; j++) {
            out[(b + j) * rows + r + i] = _mm512_reduce_add_ps(acc[i][j]);
        }
    }
}

KERNEL INLINE void int8_to_bf16(const uint8_t* p, __mmask64 mask, const struct byte_tables* t, __m512bh* a,
                                __m512bh* b);

// Rows [s, e) of FP8 (int8 == 0) or int8 weights converted to bf16 into dst (row r at dst + (r - s) * c64, each
// 64-column group in its converter's order; the last partial group read with `tail`): the row-block scratch of
// both formats' batch tiles, the same values as their in-register conversion. FP8 rows below `woven` are woven in
// fours (woven_row).
KERNEL INLINE void convert_rows(const uint8_t* w, long cols, long c64, long full, __mmask64 tail,
                                const struct byte_tables* t, int int8, long woven, long s, long e, uint16_t* dst) {
    for (long r = s; r < e; ) {
        // A whole woven quad goes group by group, its four rows together: one stream through memory, as the
        // batch-1 tile reads it (row by row, each row's groups would be 256 bytes apart).
        int n = r < woven && (r & 3) == 0 && r + 4 <= e ? 4 : 1;
        struct woven_row row[4];
        for (int i = 0; i < n; i++) {
            row[i] = woven_row(w, cols, full, woven, 4, r + i);
        }
        for (long g = 0; g < c64; g += 64) {
            int whole = g < full;
            __mmask64 mask = whole ? (__mmask64) ~0ull : tail;
            for (int i = 0; i < n; i++) {
                __m512bh a, b;
                const uint8_t* p = whole ? row[i].p + (g / 64) * row[i].step : row[i].part;
                if (int8) {
                    int8_to_bf16(p, mask, t, &a, &b);
                } else {
                    fp8_to_bf16(p, mask, t, &a, &b);
                }
                _mm512_store_si512((void*) (dst + (r + i - s) * c64 + g), (__m512i) a);
                _mm512_store_si512((void*) (dst + (r + i - s) * c64 + g + 32), (__m512i) b);
            }
        }
        r += n;
    }
}

// One batch row's activations for a 64-column group of planes of c64 (FP8's and int8's): the hi and lo halves of
// its two 32-column chunks, a and b.
struct group_act {
    __m512bh hia, loa, hib, lob;
};

KERNEL INLINE struct group_act group_act(const uint16_t* act, long c64, long row, long g) {
    const uint16_t* xa = act + 2 * row * c64 + g;
    struct group_act x = {(__m512bh) _mm512_load_si512((const void*) xa),
                          (__m512bh) _mm512_load_si512((const void*) (xa + c64)),
                          (__m512bh) _mm512_load_si512((const void*) (xa + 32)),
                          (__m512bh) _mm512_load_si512((const void*) (xa + c64 + 32))};
    return x;
}

// The FP8 tile's step for one 64-column group g: convert each row's group (bytes at p[i], masked) and run both
// chunks through every (row, batch row) accumulator.
KERNEL INLINE void fp8_group(__m512 acc[4][4], const uint8_t* const* p, __mmask64 mask, int prefetch,
                             const struct byte_tables* t, const uint16_t* act, long c64, long g, long b, int nr,
                             int nb) {
    __m512bh wa[4], wb[4];
    for (int i = 0; i < nr; i++) {
        if (prefetch) {
            _mm_prefetch((const char*) (p[i] + PREFETCH_AHEAD), _MM_HINT_T0);
        }
        fp8_to_bf16(p[i], mask, t, &wa[i], &wb[i]);
    }
    for (int j = 0; j < nb; j++) {
        struct group_act x = group_act(act, c64, b + j, g);
        for (int i = 0; i < nr; i++) {
            DP2(acc[i][j], wa[i], x.hia, x.loa);
            DP2(acc[i][j], wb[i], x.hib, x.lob);
        }
    }
}

// One register tile of e4m3 weights converted in registers (nb <= 3): the same sequence per output as tile_bf16
// over the converted row (chunk a, then chunk b of every 64-column group). Rows below `woven` are woven in fours.
KERNEL INLINE void tile_fp8(const uint8_t* w, long cols, long c64, __mmask64 tail, long woven,
                            const struct byte_tables* t, const uint16_t* act, float* out, long rows, long r, long b,
                            int nr, int nb) {
    __m512 acc[4][4];
    for (int i = 0; i < nr; i++) {
        for (int j = 0; j < nb; j++) {
            acc[i][j] = _mm512_setzero_ps();
        }
    }
    long full = cols / 64 * 64;
    const uint8_t* p[4];
    const uint8_t* part[4];
    long step[4];
    for (int i = 0; i < nr; i++) {
        struct woven_row row = woven_row(w, cols, full, woven, 4, r + i);
        p[i] = row.p;
        part[i] = row.part;
        step[i] = row.step;
    }
    for (long g = 0; g < full; g += 64) {
        fp8_group(acc, p, (__mmask64) ~0ull, 1, t, act, c64, g, b, nr, nb);
        for (int i = 0; i < nr; i++) {
            p[i] += step[i];
        }
    }
    if (full < c64) {
        fp8_group(acc, part, tail, 0, t, act, c64, full, b, nr, nb);
    }
    for (int i = 0; i < nr; i++) {
        for (int j = 0; j < nb; j++) {
            out[(b + j) * rows + r + i] = _mm512_reduce_add_ps(acc[i][j]);
        }
    }
}

// Rows [from, to) against batch rows [b, b + nb): tiles of WIDE(nb) rows, then quads, then 1-3 leftover rows; nb
// dispatched to constants.
#define ROWS_OF(NAME, TILE, PARAMS, ARGS, WIDE)                                                                    \
    KERNEL INLINE void NAME##_nb(PARAMS, long from, long to, long b, int nb) {                                     \
        long r = from;                                                                                             \
        for (; r + WIDE(nb) <= to; r += WIDE(nb)) {                                                                \
            TILE(ARGS, r, b, WIDE(nb), nb);                                                                        \
        }                                                                                                          \
        for (; r + 4 <= to; r += 4) {                                                                              \
            TILE(ARGS, r, b, 4, nb);                                                                               \
        }                                                                                                          \
        switch (to - r) {                                                                                          \
            case 3: TILE(ARGS, r, b, 3, nb); break;                                                                \
            case 2: TILE(ARGS, r, b, 2, nb); break;                                                                \
            case 1: TILE(ARGS, r, b, 1, nb); break;                                                                \
            default: break;                                                                                        \
        }                                                                                                          \
    }                                                                                                              \
    KERNEL static void NAME(PARAMS, long from, long to, long b, long nb) {                                         \
        switch (nb) {                                                                                              \
            case 4: NAME##_nb(ARGS, from, to, b, 4); break;                                                        \
            case 3: NAME##_nb(ARGS, from, to, b, 3); break;                                                        \
            case 2: NAME##_nb(ARGS, from, to, b, 2); break;                                                        \
            case 1: NAME##_nb(ARGS, from, to, b, 1); break;                                                        \
            default: break;                                                                                        \
        }                                                                                                          \
    }
#define BF16_PARAMS const uint16_t* w, long stride, long full, __mmask32 tail, long woven, const uint16_t* act, \
                    long c32, float* out, long rows, struct next_block* nx
#define BF16_ARGS w, stride, full, tail, woven, act, c32, out, rows, nx
#define FP8_PARAMS const uint8_t* w, long cols, long c64, __mmask64 tail, long woven, \
                   const struct byte_tables* t, const uint16_t* act, float* out, long rows
#define FP8_ARGS w, cols, c64, tail, woven, t, act, out, rows
// Rows per bf16 tile: with 1-3 batch rows (decode; the experts of batched decode), 8 or 6 rows, more streams from
// memory at once and each activation load shared by more rows: 704x1024 out of cache, one thread, 2 and 3 batch
// rows 54 and 61 us against 62 and 69 with quads (C loop, alternated). 8 rows x 3 batch rows spill (24
// accumulators): 6. Four batch rows keep quads (16 accumulators).
#define BF16_WIDE(nb) ((nb) <= 2 ? 8 : (nb) == 3 ? 6 : 4)
#define QUADS(nb) 4
ROWS_OF(bf16_rows_nb, tile_bf16, BF16_PARAMS, BF16_ARGS, BF16_WIDE)
ROWS_OF(fp8_rows_nb, tile_fp8, FP8_PARAMS, FP8_ARGS, QUADS)

// Every batch row against one row block [r, end) of bf16 weights (at most ROW_BLOCK rows, which stay in L2 for all
// the batch tiles): batch tiles of 4, then the leftover 1-3 batch rows; meanwhile the next block's bytes
// [next, next + next_bytes) are prefetched (struct next_block).
KERNEL static void bf16_block(const uint16_t* w, long stride, long full, __mmask32 tail, long woven,
                              const uint16_t* act, long c32, float* out, long rows, long r, long end, long batch,
                              const void* next, long next_bytes) {
    long n = end - r;
    long left = batch % 4;
    long tiles = (n + 3) / 4 * (batch / 4) + (left > 0 ? (n + BF16_WIDE(left) - 1) / BF16_WIDE(left) : 0);
    struct next_block coming = next_block(next, next_bytes, c32 / 32 * tiles);
    struct next_block* nx = &coming;
    long b = 0;
    for (; b + 4 <= batch; b += 4) {
        bf16_rows_nb(BF16_ARGS, r, end, b, 4);
    }
    if (b < batch) {
        bf16_rows_nb(BF16_ARGS, r, end, b, batch - b);
    }
}

// Every batch row against rows [from, to) of bf16 weights, a row block at a time (bf16_block).
KERNEL static void bf16_all_batch(const uint16_t* w, long stride, long full, __mmask32 tail, long woven,
                                  const uint16_t* act, long c32, float* out, long rows, long from, long to,
                                  long batch) {
    for (long r = from, end; r < to; r = end) {
        end = block_end(from, r, to);
        long next_end = block_end(from, end, to);
        bf16_block(w, stride, full, tail, woven, act, c32, out, rows, r, end, batch, w + end * stride,
                   2 * (next_end - end) * stride);
    }
}

// out[b*rows + r] = sum_c w[r*cols + c] * x[b*cols + c] for r in [from, to), b < batch (bf16 weights). Returns 0,
// or -1 when a buffer could not be allocated (nothing written).
KERNEL int em_bf16_rows(const uint16_t* w, long rows, long cols, long from, long to, const float* x, long batch,
                        float* out, long interleaved) {
    long c32 = (cols + 31) / 32 * 32;
    uint16_t* act = thread_buffer(0, (size_t) (2 * batch * c32) * sizeof(uint16_t));
    if (act == NULL) {
        return -1;
    }
    split(x, cols, batch, c32, act);
    long full = cols / 32 * 32;
    __mmask32 tail = (__mmask32) ((1ull << (cols - full)) - 1);
    long woven = interleaved ? rows / 8 * 8 : 0;  // rows woven in eights (woven_row), the last rows % 8 plain
    if (batch < 4) {
        // One pass over the rows: a weight row is read once for all (at most 3) batch rows.
        bf16_rows_nb(w, cols, full, tail, woven, act, c32, out, rows, NULL, from, to, 0, batch);
    } else {
        bf16_all_batch(w, cols, full, tail, woven, act, c32, out, rows, from, to, batch);
    }
    return 0;
}

// The same for e4m3 weights w with block scales: scales[(r/128) * ceil(cols/128) + c/128] * 2^-120 multiplies the
// weights of block (r/128, c/128) (the checkpoint's weight_scale_inv, stored folded by 2^120 for the Java kernel).
// Fewer than 4 batch rows convert the weights in registers; more convert each row block once into a bf16 scratch
// (in fp8_to_bf16's order) that every batch tile then reads.
KERNEL int em_fp8_rows(const uint8_t* w, const float* scales, long rows, long cols, long from, long to,
                       const float* x, long batch, float* out, long interleaved) {
    long c64 = (cols + 63) / 64 * 64;
    long col_blocks = (cols + FP8_BLOCK - 1) / FP8_BLOCK;
    uint16_t* act = thread_buffer(0, (size_t) (2 * batch * c64) * sizeof(uint16_t));
    uint16_t* converted = batch < 4 ? NULL : thread_buffer(1, (size_t) (ROW_BLOCK * c64) * sizeof(uint16_t));
    if (act == NULL || (batch >= 4 && converted == NULL)) {
        return -1;
    }
    long full = cols / 64 * 64;
    __mmask64 tail = (__mmask64) ((1ull << (cols - full)) - 1);  // cols - full < 64
    struct byte_tables t = byte_tables(FP8_HI, FP8_LO);
    long woven = interleaved ? rows / 4 * 4 : 0;  // rows woven in fours (woven_row), the last rows % 4 plain
    for (long r0 = from; r0 < to; ) {
        long block_row = r0 / FP8_BLOCK;
        long r1 = (block_row + 1) * FP8_BLOCK < to ? (block_row + 1) * FP8_BLOCK : to;
        split_fp8(x, cols, batch, c64, scales + block_row * col_blocks, act);
        if (batch < 4) {
            fp8_rows_nb(w, cols, c64, tail, woven, &t, act, out, rows, r0, r1, 0, batch);
        } else {
            for (long s = r0, e; s < r1; s = e) {
                e = block_end(from, s, r1);
                convert_rows(w, cols, c64, full, tail, &t, 0, woven, s, e, converted);
                // Rows [s, e) are rows [0, e - s) of the scratch (padded to c64 with zeros, so no partial chunk);
                // out shifted so that row indices stay global. The next block's FP8 bytes come in meanwhile.
                long next_end = block_end(from, e, to);
                bf16_block(converted, c64, c64, 0, 0, act, c64, out + s, rows, 0, e - s, batch, w + e * cols,
                           (next_end - e) * cols);
            }
        }
        r0 = r1;
    }
    return 0;
}

// ---- int4 (Int4Quantizer's layout: Q4_0 values with F16 scales per 32 columns, rows interleaved in quads) ----
//
// W4A8, as llama.cpp's Q4_0 x Q8_0: integer dot products (AVX512-VNNI vpdpbusd: 64 byte products summed in fours
// into 16 int32 lanes) against activations quantized to int8 per 32 columns (Int8Activations: scale max|x| / 127,
// round to nearest even). On the default model's held-out text this moved int4's mean KL divergence from BF16 from
// 7.40e-3 to 7.44e-3 (4-bit weights dominate); against the bf16-lookup kernel it replaced, whole-model int4
// prefill 1.4-1.7x, 8 streams 1.1-1.4x, 32 streams 1.3-1.5x, batch 1 level (README).
//
// A row's 128-column group is 64 bytes, 16 little-endian ints; nibble n of int j (a two's-complement 4-bit value)
// is column 16n + j, so byte b of int j holds columns 32b + j (low nibble) and 32b + 16 + j (high): the 16 bytes
// {4j + b} are exactly block b of the group. One vpermb gathers them into 128-bit lane b; the low nibbles of lane
// b are then columns 32b + 0..15 and the high ones 32b + 16..31, in order, so every int32 lane of a vpdpbusd sums
// four columns of one block. Nibbles become unsigned by n ^ 8 (= q + 8) and each lane starts from -8 * (the sum of
// its eight activations), computed once per call, so it ends at the exact sum of q * xq. Per output: for each
// group, acc = fma(float(lane sums), weight scales * activation scales, acc) (each block's scale over its 128-bit
// lane); a last partial group (K not a multiple of 128: 32, 64 or 96 columns, e.g. the benchmark model's
// 704-column down projections, stored as 16-byte sub-blocks in Q4_0's order: byte i holds column i low and 16 + i
// high) follows, a 32-column block at a time in the low 128-bit lane; then the fixed reduction. Every tile shape
// runs that sequence and each batch row's activations are quantized on their own, so the bits depend on neither
// the batch, the tile nor the thread. Used when the block is 32 and the rows a multiple of 4; other int4 matrices
// stay in the Java kernel (float activations). Reference: ScalarKernels.forNativeKernels.

static uint8_t I4_GATHER[64] __attribute__((aligned(64)));

__attribute__((constructor)) static void fill_int4_tables(void) {
    for (int lane = 0; lane < 4; lane++) {
        for (int n = 0; n < 16; n++) {
            I4_GATHER[16 * lane + n] = (uint8_t) (4 * n + lane);  // lane b, byte j <- byte 4j + b
        }
    }
}

// Byte offset of row r's group g (Int4Quantizer.groupOffset; rows a multiple of 4, so every row is in a quad).
static inline long int4_group_offset(long cols, long r, long g) {
    return (r & ~3L) * (cols / 2) + g * 4 * 64 + (r & 3) * 64;
}

// Byte offset of row r's last partial group (Int4Quantizer.partialOffset): after the quad's full groups, the four
// rows' partial groups one after the other.
static inline long int4_partial_offset(long cols, long r) {
    return (r & ~3L) * (cols / 2) + cols / 128 * 4 * 64 + (r & 3) * (cols % 128 / 2);
}

// One batch row's quantized activations, 2 * cols bytes: q (cols bytes: per full group, 64 bytes of columns
// 32b + 0..15 for b = 0..3, then 64 of columns 32b + 16..31; a partial group's blocks in plain order), start
// (16 bytes per 32-column block: its 4 int32 lanes) and scales (16 bytes per block: its scale 4 times).
struct q4_row {
    const uint8_t* q;
    const uint8_t* start;
    const uint8_t* scales;
};

KERNEL INLINE struct q4_row q4_row(const uint8_t* act, long cols, long b) {
    const uint8_t* base = act + (size_t) b * 2 * cols;
    struct q4_row row = {base, base + cols, base + cols + cols / 2};
    return row;
}

// Quantizes every batch row of x (cols floats each, a multiple of 32) into act (q4_row's layout).
KERNEL static void split_q4(const float* x, long cols, long batch, uint8_t* act) {
    long full = cols / 128 * 128;
    for (long bi = 0; bi < batch; bi++) {
        struct q4_row row = q4_row(act, cols, bi);
        int8_t* q = (int8_t*) row.q;
        int32_t* start = (int32_t*) row.start;
        float* sc = (float*) row.scales;
        const float* xr = x + bi * cols;
        for (long c = 0; c < cols; c += 32) {
            __m512 v0 = _mm512_loadu_ps(xr + c);
            __m512 v1 = _mm512_loadu_ps(xr + c + 16);
            float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
            __m512 inv = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
            // cvtps rounds to nearest even; |x * inv| <= 127 (saturated anyway)
            __m128i q0 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v0, inv)));
            __m128i q1 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v1, inv)));
            _mm_storeu_ps(sc + 4 * (c / 32), _mm_set1_ps(amax / 127.0f));
            long lo = c < full ? c / 128 * 128 + 16 * (c % 128 / 32) : c;
            long hi = c < full ? lo + 64 : c + 16;
            _mm_storeu_si128((__m128i*) (q + lo), q0);
            _mm_storeu_si128((__m128i*) (q + hi), q1);
        }
        const __m512i ones = _mm512_set1_epi8(1);
        for (long g = 0; g < full; g += 128) {  // start = -8 * (sum of the lane's low and high activations)
            __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, _mm512_loadu_si512((const void*) (q + g)));
            s = _mm512_dpbusd_epi32(s, ones, _mm512_loadu_si512((const void*) (q + g + 64)));
            s = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(s, 3));
            _mm512_storeu_si512((void*) (start + g / 8), s);
        }
        for (long c = full; c < cols; c += 32) {
            const __m128i one = _mm_set1_epi8(1);
            __m128i s = _mm_dpbusd_epi32(_mm_setzero_si128(), one, _mm_loadu_si128((const __m128i*) (q + c)));
            s = _mm_dpbusd_epi32(s, one, _mm_loadu_si128((const __m128i*) (q + c + 16)));
            _mm_storeu_si128((__m128i*) (start + c / 8), _mm_sub_epi32(_mm_setzero_si128(), _mm_slli_epi32(s, 3)));
        }
    }
}

// One tile: nr rows from r, nb batch rows from b. The tile's rows are unpacked first (low and high nibbles and a
// scale vector each); then each batch row's activations are loaded once per group for all of them.
KERNEL INLINE void tile_int4(const uint8_t* w, const uint16_t* scales, long cols, const uint8_t* act, float* out,
                             long rows, long r, long b, int nr, int nb) {
    __m512 acc[4][4];
    for (int i = 0; i < nr; i++) {
        for (int j = 0; j < nb; j++) {
            acc[i][j] = _mm512_setzero_ps();
        }
    }
    long blocks = cols / 32;
    struct q4_row x[4];
    for (int j = 0; j < nb; j++) {
        x[j] = q4_row(act, cols, b + j);
    }
    const __m512i gather = _mm512_load_si512((const void*) I4_GATHER);
    const __m512i flip = _mm512_set1_epi8((char) 0x88);
    const __m512i nibble = _mm512_set1_epi8(0x0F);
    const __m512i lanes = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    for (long g = 0; g < cols / 128; g++) {
        __m512i lo[4], hi[4];
        __m512 ws[4];
        for (int i = 0; i < nr; i++) {
            const uint8_t* p = w + int4_group_offset(cols, r + i, g);
            _mm_prefetch((const char*) p + PREFETCH_AHEAD, _MM_HINT_T0);
            __m512i v = _mm512_xor_si512(_mm512_permutexvar_epi8(gather, _mm512_loadu_si512((const void*) p)), flip);
            lo[i] = _mm512_and_si512(v, nibble);
            hi[i] = _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble);
            const __m128i* s = (const __m128i*) (scales + (r + i) * blocks + 4 * g);
            ws[i] = _mm512_permutexvar_ps(lanes, _mm512_cvtph_ps(_mm256_castsi128_si256(_mm_loadl_epi64(s))));
        }
        for (int j = 0; j < nb; j++) {
            __m512i xlo = _mm512_loadu_si512((const void*) (x[j].q + 128 * g));
            __m512i xhi = _mm512_loadu_si512((const void*) (x[j].q + 128 * g + 64));
            __m512i start = _mm512_loadu_si512((const void*) (x[j].start + 64 * g));
            __m512 xs = _mm512_loadu_ps((const float*) (x[j].scales + 64 * g));
            for (int i = 0; i < nr; i++) {
                __m512i d = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(start, lo[i], xlo), hi[i], xhi);
                acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(ws[i], xs), acc[i][j]);
            }
        }
    }
    for (long c = cols / 128 * 128; c < cols; c += 32) {  // a last partial group, a block at a time
        for (int i = 0; i < nr; i++) {
            const uint8_t* p = w + int4_partial_offset(cols, r + i) + 16 * (c % 128 / 32);
            __m128i v = _mm_xor_si128(_mm_loadu_si128((const __m128i*) p), _mm_set1_epi8((char) 0x88));
            __m128i lo = _mm_and_si128(v, _mm_set1_epi8(0x0F));
            __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0F));
            __m256i s16 = _mm256_set1_epi16((short) scales[(r + i) * blocks + c / 32]);
            __m128 ws = _mm512_castps512_ps128(_mm512_cvtph_ps(s16));
            for (int j = 0; j < nb; j++) {
                __m128i start = _mm_loadu_si128((const __m128i*) (x[j].start + c / 2));
                __m128i d = _mm_dpbusd_epi32(start, lo, _mm_loadu_si128((const __m128i*) (x[j].q + c)));
                d = _mm_dpbusd_epi32(d, hi, _mm_loadu_si128((const __m128i*) (x[j].q + c + 16)));
                __m128 s = _mm_mul_ps(ws, _mm_loadu_ps((const float*) (x[j].scales + c / 2)));
                acc[i][j] = _mm512_fmadd_ps(_mm512_zextps128_ps512(_mm_cvtepi32_ps(d)), _mm512_zextps128_ps512(s),
                                            acc[i][j]);
            }
        }
    }
    for (int i = 0; i < nr; i++) {
        for (int j = 0; j < nb; j++) {
            out[(b + j) * rows + r + i] = _mm512_reduce_add_ps(acc[i][j]);
        }
    }
}

// Rows per int4 tile: 4 with 1-3 batch rows, 2 with 4 (16 accumulators besides the rows' nibbles and scales).
#define INT4_WIDE(nb) ((nb) <= 3 ? 4 : 2)
#define I4_PARAMS const uint8_t* w, const uint16_t* scales, long cols, const uint8_t* act, float* out, long rows
#define I4_ARGS w, scales, cols, act, out, rows
ROWS_OF(int4_rows_nb, tile_int4, I4_PARAMS, I4_ARGS, INT4_WIDE)

// out[b*rows + r] = row r of int4 weights w (rows a multiple of 4, block 32, F16 scales) against batch row b of x
// quantized to int8 per 32 columns, for r in [from, to), b < batch. Returns 0, or -1 when a buffer could not be
// allocated.
KERNEL int em_int4_rows(const uint8_t* w, const uint16_t* scales, long rows, long cols, long from, long to,
                        const float* x, long batch, float* out) {
    uint8_t* act = thread_buffer(0, (size_t) batch * 2 * cols);
    if (act == NULL) {
        return -1;
    }
    split_q4(x, cols, batch, act);
    // Row blocks as for BF16: with several batch tiles, a block of weights stays in L2 while they all read it. No
    // next-block prefetch (struct next_block): int4's batch tiles are bound by their integer products, and with it a
    // 2816x1024 product at batch 8 took 128 us against 101-107 in cache (KernelBench, 2 threads).
    for (long r = from; r < to; r += ROW_BLOCK) {
        long end = r + ROW_BLOCK < to ? r + ROW_BLOCK : to;
        long b = 0;
        for (; b + 4 <= batch; b += 4) {
            int4_rows_nb(I4_ARGS, r, end, b, 4);
        }
        if (b < batch) {
            int4_rows_nb(I4_ARGS, r, end, b, batch - b);
        }
    }
    return 0;
}

// ---- int8 (Int8Quantizer's layout: values in [-127, 127], F32 scales per block of 32k columns along the row) ----
//
// Rows are woven in fours (woven_row: a 4-row tile reads one stream from memory; the last rows % 4 plain). Within a
// row, every full 64-column group is interleaved by 4: byte 4j + k holds column 16k + j. The group's 64
// bytes convert like FP8's (magnitude through two byte lookups, sign merged back, bytes unpacked within 128-bit
// lanes) into two chunks of 32 bf16. In both chunks, float lane f of vdpbf16ps sums bytes whose k is 0-1 when f is
// even and 2-3 when f is odd: columns [0, 32) and [32, 64) of the group. So a vector whose even lanes hold the
// scale of the group's first 32 columns and odd lanes that of the other 32 scales both chunks' partial sums (the
// columns are whole blocks of a multiple of 32, so each half lies in one block). A last group of 32 columns (K an
// odd multiple of 32: tiny test models) is stored in plain order and lies in one block. Per output: for each
// group in order, part = w_a*hi_a + w_a*lo_a + w_b*hi_b + w_b*lo_b (from zero), acc += part * scales; then the fixed
// reduction. Both tile sources below (in registers, or a row block converted once into scratch) run that sequence.

static uint8_t I8_HI[128] __attribute__((aligned(64)));
static uint8_t I8_LO[128] __attribute__((aligned(64)));
// Activation order within a group (split_int8): position p of chunk a (p < 32) or b (p >= 32) holds this column of
// the group; for the plain last group, 64 (a zero) where the chunk holds no column.
static uint16_t I8_ORDER[64] __attribute__((aligned(64)));
static uint16_t I8_TAIL_ORDER[64] __attribute__((aligned(64)));

__attribute__((constructor)) static void fill_int8_tables(void) {
    for (int m = 0; m < 128; m++) {
        union {
            float f;
            uint32_t u;
        } v = {(float) m};
        I8_HI[m] = (uint8_t) (v.u >> 24);  // small integers are exact in bf16: the float's top 16 bits
        I8_LO[m] = (uint8_t) (v.u >> 16);
    }
    for (int p = 0; p < 64; p++) {
        int chunk = p / 32;
        int lane = (p % 32) / 8;  // 128-bit lane of the chunk
        int e = p % 8;            // word within the lane: source byte 16 lane + 8 chunk + e
        int byte = 16 * lane + 8 * chunk + e;
        I8_ORDER[p] = (uint16_t) (16 * (byte % 4) + byte / 4);
        I8_TAIL_ORDER[p] = (uint16_t) (byte < 32 ? byte : 64);
    }
}

// 64 int8 bytes (masked; missing ones read as zero) to two chunks of 32 bf16 of the same values.
KERNEL INLINE void int8_to_bf16(const uint8_t* p, __mmask64 mask, const struct byte_tables* t, __m512bh* a,
                                __m512bh* b) {
    __m512i v = _mm512_maskz_loadu_epi8(mask, p);
    __m512i mag = _mm512_abs_epi8(v);  // 0..127: -128 never occurs (Int8Quantizer clamps to +-127)
    __m512i hi = _mm512_permutex2var_epi8(t->hi0, mag, t->hi1);
    __m512i lo = _mm512_permutex2var_epi8(t->lo0, mag, t->lo1);
    hi = _mm512_ternarylogic_epi32(hi, v, _mm512_set1_epi8((char) 0x80), 0xF8);  // hi | (v & 0x80)
    *a = (__m512bh) _mm512_unpacklo_epi8(lo, hi);
    *b = (__m512bh) _mm512_unpackhi_epi8(lo, hi);
}

// The scale vector of a group of a row whose scales start at s: even lanes the scale of the group's first 32
// columns (block ka), odd lanes that of the other 32 (block ka or ka + 1; the plain last group lies in block ka).
KERNEL INLINE __m512 int8_scales(const float* s, long ka, int same) {
    if (same) {
        return _mm512_set1_ps(s[ka]);
    }
    double pair;  // s[ka] and s[ka + 1] in one 8-byte broadcast: lanes alternate between them
    __builtin_memcpy(&pair, s + ka, sizeof(pair));
    return _mm512_castpd_ps(_mm512_set1_pd(pair));
}

// The int8 form of split: planes of c64 elements, each group in I8_ORDER (the plain last group in I8_TAIL_ORDER).
KERNEL static void split_int8(const float* x, long cols, long batch, long c64, long full, uint16_t* act) {
    for (long b = 0; b < batch; b++) {
        uint16_t* hi = act + 2 * b * c64;
        uint16_t* lo = hi + c64;
        for (long g = 0; g < c64; g += 64) {
            __m256bh h[4], l[4];
            for (int q = 0; q < 4; q++) {
                halves(load16(x + b * cols, g + 16 * q, cols), &h[q], &l[q]);
            }
            __m512i h01 = _mm512_inserti64x4(_mm512_castsi256_si512((__m256i) h[0]), (__m256i) h[1], 1);
            __m512i h23 = _mm512_inserti64x4(_mm512_castsi256_si512((__m256i) h[2]), (__m256i) h[3], 1);
            __m512i l01 = _mm512_inserti64x4(_mm512_castsi256_si512((__m256i) l[0]), (__m256i) l[1], 1);
            __m512i l23 = _mm512_inserti64x4(_mm512_castsi256_si512((__m256i) l[2]), (__m256i) l[3], 1);
            const uint16_t* order = g < full ? I8_ORDER : I8_TAIL_ORDER;
            __m512i idx_a = _mm512_load_si512((const void*) order);
            __m512i idx_b = _mm512_load_si512((const void*) (order + 32));
            // vpermt2w reads 6 index bits, so the plain group's "no column" (64) would wrap to column 0: masked.
            __mmask32 keep = g < full ? (__mmask32) 0xFFFFFFFFu : (__mmask32) 0x0000FFFFu;
            _mm512_store_si512((void*) (hi + g), _mm512_maskz_permutex2var_epi16(keep, h01, idx_a, h23));
            _mm512_store_si512((void*) (hi + g + 32), _mm512_maskz_permutex2var_epi16(keep, h01, idx_b, h23));
            _mm512_store_si512((void*) (lo + g), _mm512_maskz_permutex2var_epi16(keep, l01, idx_a, l23));
            _mm512_store_si512((void*) (lo + g + 32), _mm512_maskz_permutex2var_epi16(keep, l01, idx_b, l23));
        }
    }
}

// One tile: nr rows from r, nb batch rows from b. The weights come converted in registers from w, or, when conv is
// not NULL, from the scratch rows conv (row r at conv + (r - conv_row0) * c64, in int8_to_bf16's order).
KERNEL INLINE void tile_int8(const uint8_t* w, const uint16_t* conv, long conv_row0, const float* scales,
                             long block, long cols, long c64, long full, long woven, const struct byte_tables* t,
                             const uint16_t* act, float* out, long rows, struct next_block* nx, long r, long b,
                             int nr, int nb) {
    __m512 acc[4][4];
    struct woven_row src[4];
    for (int i = 0; i < nr; i++) {
        for (int j = 0; j < nb; j++) {
            acc[i][j] = _mm512_setzero_ps();
        }
        src[i] = woven_row(w, cols, full, woven, 4, r + i);
    }
    long blocks = cols / block;
    long ka = 0;    // block of column g
    long rem = 0;   // g - ka * block
    for (long g = 0; g < c64; g += 64, rem += 64) {
        while (rem >= block) {  // no division per group: g moves by 64, the block is at least 32
            rem -= block;
            ka++;
        }
        int same = g >= full || rem + 32 < block;  // the group's second half lies in block ka too
        __m512bh wa[4], wb[4];
        __m512 s[4];
        for (int i = 0; i < nr; i++) {
            if (conv == NULL) {
                const uint8_t* p = g < full ? src[i].p + (g / 64) * src[i].step : src[i].part;
                _mm_prefetch((const char*) (p + PREFETCH_AHEAD), _MM_HINT_T0);
                int8_to_bf16(p, g < full ? (__mmask64) ~0ull : (__mmask64) 0xFFFFFFFFull, t, &wa[i], &wb[i]);
            } else {
                const uint16_t* p = conv + (r + i - conv_row0) * c64 + g;
                wa[i] = (__m512bh) _mm512_load_si512((const void*) p);
                wb[i] = (__m512bh) _mm512_load_si512((const void*) (p + 32));
            }
            s[i] = int8_scales(scales + (r + i) * blocks, ka, same);
        }
        for (int j = 0; j < nb; j++) {
            struct group_act x = group_act(act, c64, b + j, g);
            for (int i = 0; i < nr; i++) {
                __m512 part = _mm512_setzero_ps();
                DP2(part, wa[i], x.hia, x.loa);
                DP2(part, wb[i], x.hib, x.lob);
                acc[i][j] = _mm512_fmadd_ps(part, s[i], acc[i][j]);
            }
        }
        next_block_step(nx);
    }
    for (int i = 0; i < nr; i++) {
        for (int j = 0; j < nb; j++) {
            out[(b + j) * rows + r + i] = _mm512_reduce_add_ps(acc[i][j]);
        }
    }
}

#define I8_PARAMS const uint8_t* w, const uint16_t* conv, long conv_row0, const float* scales, long block, \
                  long cols, long c64, long full, long woven, const struct byte_tables* t, const uint16_t* act, \
                  float* out, long rows, struct next_block* nx
#define I8_ARGS w, conv, conv_row0, scales, block, cols, c64, full, woven, t, act, out, rows, nx
ROWS_OF(int8_rows_nb, tile_int8, I8_PARAMS, I8_ARGS, QUADS)

// out[b*rows + r] = sum_c q[r][c] * scale[r][c/block] * x[b*cols + c] for r in [from, to), b < batch: int8 weights w
// (Int8Quantizer's layout) with F32 scales (rows x cols/block); block a multiple of 32 dividing cols. Fewer than 4
// batch rows convert the weights in registers; more convert each row block once into a bf16 scratch that every
// batch tile then reads (as FP8). Returns 0, or -1 when a buffer could not be allocated.
KERNEL int em_int8_rows(const uint8_t* w, const float* scales, long rows, long cols, long block, long from, long to,
                        const float* x, long batch, float* out) {
    long c64 = (cols + 63) / 64 * 64;
    long full = cols / 64 * 64;
    uint16_t* act = thread_buffer(0, (size_t) (2 * batch * c64) * sizeof(uint16_t));
    uint16_t* conv = batch < 4 ? NULL : thread_buffer(1, (size_t) (ROW_BLOCK * c64) * sizeof(uint16_t));
    if (act == NULL || (batch >= 4 && conv == NULL)) {
        return -1;
    }
    split_int8(x, cols, batch, c64, full, act);
    struct byte_tables t = byte_tables(I8_HI, I8_LO);
    long woven = rows / 4 * 4;  // rows woven in fours (Int8Quantizer; woven_row), the last rows % 4 plain
    if (batch < 4) {
        int8_rows_nb(w, NULL, 0, scales, block, cols, c64, full, woven, &t, act, out, rows, NULL, from, to, 0,
                     batch);
        return 0;
    }
    for (long s = from, e; s < to; s = e) {
        e = block_end(from, s, to);
        // the plain last half group (if any) is 32 bytes
        convert_rows(w, cols, c64, full, (__mmask64) 0xFFFFFFFFull, &t, 1, woven, s, e, conv);
        // The next block's bytes come in while the batch tiles compute on this one (struct next_block).
        long next_end = block_end(from, e, to);
        struct next_block coming = next_block(w + e * cols, (next_end - e) * cols,
                                              c64 / 64 * ((e - s + 3) / 4) * ((batch + 3) / 4));
        long b = 0;
        for (; b + 4 <= batch; b += 4) {
            int8_rows_nb(w, conv, s, scales, block, cols, c64, full, woven, &t, act, out, rows, &coming, s, e, b,
                         4);
        }
        if (b < batch) {
            int8_rows_nb(w, conv, s, scales, block, cols, c64, full, woven, &t, act, out, rows, &coming, s, e, b,
                         batch - b);
        }
    }
    return 0;
}
