package io.expertmesh.core.kernel;

import static io.expertmesh.core.kernel.VectorMath.F;
import static io.expertmesh.core.kernel.VectorMath.L;

import io.expertmesh.core.tensor.Int8Quantizer;
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
 * Rows of an int8 matmul ({@link io.expertmesh.core.tensor.DType#I8}) on the calling thread:
 * {@code out[b][r] = Σ_c (q[r][c]·scale[r][c/block]) · x[b][c]}.
 *
 * <p><b>Layout.</b> Rows are woven in fours ({@link Int8Quantizer}, for the native kernel's 4-row tile): row
 * {@code r}'s group {@code g} is at {@code Int8Quantizer.rowStart(rows, cols, r) + g · groupStep(rows, r)}, and
 * every kernel here addresses a row through those.
 *
 * <p><b>Inner loop.</b> A row's 64-column groups are stored interleaved by 4 ({@link Int8Quantizer}): one
 * {@code 4L}-byte int vector load gives four {@code L}-float vectors of consecutive columns by two shifts
 * ({@code (p << 24-8k) >> 24} sign-extends byte {@code k} of every lane) and an int-to-float conversion each —
 * the same trick as {@link Bf16Matmul}'s even/odd split, here without reordering the activations. Each vector
 * is multiplied by its block's scale and fused-multiply-added with float activations: the weight becomes the
 * float {@code q·scale}, exactly what {@link io.expertmesh.core.tensor.Matrix#get} and the scalar reference use,
 * and the accumulation is then the {@link F32Matmul} one. Scaling the weight vector (one multiply per weight vector, shared by the whole batch
 * tile) instead of each block's partial sum (one multiply-add per accumulator per block) costs fewer operations
 * whenever the tile has more than one batch row. Int8 activations with integer dot products were not tried:
 * their point is {@code vpdpbusd}/{@code vpmaddubsw}, which the Vector API cannot emit, and emulated with widening
 * multiplies they do more work per weight than this path. Where the CPU has AVX512-BF16, int8 products run in
 * {@link NativeMatmul} instead (exact bf16 weights, 1.25-3x this kernel's speed, README); this one serves other CPUs.
 *
 * <p><b>Determinism.</b> Every (row, batch row) pair uses two vector accumulators, the first for columns
 * {@code [0,16)} and {@code [32,48)} of every group and the second for {@code [16,32)} and {@code [48,64)},
 * {@code (a0+a1)} reduced as a fixed tree ({@link VectorMath#reduce}, or {@link VectorMath#reduce8} for the tile's 8
 * at once, bit-identical), plus the plain-order last 32 columns reduced on their own, whatever the tiling, thread
 * or batch. The vector code is written out inline (no small helpers) because the tile is large enough that C2
 * stops inlining helpers (NodeCountInliningCutoff), and a vector passed through a call is boxed: measured 100×
 * slower. The columns are whole blocks of a multiple of 32 (checked at quantization), so there
 * is no scalar tail; a vector never straddles two blocks.
 *
 * <p><b>Tiling.</b> 2 weight rows × 4 batch rows (16 accumulators). With whole batch tiles, rows are widened
 * {@link RowBlocks} at a time (floats in L2) and every batch tile runs over the block; otherwise rows go in blocks of
 * {@link #ROW_BLOCK}. Leftover batch rows (all of them at batch 1) one weight row at a time, a single sequential
 * stream for the prefetcher; two or three of them share each widened weight vector ({@code row1x2},
 * {@code row1x3}, each keeping row1's accumulators).
 */
final class Int8Matmul {
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    /** Bytes that widen to one float vector in the plain-order last 32 columns: {@code L} of them. */
    private static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(L * 8));
    private static final ValueLayout.OfFloat SCALE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int GROUP = Int8Quantizer.GROUP;
    /** Int loads per 64-column group: 1 with 16 lanes, 2 with 8. */
    private static final int LOADS = 16 / L;
    private static final int ROW_BLOCK = 4;

    private Int8Matmul() {
    }

    /** Whether the vector path can run here: lanes that divide a 16-column run of the layout. */
    static boolean supports(int block) {
        return 16 % L == 0 && block % 32 == 0;
    }

    /**
     * Computes weight rows {@code [from, to)} for all batch rows; {@code q} the int8 values, {@code s} the
     * {@code rows × cols/block} F32 scales.
     */
    static void rows(MemorySegment q, MemorySegment s, int rows, int cols, int block, int from, int to, float[] x,
                     int xOff, float[] out, int outOff, int batch, float[] lanes) {
        // With whole 4-row batch tiles, each row block is widened to floats once into scratch and the tiles run
        // the F32 tile on it: the widening (3 operations per vector) is then paid once per weight instead of once
        // per weight and batch tile, which made prefill compute-bound on conversions. The F32 tile accumulates
        // in row1's order (a0: columns [0,16) and [32,48) of each 64, a1 the others) on the same float values
        // q·scale, so the bits are row1's. Needs 16 lanes (one int load per group) and no plain half group.
        boolean widenOnce = batch >= 4 && LOADS == 1 && cols % GROUP == 0;
        int blockRows = widenOnce ? RowBlocks.rows(cols, 4) : ROW_BLOCK;
        float[] wide = widenOnce ? KernelScratch.get().dequantized(blockRows * cols) : null;
        for (int blockStart = from; blockStart < to; blockStart += blockRows) {
            int blockEnd = Math.min(to, blockStart + blockRows);
            int b = 0;
            if (widenOnce) {
                widen(q, s, rows, cols, block, blockStart, blockEnd, wide);
            }
            for (; b + 4 <= batch; b += 4) {
                int r = blockStart;
                for (; r + 2 <= blockEnd; r += 2) {
                    if (widenOnce) {
                        tile2x4Wide(wide, (r - blockStart) * cols, cols, r, rows, x, xOff + b * cols, out,
                                outOff + b * rows, lanes);
                    } else {
                        tile2x4(q, s, rows, cols, block, r, x, xOff + b * cols, out, outOff + b * rows, lanes);
                    }
                }
                for (; r < blockEnd; r++) {
                    for (int k = b; k < b + 4; k++) {
                        out[outOff + k * rows + r] = row1(q, s, rows, cols, block, r, x, xOff + k * cols, lanes);
                    }
                }
            }
            // Leftover batch rows (all of them at batch 1, i.e. decode) go one weight row at a time: one sequential
            // stream through the weights, as in Bf16Matmul. Two or three share each widened weight vector (an MoE
            // expert sees 2-3 tokens at batched decode): the widening, 4 of a row1's 6 operations per vector, is
            // then paid once for all of them.
            for (int r = blockStart; r < blockEnd; r++) {
                for (int k = b; k < batch; ) {
                    int n = Math.min(3, batch - k);
                    if (n == 1) {
                        out[outOff + k * rows + r] = row1(q, s, rows, cols, block, r, x, xOff + k * cols, lanes);
                    } else {
                        if (n == 2) {
                            row1x2(q, s, rows, cols, block, r, x, xOff + k * cols, lanes);
                        } else {
                            row1x3(q, s, rows, cols, block, r, x, xOff + k * cols, lanes);
                        }
                        leftoverOut(q, s, rows, cols, block, r, x, xOff, out, outOff, k, n, lanes);
                    }
                    k += n;
                }
            }
        }
    }

    /** Rows {@code [from, to)} (whole 64-column groups) as floats {@code q·scale} into {@code wide}, row-major. */
    private static void widen(MemorySegment q, MemorySegment s, int rows, int cols, int block, int from, int to,
                              float[] wide) {
        for (int r = from; r < to; r++) {
            long base = Int8Quantizer.rowStart(rows, cols, r);
            int step = Int8Quantizer.groupStep(rows, r);
            long sBase = (long) r * (cols / block);
            int o = (r - from) * cols;
            for (int g = 0; g < cols; g += GROUP) {
                float sLo = s.getAtIndex(SCALE, sBase + g / block);
                float sHi = s.getAtIndex(SCALE, sBase + (g + 32) / block);
                IntVector p = IntVector.fromMemorySegment(I, q, base + (long) g * step, ByteOrder.LITTLE_ENDIAN);
                ((FloatVector) p.lanewise(VectorOperators.LSHL, 24).lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(sLo).intoArray(wide, o + g);
                ((FloatVector) p.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(sLo).intoArray(wide, o + g + 16);
                ((FloatVector) p.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(sHi).intoArray(wide, o + g + 32);
                ((FloatVector) p.lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(sHi).intoArray(wide, o + g + 48);
            }
        }
    }

    /**
     * {@link F32Matmul}'s 2×4 tile on widened rows {@code wide[w0..]} and {@code wide[w0+cols..]} (weight rows
     * {@code r, r+1}) against the 4 batch rows at {@code x[x0]}; {@code cols} a multiple of {@code 2L}.
     */
    private static void tile2x4Wide(float[] wide, int w0, int cols, int r, int rows, float[] x, int x0,
                                    float[] out, int o0, float[] lanes) {
        tile2x4Wide(wide, w0, cols, 0, cols, false, r, rows, x, x0, out, o0, lanes);
    }

    /**
     * The tile over columns {@code [from, to)} only ({@code to - from} a multiple of {@code 2L}), its sums stored
     * or, with {@code add}, added to what {@code out} holds: {@link Int4Matmul} reduces a row's whole 128-column
     * groups and its last partial group separately, and adds them, as its single-row path does.
     */
    static void tile2x4Wide(float[] wide, int w0, int cols, int from, int to, boolean add, int r, int rows,
                            float[] x, int x0, float[] out, int o0, float[] lanes) {
        int w1 = w0 + cols;
        int x1 = x0 + cols;
        int x2 = x1 + cols;
        int x3 = x2 + cols;
        FloatVector z = FloatVector.zero(F);
        FloatVector a000 = z, a001 = z, a010 = z, a011 = z, a020 = z, a021 = z, a030 = z, a031 = z;
        FloatVector a100 = z, a101 = z, a110 = z, a111 = z, a120 = z, a121 = z, a130 = z, a131 = z;
        for (int c = from; c < to; c += 2 * L) {
            FloatVector w00 = FloatVector.fromArray(F, wide, w0 + c);
            FloatVector w01 = FloatVector.fromArray(F, wide, w0 + c + L);
            FloatVector w10 = FloatVector.fromArray(F, wide, w1 + c);
            FloatVector w11 = FloatVector.fromArray(F, wide, w1 + c + L);
            FloatVector xv;
            xv = FloatVector.fromArray(F, x, x0 + c);
            a000 = w00.fma(xv, a000);
            a100 = w10.fma(xv, a100);
            xv = FloatVector.fromArray(F, x, x0 + c + L);
            a001 = w01.fma(xv, a001);
            a101 = w11.fma(xv, a101);
            xv = FloatVector.fromArray(F, x, x1 + c);
            a010 = w00.fma(xv, a010);
            a110 = w10.fma(xv, a110);
            xv = FloatVector.fromArray(F, x, x1 + c + L);
            a011 = w01.fma(xv, a011);
            a111 = w11.fma(xv, a111);
            xv = FloatVector.fromArray(F, x, x2 + c);
            a020 = w00.fma(xv, a020);
            a120 = w10.fma(xv, a120);
            xv = FloatVector.fromArray(F, x, x2 + c + L);
            a021 = w01.fma(xv, a021);
            a121 = w11.fma(xv, a121);
            xv = FloatVector.fromArray(F, x, x3 + c);
            a030 = w00.fma(xv, a030);
            a130 = w10.fma(xv, a130);
            xv = FloatVector.fromArray(F, x, x3 + c + L);
            a031 = w01.fma(xv, a031);
            a131 = w11.fma(xv, a131);
        }
        a000.add(a001).intoArray(lanes, 0);
        a010.add(a011).intoArray(lanes, L);
        a020.add(a021).intoArray(lanes, 2 * L);
        a030.add(a031).intoArray(lanes, 3 * L);
        a100.add(a101).intoArray(lanes, 4 * L);
        a110.add(a111).intoArray(lanes, 5 * L);
        a120.add(a121).intoArray(lanes, 6 * L);
        a130.add(a131).intoArray(lanes, 7 * L);
        VectorMath.reduce8(lanes, 0);
        if (add) {
            out[o0 + r] += lanes[0];
            out[o0 + rows + r] += lanes[1];
            out[o0 + 2 * rows + r] += lanes[2];
            out[o0 + 3 * rows + r] += lanes[3];
            out[o0 + r + 1] += lanes[4];
            out[o0 + rows + r + 1] += lanes[5];
            out[o0 + 2 * rows + r + 1] += lanes[6];
            out[o0 + 3 * rows + r + 1] += lanes[7];
        } else {
            out[o0 + r] = lanes[0];
            out[o0 + rows + r] = lanes[1];
            out[o0 + 2 * rows + r] = lanes[2];
            out[o0 + 3 * rows + r] = lanes[3];
            out[o0 + r + 1] = lanes[4];
            out[o0 + rows + r + 1] = lanes[5];
            out[o0 + 2 * rows + r + 1] = lanes[6];
            out[o0 + 3 * rows + r + 1] = lanes[7];
        }
    }

    /** {@code L} plain-order int8 values at {@code byteOffset} as floats. */
    private static FloatVector widen(MemorySegment q, long byteOffset) {
        return (FloatVector) ByteVector.fromMemorySegment(B, q, byteOffset, ByteOrder.LITTLE_ENDIAN)
                .convertShape(VectorOperators.B2F, F, 0);
    }

    /** One weight row against the batch row starting at {@code x[xRow]}. */
    static float row1(MemorySegment q, MemorySegment s, int rows, int cols, int block, int r, float[] x, int xRow,
                      float[] lanes) {
        long base = Int8Quantizer.rowStart(rows, cols, r);
        int step = Int8Quantizer.groupStep(rows, r);
        long sBase = (long) r * (cols / block);
        int full = cols / GROUP * GROUP;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        for (int g = 0; g < full; g += GROUP) {
            // Columns [g, g+32) lie in one block and [g+32, g+64) in one block: blocks are multiples of 32.
            float sLo = s.getAtIndex(SCALE, sBase + g / block);
            float sHi = s.getAtIndex(SCALE, sBase + (g + 32) / block);
            for (int h = 0; h < LOADS; h++) {
                IntVector p = IntVector.fromMemorySegment(I, q, base + (long) g * step + 4L * L * h,
                        ByteOrder.LITTLE_ENDIAN);
                int c = xRow + g + L * h;
                a0 = ((FloatVector) p.lanewise(VectorOperators.LSHL, 24).lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(sLo).fma(FloatVector.fromArray(F, x, c), a0);
                a1 = ((FloatVector) p.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(sLo).fma(FloatVector.fromArray(F, x, c + 16), a1);
                a0 = ((FloatVector) p.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(sHi).fma(FloatVector.fromArray(F, x, c + 32), a0);
                a1 = ((FloatVector) p.lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(sHi).fma(FloatVector.fromArray(F, x, c + 48), a1);
            }
        }
        a0.add(a1).intoArray(lanes, 0);
        float sum = VectorMath.reduce(lanes);
        return full < cols ? sum + halfGroup(q, s, rows, cols, block, r, x, xRow, lanes) : sum;
    }

    /**
     * Row {@code r}'s whole groups against the batch rows at {@code x[x0]} and {@code x[x0 + cols]}, each
     * accumulated exactly as {@link #row1} does; the two sums' lanes to {@code lanes[0]} and {@code lanes[L]}.
     */
    private static void row1x2(MemorySegment q, MemorySegment s, int rows, int cols, int block, int r, float[] x,
                               int x0, float[] lanes) {
        long base = Int8Quantizer.rowStart(rows, cols, r);
        int step = Int8Quantizer.groupStep(rows, r);
        long sBase = (long) r * (cols / block);
        int full = cols / GROUP * GROUP;
        int x1 = x0 + cols;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0, b0 = a0, b1 = a0;
        for (int g = 0; g < full; g += GROUP) {
            float sLo = s.getAtIndex(SCALE, sBase + g / block);
            float sHi = s.getAtIndex(SCALE, sBase + (g + 32) / block);
            for (int h = 0; h < LOADS; h++) {
                IntVector p = IntVector.fromMemorySegment(I, q, base + (long) g * step + 4L * L * h,
                        ByteOrder.LITTLE_ENDIAN);
                int c = g + L * h;
                FloatVector w = ((FloatVector) p.lanewise(VectorOperators.LSHL, 24).lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(sLo);
                a0 = w.fma(FloatVector.fromArray(F, x, x0 + c), a0);
                b0 = w.fma(FloatVector.fromArray(F, x, x1 + c), b0);
                w = ((FloatVector) p.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(sLo);
                a1 = w.fma(FloatVector.fromArray(F, x, x0 + c + 16), a1);
                b1 = w.fma(FloatVector.fromArray(F, x, x1 + c + 16), b1);
                w = ((FloatVector) p.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(sHi);
                a0 = w.fma(FloatVector.fromArray(F, x, x0 + c + 32), a0);
                b0 = w.fma(FloatVector.fromArray(F, x, x1 + c + 32), b0);
                w = ((FloatVector) p.lanewise(VectorOperators.ASHR, 24).convert(VectorOperators.I2F, 0)).mul(sHi);
                a1 = w.fma(FloatVector.fromArray(F, x, x0 + c + 48), a1);
                b1 = w.fma(FloatVector.fromArray(F, x, x1 + c + 48), b1);
            }
        }
        a0.add(a1).intoArray(lanes, 0);
        b0.add(b1).intoArray(lanes, L);
    }

    /** As {@link #row1x2} for three batch rows; lanes at {@code 0, L, 2L}. */
    private static void row1x3(MemorySegment q, MemorySegment s, int rows, int cols, int block, int r, float[] x,
                               int x0, float[] lanes) {
        long base = Int8Quantizer.rowStart(rows, cols, r);
        int step = Int8Quantizer.groupStep(rows, r);
        long sBase = (long) r * (cols / block);
        int full = cols / GROUP * GROUP;
        int x1 = x0 + cols;
        int x2 = x1 + cols;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0;
        for (int g = 0; g < full; g += GROUP) {
            float sLo = s.getAtIndex(SCALE, sBase + g / block);
            float sHi = s.getAtIndex(SCALE, sBase + (g + 32) / block);
            for (int h = 0; h < LOADS; h++) {
                IntVector p = IntVector.fromMemorySegment(I, q, base + (long) g * step + 4L * L * h,
                        ByteOrder.LITTLE_ENDIAN);
                int c = g + L * h;
                FloatVector w = ((FloatVector) p.lanewise(VectorOperators.LSHL, 24).lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(sLo);
                a0 = w.fma(FloatVector.fromArray(F, x, x0 + c), a0);
                b0 = w.fma(FloatVector.fromArray(F, x, x1 + c), b0);
                c0 = w.fma(FloatVector.fromArray(F, x, x2 + c), c0);
                w = ((FloatVector) p.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(sLo);
                a1 = w.fma(FloatVector.fromArray(F, x, x0 + c + 16), a1);
                b1 = w.fma(FloatVector.fromArray(F, x, x1 + c + 16), b1);
                c1 = w.fma(FloatVector.fromArray(F, x, x2 + c + 16), c1);
                w = ((FloatVector) p.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(sHi);
                a0 = w.fma(FloatVector.fromArray(F, x, x0 + c + 32), a0);
                b0 = w.fma(FloatVector.fromArray(F, x, x1 + c + 32), b0);
                c0 = w.fma(FloatVector.fromArray(F, x, x2 + c + 32), c0);
                w = ((FloatVector) p.lanewise(VectorOperators.ASHR, 24).convert(VectorOperators.I2F, 0)).mul(sHi);
                a1 = w.fma(FloatVector.fromArray(F, x, x0 + c + 48), a1);
                b1 = w.fma(FloatVector.fromArray(F, x, x1 + c + 48), b1);
                c1 = w.fma(FloatVector.fromArray(F, x, x2 + c + 48), c1);
            }
        }
        a0.add(a1).intoArray(lanes, 0);
        b0.add(b1).intoArray(lanes, L);
        c0.add(c1).intoArray(lanes, 2 * L);
    }

    /** Writes row {@code r} of batch rows {@code b..b+n-1} from {@code lanes[k·L]}, each plus its half group. */
    private static void leftoverOut(MemorySegment q, MemorySegment s, int rows, int cols, int block, int r,
                                    float[] x, int xOff, float[] out, int outOff, int b, int n, float[] lanes) {
        // halfGroup overwrites lanes[0, L) only: sum k is read before the half groups k and after need it.
        for (int k = 0; k < n; k++) {
            float sum = VectorMath.reduce(lanes, k * L);
            out[outOff + (b + k) * rows + r] = cols % GROUP != 0
                    ? sum + halfGroup(q, s, rows, cols, block, r, x, xOff + (b + k) * cols, lanes) : sum;
        }
    }

    /**
     * The plain-order last 32 columns of row {@code r} against one batch row, reduced on their own (a separate
     * method so the tile stays small enough for the JIT to compile its vector code inline).
     */
    private static float halfGroup(MemorySegment q, MemorySegment s, int rows, int cols, int block, int r,
                                   float[] x, int xRow, float[] lanes) {
        int full = cols / GROUP * GROUP;
        long base = Int8Quantizer.halfGroupStart(rows, cols, r) - full;  // column c at base + c
        float sc = s.getAtIndex(SCALE, (long) r * (cols / block) + full / block);
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        for (int c = full; c < cols; c += 2 * L) {
            a0 = widen(q, base + c).mul(sc).fma(FloatVector.fromArray(F, x, xRow + c), a0);
            a1 = widen(q, base + c + L).mul(sc).fma(FloatVector.fromArray(F, x, xRow + c + L), a1);
        }
        a0.add(a1).intoArray(lanes, 0);
        return VectorMath.reduce(lanes);
    }

    /**
     * Weight rows {@code r, r+1} against the 4 consecutive batch rows at {@code x[x0]}, written from
     * {@code out[o0]}: 16 accumulators; each widened weight vector serves 4 FMAs, each activation vector 2. The
     * columns are visited in row1's order (per group: the int loads, then bytes 0..3 of each, into a0, a1, a0, a1)
     * so every output has row1's bits.
     */
    private static void tile2x4(MemorySegment q, MemorySegment s, int rows, int cols, int block, int r, float[] x,
                                int x0, float[] out, int o0, float[] lanes) {
        long base0 = Int8Quantizer.rowStart(rows, cols, r);
        long base1 = Int8Quantizer.rowStart(rows, cols, r + 1);
        int step0 = Int8Quantizer.groupStep(rows, r);
        int step1 = Int8Quantizer.groupStep(rows, r + 1);
        int perRow = cols / block;
        long sBase0 = (long) r * perRow;
        long sBase1 = sBase0 + perRow;
        int full = cols / GROUP * GROUP;
        int x1 = x0 + cols;
        int x2 = x1 + cols;
        int x3 = x2 + cols;
        FloatVector z = FloatVector.zero(F);
        FloatVector a000 = z, a001 = z, a010 = z, a011 = z, a020 = z, a021 = z, a030 = z, a031 = z;
        FloatVector a100 = z, a101 = z, a110 = z, a111 = z, a120 = z, a121 = z, a130 = z, a131 = z;
        for (int g = 0; g < full; g += GROUP) {
            float s0Lo = s.getAtIndex(SCALE, sBase0 + g / block);
            float s0Hi = s.getAtIndex(SCALE, sBase0 + (g + 32) / block);
            float s1Lo = s.getAtIndex(SCALE, sBase1 + g / block);
            float s1Hi = s.getAtIndex(SCALE, sBase1 + (g + 32) / block);
            for (int h = 0; h < LOADS; h++) {
                IntVector p0 = IntVector.fromMemorySegment(I, q, base0 + (long) g * step0 + 4L * L * h,
                        ByteOrder.LITTLE_ENDIAN);
                IntVector p1 = IntVector.fromMemorySegment(I, q, base1 + (long) g * step1 + 4L * L * h,
                        ByteOrder.LITTLE_ENDIAN);
                int c = g + L * h;
                FloatVector w0;
                FloatVector w1;
                FloatVector xv;
                w0 = ((FloatVector) p0.lanewise(VectorOperators.LSHL, 24).lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(s0Lo);
                w1 = ((FloatVector) p1.lanewise(VectorOperators.LSHL, 24).lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(s1Lo);
                xv = FloatVector.fromArray(F, x, x0 + c);
                a000 = w0.fma(xv, a000);
                a100 = w1.fma(xv, a100);
                xv = FloatVector.fromArray(F, x, x1 + c);
                a010 = w0.fma(xv, a010);
                a110 = w1.fma(xv, a110);
                xv = FloatVector.fromArray(F, x, x2 + c);
                a020 = w0.fma(xv, a020);
                a120 = w1.fma(xv, a120);
                xv = FloatVector.fromArray(F, x, x3 + c);
                a030 = w0.fma(xv, a030);
                a130 = w1.fma(xv, a130);
                w0 = ((FloatVector) p0.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(s0Lo);
                w1 = ((FloatVector) p1.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(s1Lo);
                xv = FloatVector.fromArray(F, x, x0 + c + 16);
                a001 = w0.fma(xv, a001);
                a101 = w1.fma(xv, a101);
                xv = FloatVector.fromArray(F, x, x1 + c + 16);
                a011 = w0.fma(xv, a011);
                a111 = w1.fma(xv, a111);
                xv = FloatVector.fromArray(F, x, x2 + c + 16);
                a021 = w0.fma(xv, a021);
                a121 = w1.fma(xv, a121);
                xv = FloatVector.fromArray(F, x, x3 + c + 16);
                a031 = w0.fma(xv, a031);
                a131 = w1.fma(xv, a131);
                w0 = ((FloatVector) p0.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(s0Hi);
                w1 = ((FloatVector) p1.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(s1Hi);
                xv = FloatVector.fromArray(F, x, x0 + c + 32);
                a000 = w0.fma(xv, a000);
                a100 = w1.fma(xv, a100);
                xv = FloatVector.fromArray(F, x, x1 + c + 32);
                a010 = w0.fma(xv, a010);
                a110 = w1.fma(xv, a110);
                xv = FloatVector.fromArray(F, x, x2 + c + 32);
                a020 = w0.fma(xv, a020);
                a120 = w1.fma(xv, a120);
                xv = FloatVector.fromArray(F, x, x3 + c + 32);
                a030 = w0.fma(xv, a030);
                a130 = w1.fma(xv, a130);
                w0 = ((FloatVector) p0.lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(s0Hi);
                w1 = ((FloatVector) p1.lanewise(VectorOperators.ASHR, 24)
                        .convert(VectorOperators.I2F, 0)).mul(s1Hi);
                xv = FloatVector.fromArray(F, x, x0 + c + 48);
                a001 = w0.fma(xv, a001);
                a101 = w1.fma(xv, a101);
                xv = FloatVector.fromArray(F, x, x1 + c + 48);
                a011 = w0.fma(xv, a011);
                a111 = w1.fma(xv, a111);
                xv = FloatVector.fromArray(F, x, x2 + c + 48);
                a021 = w0.fma(xv, a021);
                a121 = w1.fma(xv, a121);
                xv = FloatVector.fromArray(F, x, x3 + c + 48);
                a031 = w0.fma(xv, a031);
                a131 = w1.fma(xv, a131);
            }
        }
        a000.add(a001).intoArray(lanes, 0);
        a010.add(a011).intoArray(lanes, L);
        a020.add(a021).intoArray(lanes, 2 * L);
        a030.add(a031).intoArray(lanes, 3 * L);
        a100.add(a101).intoArray(lanes, 4 * L);
        a110.add(a111).intoArray(lanes, 5 * L);
        a120.add(a121).intoArray(lanes, 6 * L);
        a130.add(a131).intoArray(lanes, 7 * L);
        VectorMath.reduce8(lanes, 0);
        float t00 = lanes[0], t01 = lanes[1], t02 = lanes[2], t03 = lanes[3];
        float t10 = lanes[4], t11 = lanes[5], t12 = lanes[6], t13 = lanes[7];
        if (full < cols) {
            t00 += halfGroup(q, s, rows, cols, block, r, x, x0, lanes);
            t01 += halfGroup(q, s, rows, cols, block, r, x, x1, lanes);
            t02 += halfGroup(q, s, rows, cols, block, r, x, x2, lanes);
            t03 += halfGroup(q, s, rows, cols, block, r, x, x3, lanes);
            t10 += halfGroup(q, s, rows, cols, block, r + 1, x, x0, lanes);
            t11 += halfGroup(q, s, rows, cols, block, r + 1, x, x1, lanes);
            t12 += halfGroup(q, s, rows, cols, block, r + 1, x, x2, lanes);
            t13 += halfGroup(q, s, rows, cols, block, r + 1, x, x3, lanes);
        }
        out[o0 + r] = t00;
        out[o0 + rows + r] = t01;
        out[o0 + 2 * rows + r] = t02;
        out[o0 + 3 * rows + r] = t03;
        out[o0 + r + 1] = t10;
        out[o0 + rows + r + 1] = t11;
        out[o0 + 2 * rows + r + 1] = t12;
        out[o0 + 3 * rows + r + 1] = t13;
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
                    float sc = s.getAtIndex(SCALE, (long) r * perRow + c / block);
                    float w = q.get(ValueLayout.JAVA_BYTE, Int8Quantizer.offset(rows, cols, r, c)) * sc;
                    acc = Math.fma(w, x[xOff + b * cols + c], acc);
                }
                out[outOff + b * rows + r] = acc;
            }
        }
    }
}
