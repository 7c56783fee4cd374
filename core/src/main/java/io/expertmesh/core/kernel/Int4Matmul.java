package io.expertmesh.core.kernel;

import static io.expertmesh.core.kernel.VectorMath.F;
import static io.expertmesh.core.kernel.VectorMath.L;

import io.expertmesh.core.tensor.Int4Quantizer;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Rows of an int4 matmul ({@link io.expertmesh.core.tensor.DType#I4}) on the calling thread:
 * {@code out[b][r] = Σ_c (q[r][c]·scale[r][c/block]) · x[b][c]}, {@code q} in [-8, 7], F16 scales.
 *
 * <p><b>Inner loop.</b> A row's 128-column groups are stored so that nibble {@code n} of int lane {@code j} is
 * column {@code 16n + j} ({@link Int4Quantizer}): one {@code 4L}-byte int vector load gives eight {@code L}-float
 * vectors of consecutive columns, each by two shifts ({@code (p << 28-4n) >> 28} sign-extends nibble {@code n};
 * one shift for the top nibble) and an int-to-float conversion, then a multiply by its block's scale and a fused
 * multiply-add with the float activations: {@link Int8Matmul}'s loop with twice the values per load. The weight
 * is the float {@code q·scale}, exact (a 4-bit integer times an 11-bit F16 significand), which is what
 * {@link io.expertmesh.core.tensor.Matrix#get} and the scalar reference use.
 *
 * <p><b>Speed.</b> Per 16 weights this does what {@link Int8Matmul} does (two shifts, a conversion, a multiply,
 * an FMA), so where decode is compute-bound both run at the same weights per second (about 18.5 G/s on one
 * AVX-512 core here, hot or from DRAM) and int4 only wins where memory bandwidth binds (more cores per memory
 * channel). Four accumulators instead of two measured the same. Int8 activations with integer products, as
 * llama.cpp's Q4_0 × Q8_0: the Vector API cannot emit {@code vpdpbusd}/{@code vpmaddwd}, but a probe of an
 * int16-lane inner loop (32 blocks side by side so that each 16-bit lane sums one block's 32 products, which fit:
 * 32·8·127 < 2^15; {@code vpmullw} and an add per 32 weights) ran at about 42 G weights/s hot, 2.2× this loop.
 * Not done yet: it needs another layout (K in chunks of 1024, remainders), activations rounded to int8 per block
 * (a second, small error) and the batched path on the same integer sums to keep rows batch-invariant.
 *
 * <p><b>Determinism.</b> As {@link Int8Matmul}: two vector accumulators per (row, batch row), the first for the
 * even 16-column runs of every group and the second for the odd ones, {@code (a0+a1)} reduced as a fixed tree,
 * plus the sub-blocks of a last partial group reduced on their own and added, whatever the tiling, thread or
 * batch. With whole 4-row batch tiles and 16 lanes, each row block is widened to floats {@code q·scale} once and
 * {@link Int8Matmul}'s F32 tile runs on it, over the whole groups and then the partial group, in the same column
 * order into the same accumulators, so the bits are {@link #row1}'s. Vector code is inline, not in helpers (see
 * {@link Int8Matmul}).
 *
 * <p><b>Tiling.</b> Rows widened {@link RowBlocks} at a time when there are whole 4-row batch tiles, every tile
 * running over the block; otherwise in blocks of {@link #ROW_BLOCK}. Batch rows outside a 4-tile (all of them at
 * batch 1) one weight row at a time, a single sequential stream for the prefetcher. Without the widened tile (8 lanes)
 * every batch row runs {@link #row1}, re-reading the row block from L1.
 */
final class Int4Matmul {
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    /** Bytes of a tail sub-block that widen to one int vector: {@code L} of them. */
    private static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(L * 8));
    private static final ValueLayout.OfShort F16 =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int GROUP = Int4Quantizer.GROUP;
    private static final int SUB = Int4Quantizer.SUB_BLOCK;
    /** Int loads per 128-column group: 1 with 16 lanes, 2 with 8. */
    private static final int LOADS = 16 / L;
    private static final int ROW_BLOCK = 4;

    private Int4Matmul() {
    }

    /** Whether the vector path can run here: lanes that divide a 16-column run of the layout. */
    static boolean supports(int block) {
        return L <= 16 && 16 % L == 0 && block % SUB == 0;
    }

    private static float scale(MemorySegment s, long i) {
        return Float.float16ToFloat(s.getAtIndex(F16, i));
    }

    /**
     * Computes weight rows {@code [from, to)} for all batch rows; {@code q} the packed int4 values, {@code s} the
     * {@code rows × cols/block} F16 scales.
     */
    static void rows(MemorySegment q, MemorySegment s, int rows, int cols, int block, int from, int to, float[] x,
                     int xOff, float[] out, int outOff, int batch, float[] lanes) {
        // With 16 lanes the widened tile accumulates in row1's order (the whole groups, then the partial group
        // reduced on its own and added); with 8, row1's second int load would interleave differently, so 8 lanes
        // keep row1 (correct, slower prefill on AVX2-only machines).
        boolean widenOnce = batch >= 4 && LOADS == 1;
        int full = cols / GROUP * GROUP;
        int blockRows = widenOnce ? RowBlocks.rows(cols, 4) : ROW_BLOCK;
        float[] wide = widenOnce ? KernelScratch.get().dequantized(blockRows * cols) : null;
        for (int blockStart = from; blockStart < to; blockStart += blockRows) {
            int blockEnd = Math.min(to, blockStart + blockRows);
            int b = 0;
            if (widenOnce) {
                widen(q, s, cols, block, blockStart, blockEnd, wide);
                for (; b + 4 <= batch; b += 4) {
                    int r = blockStart;
                    for (; r + 2 <= blockEnd; r += 2) {
                        int w0 = (r - blockStart) * cols;
                        Int8Matmul.tile2x4Wide(wide, w0, cols, 0, full, false, r, rows, x, xOff + b * cols, out,
                                outOff + b * rows, lanes);
                        if (full < cols) {
                            Int8Matmul.tile2x4Wide(wide, w0, cols, full, cols, true, r, rows, x, xOff + b * cols,
                                    out, outOff + b * rows, lanes);
                        }
                    }
                    for (; r < blockEnd; r++) {
                        for (int k = b; k < b + 4; k++) {
                            out[outOff + k * rows + r] = row1(q, s, cols, block, r, x, xOff + k * cols, lanes);
                        }
                    }
                }
            }
            for (; b < batch; b++) {
                for (int r = blockStart; r < blockEnd; r++) {
                    out[outOff + b * rows + r] = row1(q, s, cols, block, r, x, xOff + b * cols, lanes);
                }
            }
        }
    }

    /** Rows {@code [from, to)} (16 lanes) as floats {@code q·scale} into {@code wide}, row-major. */
    private static void widen(MemorySegment q, MemorySegment s, int cols, int block, int from, int to,
                              float[] wide) {
        int full = cols / GROUP * GROUP;
        for (int r = from; r < to; r++) {
            long base = (long) r * (cols / 2);
            long sBase = (long) r * (cols / block);
            int o = (r - from) * cols;
            for (int c = full; c < cols; c += SUB) {
                float sc = scale(s, sBase + c / block);
                IntVector v = (IntVector) ByteVector.fromMemorySegment(B, q, base + c / 2, ByteOrder.LITTLE_ENDIAN)
                        .convertShape(VectorOperators.B2I, I, 0);
                ((FloatVector) v.lanewise(VectorOperators.LSHL, 28).lanewise(VectorOperators.ASHR, 28)
                        .convert(VectorOperators.I2F, 0)).mul(sc).intoArray(wide, o + c);
                ((FloatVector) v.lanewise(VectorOperators.LSHL, 24).lanewise(VectorOperators.ASHR, 28)
                        .convert(VectorOperators.I2F, 0)).mul(sc).intoArray(wide, o + c + 16);
            }
            for (int g = 0; g < full; g += GROUP) {
                float s0 = scale(s, sBase + g / block);
                float s1 = scale(s, sBase + (g + 32) / block);
                float s2 = scale(s, sBase + (g + 64) / block);
                float s3 = scale(s, sBase + (g + 96) / block);
                IntVector p = IntVector.fromMemorySegment(I, q, base + g / 2, ByteOrder.LITTLE_ENDIAN);
                int c = o + g;
                ((FloatVector) p.lanewise(VectorOperators.LSHL, 28).lanewise(VectorOperators.ASHR, 28)
                        .convert(VectorOperators.I2F, 0)).mul(s0).intoArray(wide, c);
                ((FloatVector) p.lanewise(VectorOperators.LSHL, 24).lanewise(VectorOperators.ASHR, 28)
                        .convert(VectorOperators.I2F, 0)).mul(s0).intoArray(wide, c + 16);
                ((FloatVector) p.lanewise(VectorOperators.LSHL, 20).lanewise(VectorOperators.ASHR, 28)
                        .convert(VectorOperators.I2F, 0)).mul(s1).intoArray(wide, c + 32);
                ((FloatVector) p.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 28)
                        .convert(VectorOperators.I2F, 0)).mul(s1).intoArray(wide, c + 48);
                ((FloatVector) p.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 28)
                        .convert(VectorOperators.I2F, 0)).mul(s2).intoArray(wide, c + 64);
                ((FloatVector) p.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 28)
                        .convert(VectorOperators.I2F, 0)).mul(s2).intoArray(wide, c + 80);
                ((FloatVector) p.lanewise(VectorOperators.LSHL, 4).lanewise(VectorOperators.ASHR, 28)
                        .convert(VectorOperators.I2F, 0)).mul(s3).intoArray(wide, c + 96);
                ((FloatVector) p.lanewise(VectorOperators.ASHR, 28)
                        .convert(VectorOperators.I2F, 0)).mul(s3).intoArray(wide, c + 112);
            }
        }
    }

    /** One weight row against the batch row starting at {@code x[xRow]}. */
    static float row1(MemorySegment q, MemorySegment s, int cols, int block, int r, float[] x, int xRow,
                      float[] lanes) {
        // The whole groups and the partial group are reduced separately and added: the order the widened tile
        // in rows() reproduces.
        float sum = groups(q, s, cols, block, r, x, xRow, lanes);
        return cols % GROUP != 0 ? sum + partialGroup(q, s, cols, block, r, x, xRow, lanes) : sum;
    }

    /** The whole 128-column groups of row {@code r} against one batch row, reduced. */
    private static float groups(MemorySegment q, MemorySegment s, int cols, int block, int r, float[] x, int xRow,
                                float[] lanes) {
        long base = (long) r * (cols / 2);
        long sBase = (long) r * (cols / block);
        int full = cols / GROUP * GROUP;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        for (int g = 0; g < full; g += GROUP) {
            // Columns [g + 32i, g + 32i + 32) lie in one block: blocks are multiples of 32.
            float s0 = scale(s, sBase + g / block);
            float s1 = scale(s, sBase + (g + 32) / block);
            float s2 = scale(s, sBase + (g + 64) / block);
            float s3 = scale(s, sBase + (g + 96) / block);
            for (int h = 0; h < LOADS; h++) {
                IntVector p = IntVector.fromMemorySegment(I, q, base + g / 2 + 4L * L * h, ByteOrder.LITTLE_ENDIAN);
                int c = xRow + g + L * h;
                a0 = ((FloatVector) p.lanewise(VectorOperators.LSHL, 28).lanewise(VectorOperators.ASHR, 28)
                        .convert(VectorOperators.I2F, 0)).mul(s0).fma(FloatVector.fromArray(F, x, c), a0);
                a1 = ((FloatVector) p.lanewise(VectorOperators.LSHL, 24).lanewise(VectorOperators.ASHR, 28)
                        .convert(VectorOperators.I2F, 0)).mul(s0).fma(FloatVector.fromArray(F, x, c + 16), a1);
                a0 = ((FloatVector) p.lanewise(VectorOperators.LSHL, 20).lanewise(VectorOperators.ASHR, 28)
                        .convert(VectorOperators.I2F, 0)).mul(s1).fma(FloatVector.fromArray(F, x, c + 32), a0);
                a1 = ((FloatVector) p.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 28)
                        .convert(VectorOperators.I2F, 0)).mul(s1).fma(FloatVector.fromArray(F, x, c + 48), a1);
                a0 = ((FloatVector) p.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 28)
                        .convert(VectorOperators.I2F, 0)).mul(s2).fma(FloatVector.fromArray(F, x, c + 64), a0);
                a1 = ((FloatVector) p.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 28)
                        .convert(VectorOperators.I2F, 0)).mul(s2).fma(FloatVector.fromArray(F, x, c + 80), a1);
                a0 = ((FloatVector) p.lanewise(VectorOperators.LSHL, 4).lanewise(VectorOperators.ASHR, 28)
                        .convert(VectorOperators.I2F, 0)).mul(s3).fma(FloatVector.fromArray(F, x, c + 96), a0);
                a1 = ((FloatVector) p.lanewise(VectorOperators.ASHR, 28)
                        .convert(VectorOperators.I2F, 0)).mul(s3).fma(FloatVector.fromArray(F, x, c + 112), a1);
            }
        }
        a0.add(a1).intoArray(lanes, 0);
        return VectorMath.reduce(lanes);
    }

    /**
     * The 32-column sub-blocks of row {@code r}'s last partial group (Q4_0 order: byte {@code i} holds columns
     * {@code i} and {@code 16+i}) against one batch row, reduced on their own.
     */
    private static float partialGroup(MemorySegment q, MemorySegment s, int cols, int block, int r, float[] x,
                                      int xRow, float[] lanes) {
        int full = cols / GROUP * GROUP;
        long base = (long) r * (cols / 2);
        long sBase = (long) r * (cols / block);
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        for (int c = full; c < cols; c += SUB) {
            float sc = scale(s, sBase + c / block);
            for (int h = 0; h < LOADS; h++) {
                IntVector v = (IntVector) ByteVector.fromMemorySegment(B, q, base + c / 2 + (long) L * h,
                        ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0);
                int xc = xRow + c + L * h;
                a0 = ((FloatVector) v.lanewise(VectorOperators.LSHL, 28).lanewise(VectorOperators.ASHR, 28)
                        .convert(VectorOperators.I2F, 0)).mul(sc).fma(FloatVector.fromArray(F, x, xc), a0);
                a1 = ((FloatVector) v.lanewise(VectorOperators.LSHL, 24).lanewise(VectorOperators.ASHR, 28)
                        .convert(VectorOperators.I2F, 0)).mul(sc).fma(FloatVector.fromArray(F, x, xc + 16), a1);
            }
        }
        a0.add(a1).intoArray(lanes, 0);
        return VectorMath.reduce(lanes);
    }

    /**
     * The scalar form of the product for a vector width the layout does not fit ({@link #supports} false): in
     * column order with fused multiply-adds.
     */
    static void rowsScalar(MemorySegment q, MemorySegment s, int rows, int cols, int block, int from, int to,
                           float[] x, int xOff, float[] out, int outOff, int batch) {
        int perRow = cols / block;
        for (int b = 0; b < batch; b++) {
            for (int r = from; r < to; r++) {
                float acc = 0f;
                for (int c = 0; c < cols; c++) {
                    float w = Int4Quantizer.value(q, cols, r, c) * scale(s, (long) r * perRow + c / block);
                    acc = Math.fma(w, x[xOff + b * cols + c], acc);
                }
                out[outOff + b * rows + r] = acc;
            }
        }
    }
}
