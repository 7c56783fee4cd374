// Memory for weights the native kernels read in a layout of their own (BF16 rows interleaved in eights, FP8 rows in
// fours: see matmul.c's woven_row and InterleavedRows.java), and the copy into that layout, called from Java
// (NativeMatmul).
//
// Why native: the copy's cost is the first touch of fresh memory, not the bytes moved. On the 2-core cloud machine
// these kernels were measured on, a first touch costs about 3 ms per MB (memset of 760 MB: 2.0-2.7 s from one
// thread, 1.3-1.5 s from two). Java's allocations zero the memory on the allocating thread, one thread touching it
// all; here the memory is left untouched and the copy's threads touch their own rows. Not in 2 MB pages: with
// every matrix 2 MB-aligned and MADV_HUGEPAGE (only matrices of 2 MB or more got them), whole-model decode at
// batch 1 was no faster and in 3 of 4 alternated runs slower than with 64-byte alignment (110, 101, 117, 137 against
// 154, 115, 122, 124 tokens/s).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 64  // bytes: 32 BF16 or 64 FP8 columns

// bytes of 64-byte-aligned memory, untouched; NULL when out of memory. Freed by em_free_weights.
void* em_alloc_weights(long bytes) {
    void* p = NULL;
    size_t n = bytes > 0 ? (size_t) bytes : 1;
    if (posix_memalign(&p, 64, n) != 0) {
        return NULL;
    }
    return p;
}

void em_free_weights(void* p) {
    free(p);
}

// Rows [from, to) of src (rows of row_bytes, plain) into dst in the interleaved layout: rows below
// rows / group_rows * group_rows woven group_rows at a time in 64-byte chunks (chunk k of row g * group_rows + i at
// g * group_rows * row_bytes + 64 (group_rows k + i); a last partial chunk of t = row_bytes mod 64 bytes at
// g * group_rows * row_bytes + group_rows (row_bytes - t) + t i), the last rows % group_rows plain. BF16 weaves 8
// rows, FP8 4 (InterleavedRows.java). from and to are multiples of group_rows, or rows, so a group is copied by
// one caller.
void em_weave_rows(const uint8_t* src, long rows, long row_bytes, long group_rows, long from, long to,
                   uint8_t* dst) {
    long woven = rows / group_rows * group_rows;
    long full = row_bytes / CHUNK * CHUNK;
    long t = row_bytes - full;
    for (long r = from; r < to; r++) {
        const uint8_t* row = src + r * row_bytes;
        if (r >= woven) {
            memcpy(dst + r * row_bytes, row, (size_t) row_bytes);
            continue;
        }
        uint8_t* group = dst + (r / group_rows * group_rows) * row_bytes;
        long i = r % group_rows;
        for (long c = 0; c < full; c += CHUNK) {
            memcpy(group + group_rows * c + CHUNK * i, row + c, CHUNK);
        }
        if (t > 0) {
            memcpy(group + group_rows * full + t * i, row + full, (size_t) t);
        }
    }
}
