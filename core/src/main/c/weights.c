// Memory for weights the native kernels read in a layout of their own (BF16 rows interleaved in eights, see
// matmul.c's row_ptr and Bf16Interleave.java), and the copy into that layout, called from Java (NativeMatmul).
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

#define IL_ROWS 8
#define CHUNK 32

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

// Rows [from, to) of the plain rows x cols BF16 matrix src into dst in the interleaved layout: rows below
// rows / 8 * 8 woven in eights (32-column chunk k of row 8g + i at 8g * cols + 256k + 32i, a last partial chunk of
// t columns at 8g * cols + 8 (cols - t) + t i), the last rows % 8 plain. from and to are multiples of 8 or rows, so
// a group is copied by one caller.
void em_bf16_interleave(const uint16_t* src, long rows, long cols, long from, long to, uint16_t* dst) {
    long rows8 = rows / IL_ROWS * IL_ROWS;
    long full = cols / CHUNK * CHUNK;
    long t = cols - full;
    for (long r = from; r < to; r++) {
        const uint16_t* row = src + r * cols;
        if (r >= rows8) {
            memcpy(dst + r * cols, row, (size_t) cols * sizeof(uint16_t));
            continue;
        }
        uint16_t* group = dst + (r & ~(long) (IL_ROWS - 1)) * cols;
        long i = r & (IL_ROWS - 1);
        for (long c = 0; c < full; c += CHUNK) {
            memcpy(group + IL_ROWS * c + CHUNK * i, row + c, CHUNK * sizeof(uint16_t));
        }
        if (t > 0) {
            memcpy(group + IL_ROWS * full + t * i, row + full, (size_t) t * sizeof(uint16_t));
        }
    }
}
