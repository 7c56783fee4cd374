package io.expertmesh.core.kernel;

import static io.expertmesh.core.kernel.VectorMath.F;
import static io.expertmesh.core.kernel.VectorMath.L;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Rows of a BF16 matmul on the calling thread: {@code out[b][r] = Σ_c w[r][c] · x[b][c]}.
 *
 * <p><b>The even/odd trick.</b> A bf16 is the top half of a float32, so widening needs no arithmetic, only a
 * shift. Loading {@code L} ints reads {@code 2L} bf16 values; in little-endian order the low half of int
 * {@code j} is element {@code 2j} and the high half is element {@code 2j+1}. {@code int << 16} is then element
 * {@code 2j} as a float and {@code int & 0xFFFF0000} is element {@code 2j+1}: two full float vectors from one
 * load with two cheap lanewise ops, none of the slow shape-changing conversions. The activations are split
 * once per call into even and odd arrays ({@link #splitEvenOdd}), so a row's dot product is two plain FMA
 * streams against them.
 *
 * <p><b>Determinism.</b> Every (row, batch row) pair is accumulated the same way whatever the tile, the row
 * block or the thread. A step is {@code 2L} elements (one int load); step {@code s} goes into the even/odd
 * accumulator pair {@code s mod 2}, so four vector accumulators in all; then {@code (e0+o0) + (e1+o1)} is reduced
 * as a fixed tree ({@link VectorMath#reduce}; the tile reduces its 8 sums at once with {@link VectorMath#reduce8},
 * the same tree bit for bit), plus the scalar tail (the last {@code < 2L} elements) summed in order with fused
 * multiply-adds.
 *
 * <p><b>Why four accumulators.</b> With one pair, each step's FMAs wait for the previous step's (4 cycles of
 * latency); two pairs let two steps' loads and FMAs be in flight, which measured 1.4-1.6× more bytes per second
 * for one thread reading a 704×1024 matrix from DRAM (decode), and the same from cache.
 *
 * <p><b>Tiling.</b> The register tile is 2 weight rows × 4 batch rows; with 2 accumulators per pair that is
 * already 16 vector registers, so it runs twice, once over the even steps (pair 0) and once over the odd ones
 * (pair 1, re-reading the two weight rows from L1), and adds the two sums: row1's order, in two passes. Per step
 * it loads 2 weight vectors and 8 activation vectors for 16 FMAs, about half the loads of a 1-row tile.
 * Rows are walked in {@link RowBlocks}: for each block, every 4-row batch tile runs over the block's row
 * pairs, so the tile's activations (4 rows, even and odd) stay in L1 and only the weights stream from L2. A
 * block is read from DRAM once for the whole batch. Batch rows outside a 4-tile (all of them at batch 1) go
 * one weight row at a time, a single sequential stream that the hardware prefetcher follows best; there the
 * bottleneck is DRAM, not FMAs. Two or three of them go together ({@code row1x2}, {@code row1x3}): one weight
 * load for all, each keeping row1's four accumulators.
 */
final class Bf16Matmul {
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
    private static final ValueLayout.OfShort BF16 =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int ODD_MASK = 0xFFFF0000;

    private Bf16Matmul() {
    }

    /** Elements of a row covered by vector steps; the rest (fewer than {@code 2L}) is the scalar tail. */
    static int vectorCols(int cols) {
        return cols / (2 * L) * (2 * L);
    }

    /**
     * Copies the vector-covered part of each batch row of {@code x} into {@code even[b*h + j] = x[b][2j]},
     * {@code odd[b*h + j] = x[b][2j+1]}, {@code h = vectorCols(cols)/2}.
     */
    static void splitEvenOdd(float[] x, int xOff, int cols, int batch, float[] even, float[] odd) {
        int h = vectorCols(cols) / 2;
        for (int b = 0; b < batch; b++) {
            int src = xOff + b * cols;
            int dst = b * h;
            for (int j = 0; j < h; j++) {
                even[dst + j] = x[src + 2 * j];
                odd[dst + j] = x[src + 2 * j + 1];
            }
        }
    }

    /** Computes weight rows {@code [from, to)} for all batch rows; {@code even}/{@code odd} from the split. */
    static void rows(MemorySegment w, int rows, int cols, int from, int to, float[] x, int xOff,
                     float[] even, float[] odd, float[] out, int outOff, int batch, float[] lanes) {
        int h = vectorCols(cols) / 2;
        int blockRows = RowBlocks.rows(cols, 2);
        int tiles = batch / 4 * 4;
        for (int blockStart = from; blockStart < to; blockStart += blockRows) {
            int blockEnd = Math.min(to, blockStart + blockRows);
            for (int b = 0; b < tiles; b += 4) {
                int r = blockStart;
                for (; r + 2 <= blockEnd; r += 2) {
                    tile2x4(w, cols, r, rows, even, odd, h, b, x, xOff, out, outOff, lanes);
                }
                for (; r < blockEnd; r++) {
                    for (int k = b; k < b + 4; k++) {
                        out[outOff + k * rows + r] = row1(w, cols, r, x, xOff + k * cols, even, odd, k * h, lanes);
                    }
                }
            }
            // Leftover batch rows (all of them at batch 1, i.e. decode) go one weight row at a time: one sequential
            // stream through the weights, which measured 1.5-2x faster out of cache than interleaving two rows.
            // Two or three leftover batch rows share each weight load (an MoE expert sees 2-3 tokens at batched
            // decode): 1.3-1.4x the speed of a row1 per batch row, from cache or DRAM (704x1024, one thread).
            for (int r = blockStart; r < blockEnd; r++) {
                for (int k = tiles; k < batch; ) {
                    int n = Math.min(3, batch - k);
                    if (n == 1) {
                        out[outOff + k * rows + r] = row1(w, cols, r, x, xOff + k * cols, even, odd, k * h, lanes);
                    } else {
                        if (n == 2) {
                            row1x2(w, cols, r, even, odd, k * h, h, lanes);
                        } else {
                            row1x3(w, cols, r, even, odd, k * h, h, lanes);
                        }
                        leftoverOut(w, cols, r, rows, x, xOff, out, outOff, k, n, lanes);
                    }
                    k += n;
                }
            }
        }
    }

    private static FloatVector evens(IntVector p) {
        return (FloatVector) p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    private static FloatVector odds(IntVector p) {
        return (FloatVector) p.lanewise(VectorOperators.AND, ODD_MASK).reinterpretAsFloats();
    }

    private static IntVector load(MemorySegment w, long byteOffset) {
        return IntVector.fromMemorySegment(I, w, byteOffset, ByteOrder.LITTLE_ENDIAN);
    }

    private static float tail(MemorySegment w, long rowBase, int from, int cols, float[] x, int xRow) {
        float t = 0f;
        for (int c = from; c < cols; c++) {
            t = Math.fma(Bf16Matmul.bf16(w, rowBase, c), x[xRow + c], t);
        }
        return t;
    }

    private static float bf16(MemorySegment w, long rowBase, int c) {
        return Float.intBitsToFloat((w.get(BF16, rowBase + 2L * c) & 0xFFFF) << 16);
    }

    /** One weight row against one batch row whose split activations start at {@code h0}. */
    static float row1(MemorySegment w, int cols, int r, float[] x, int xRow, float[] even, float[] odd, int h0,
                      float[] lanes) {
        long base = (long) r * cols * 2;
        int pairs = vectorCols(cols) / 2;
        FloatVector e0 = FloatVector.zero(F);
        FloatVector o0 = e0;
        FloatVector e1 = e0;
        FloatVector o1 = e0;
        int j = 0;
        for (; j + 2 * L <= pairs; j += 2 * L) {
            IntVector p = load(w, base + 4L * j);
            IntVector q = load(w, base + 4L * (j + L));
            e0 = evens(p).fma(FloatVector.fromArray(F, even, h0 + j), e0);
            o0 = odds(p).fma(FloatVector.fromArray(F, odd, h0 + j), o0);
            e1 = evens(q).fma(FloatVector.fromArray(F, even, h0 + j + L), e1);
            o1 = odds(q).fma(FloatVector.fromArray(F, odd, h0 + j + L), o1);
        }
        if (j < pairs) {
            // An odd number of steps: the last one is an even step, pair 0's.
            IntVector p = load(w, base + 4L * j);
            e0 = evens(p).fma(FloatVector.fromArray(F, even, h0 + j), e0);
            o0 = odds(p).fma(FloatVector.fromArray(F, odd, h0 + j), o0);
        }
        e0.add(o0).add(e1.add(o1)).intoArray(lanes, 0);
        return VectorMath.reduce(lanes, 0) + tail(w, base, 2 * pairs, cols, x, xRow);
    }

    /**
     * Row {@code r} against batch rows {@code b..b+1} (split activations at {@code h0}, {@code h0 + h}), each
     * accumulated exactly as {@link #row1} does; the two sums' lanes to {@code lanes[0]} and {@code lanes[L]}.
     */
    private static void row1x2(MemorySegment w, int cols, int r, float[] even, float[] odd, int h0, int h,
                               float[] lanes) {
        long base = (long) r * cols * 2;
        int pairs = vectorCols(cols) / 2;
        int h1 = h0 + h;
        FloatVector z = FloatVector.zero(F);
        FloatVector e00 = z, o00 = z, e10 = z, o10 = z;
        FloatVector e01 = z, o01 = z, e11 = z, o11 = z;
        int j = 0;
        for (; j + 2 * L <= pairs; j += 2 * L) {
            IntVector p = load(w, base + 4L * j);
            IntVector q = load(w, base + 4L * (j + L));
            FloatVector pe = evens(p), po = odds(p), qe = evens(q), qo = odds(q);
            e00 = pe.fma(FloatVector.fromArray(F, even, h0 + j), e00);
            o00 = po.fma(FloatVector.fromArray(F, odd, h0 + j), o00);
            e10 = qe.fma(FloatVector.fromArray(F, even, h0 + j + L), e10);
            o10 = qo.fma(FloatVector.fromArray(F, odd, h0 + j + L), o10);
            e01 = pe.fma(FloatVector.fromArray(F, even, h1 + j), e01);
            o01 = po.fma(FloatVector.fromArray(F, odd, h1 + j), o01);
            e11 = qe.fma(FloatVector.fromArray(F, even, h1 + j + L), e11);
            o11 = qo.fma(FloatVector.fromArray(F, odd, h1 + j + L), o11);
        }
        if (j < pairs) {
            IntVector p = load(w, base + 4L * j);
            FloatVector pe = evens(p), po = odds(p);
            e00 = pe.fma(FloatVector.fromArray(F, even, h0 + j), e00);
            o00 = po.fma(FloatVector.fromArray(F, odd, h0 + j), o00);
            e01 = pe.fma(FloatVector.fromArray(F, even, h1 + j), e01);
            o01 = po.fma(FloatVector.fromArray(F, odd, h1 + j), o01);
        }
        e00.add(o00).add(e10.add(o10)).intoArray(lanes, 0);
        e01.add(o01).add(e11.add(o11)).intoArray(lanes, L);
    }

    /** As {@link #row1x2} for batch rows {@code b..b+2}; lanes at {@code 0, L, 2L}. 16 vector registers live. */
    private static void row1x3(MemorySegment w, int cols, int r, float[] even, float[] odd, int h0, int h,
                               float[] lanes) {
        long base = (long) r * cols * 2;
        int pairs = vectorCols(cols) / 2;
        int h1 = h0 + h;
        int h2 = h1 + h;
        FloatVector z = FloatVector.zero(F);
        FloatVector e00 = z, o00 = z, e10 = z, o10 = z;
        FloatVector e01 = z, o01 = z, e11 = z, o11 = z;
        FloatVector e02 = z, o02 = z, e12 = z, o12 = z;
        int j = 0;
        for (; j + 2 * L <= pairs; j += 2 * L) {
            IntVector p = load(w, base + 4L * j);
            IntVector q = load(w, base + 4L * (j + L));
            FloatVector pe = evens(p), po = odds(p), qe = evens(q), qo = odds(q);
            e00 = pe.fma(FloatVector.fromArray(F, even, h0 + j), e00);
            o00 = po.fma(FloatVector.fromArray(F, odd, h0 + j), o00);
            e10 = qe.fma(FloatVector.fromArray(F, even, h0 + j + L), e10);
            o10 = qo.fma(FloatVector.fromArray(F, odd, h0 + j + L), o10);
            e01 = pe.fma(FloatVector.fromArray(F, even, h1 + j), e01);
            o01 = po.fma(FloatVector.fromArray(F, odd, h1 + j), o01);
            e11 = qe.fma(FloatVector.fromArray(F, even, h1 + j + L), e11);
            o11 = qo.fma(FloatVector.fromArray(F, odd, h1 + j + L), o11);
            e02 = pe.fma(FloatVector.fromArray(F, even, h2 + j), e02);
            o02 = po.fma(FloatVector.fromArray(F, odd, h2 + j), o02);
            e12 = qe.fma(FloatVector.fromArray(F, even, h2 + j + L), e12);
            o12 = qo.fma(FloatVector.fromArray(F, odd, h2 + j + L), o12);
        }
        if (j < pairs) {
            IntVector p = load(w, base + 4L * j);
            FloatVector pe = evens(p), po = odds(p);
            e00 = pe.fma(FloatVector.fromArray(F, even, h0 + j), e00);
            o00 = po.fma(FloatVector.fromArray(F, odd, h0 + j), o00);
            e01 = pe.fma(FloatVector.fromArray(F, even, h1 + j), e01);
            o01 = po.fma(FloatVector.fromArray(F, odd, h1 + j), o01);
            e02 = pe.fma(FloatVector.fromArray(F, even, h2 + j), e02);
            o02 = po.fma(FloatVector.fromArray(F, odd, h2 + j), o02);
        }
        e00.add(o00).add(e10.add(o10)).intoArray(lanes, 0);
        e01.add(o01).add(e11.add(o11)).intoArray(lanes, L);
        e02.add(o02).add(e12.add(o12)).intoArray(lanes, 2 * L);
    }

    /** Writes row {@code r} of batch rows {@code b..b+n-1} from {@code lanes[k·L]} plus each one's scalar tail. */
    private static void leftoverOut(MemorySegment w, int cols, int r, int rows, float[] x, int xOff, float[] out,
                                    int outOff, int b, int n, float[] lanes) {
        long base = (long) r * cols * 2;
        int c = vectorCols(cols);
        for (int k = 0; k < n; k++) {
            out[outOff + (b + k) * rows + r] = VectorMath.reduce(lanes, k * L)
                    + tail(w, base, c, cols, x, xOff + (b + k) * cols);
        }
    }

    /**
     * Weight rows {@code r, r+1} against batch rows {@code b..b+3}: 16 accumulators, 10 loads per 16 FMAs. The
     * even steps (row1's pair 0), then the odd steps (pair 1), added per (row, batch row) as row1 adds its pairs.
     */
    private static void tile2x4(MemorySegment w, int cols, int r, int rows, float[] even, float[] odd, int h,
                                int b, float[] x, int xOff, float[] out, int outOff, float[] lanes) {
        long base0 = (long) r * cols * 2;
        long base1 = base0 + 2L * cols;
        int pairs = vectorCols(cols) / 2;
        tileSteps(w, base0, base1, pairs, 0, even, odd, b * h, h, lanes, false);
        tileSteps(w, base0, base1, pairs, L, even, odd, b * h, h, lanes, true);
        VectorMath.reduce8(lanes, 0);
        int c = 2 * pairs;
        out[outOff + b * rows + r] = lanes[0] + tail(w, base0, c, cols, x, xOff + b * cols);
        out[outOff + (b + 1) * rows + r] = lanes[1] + tail(w, base0, c, cols, x, xOff + (b + 1) * cols);
        out[outOff + (b + 2) * rows + r] = lanes[2] + tail(w, base0, c, cols, x, xOff + (b + 2) * cols);
        out[outOff + (b + 3) * rows + r] = lanes[3] + tail(w, base0, c, cols, x, xOff + (b + 3) * cols);
        out[outOff + b * rows + r + 1] = lanes[4] + tail(w, base1, c, cols, x, xOff + b * cols);
        out[outOff + (b + 1) * rows + r + 1] = lanes[5] + tail(w, base1, c, cols, x, xOff + (b + 1) * cols);
        out[outOff + (b + 2) * rows + r + 1] = lanes[6] + tail(w, base1, c, cols, x, xOff + (b + 2) * cols);
        out[outOff + (b + 3) * rows + r + 1] = lanes[7] + tail(w, base1, c, cols, x, xOff + (b + 3) * cols);
    }

    /**
     * The tile's steps from pair index {@code first} ({@code 0}: the even steps; {@code L}: the odd ones), every
     * other step. Stores each (row, batch row)'s {@code e+o} at {@code lanes[k·L]} (k = 4·row + batch row), or adds
     * it to what the even pass stored there ({@code addToLanes}). Its own method, so that C2 compiles each pass's
     * 16 accumulators in registers (one method with both loops boxed its vectors: 10× slower).
     */
    private static void tileSteps(MemorySegment w, long base0, long base1, int pairs, int first, float[] even,
                                  float[] odd, int h0, int h, float[] lanes, boolean addToLanes) {
        int h1 = h0 + h;
        int h2 = h1 + h;
        int h3 = h2 + h;
        FloatVector z = FloatVector.zero(F);
        FloatVector e00 = z, o00 = z, e01 = z, o01 = z, e02 = z, o02 = z, e03 = z, o03 = z;
        FloatVector e10 = z, o10 = z, e11 = z, o11 = z, e12 = z, o12 = z, e13 = z, o13 = z;
        for (int j = first; j < pairs; j += 2 * L) {
            IntVector p0 = load(w, base0 + 4L * j);
            IntVector p1 = load(w, base1 + 4L * j);
            FloatVector we0 = evens(p0);
            FloatVector wo0 = odds(p0);
            FloatVector we1 = evens(p1);
            FloatVector wo1 = odds(p1);
            FloatVector xv;
            xv = FloatVector.fromArray(F, even, h0 + j);
            e00 = we0.fma(xv, e00);
            e10 = we1.fma(xv, e10);
            xv = FloatVector.fromArray(F, odd, h0 + j);
            o00 = wo0.fma(xv, o00);
            o10 = wo1.fma(xv, o10);
            xv = FloatVector.fromArray(F, even, h1 + j);
            e01 = we0.fma(xv, e01);
            e11 = we1.fma(xv, e11);
            xv = FloatVector.fromArray(F, odd, h1 + j);
            o01 = wo0.fma(xv, o01);
            o11 = wo1.fma(xv, o11);
            xv = FloatVector.fromArray(F, even, h2 + j);
            e02 = we0.fma(xv, e02);
            e12 = we1.fma(xv, e12);
            xv = FloatVector.fromArray(F, odd, h2 + j);
            o02 = wo0.fma(xv, o02);
            o12 = wo1.fma(xv, o12);
            xv = FloatVector.fromArray(F, even, h3 + j);
            e03 = we0.fma(xv, e03);
            e13 = we1.fma(xv, e13);
            xv = FloatVector.fromArray(F, odd, h3 + j);
            o03 = wo0.fma(xv, o03);
            o13 = wo1.fma(xv, o13);
        }
        if (addToLanes) {
            FloatVector.fromArray(F, lanes, 0).add(e00.add(o00)).intoArray(lanes, 0);
            FloatVector.fromArray(F, lanes, L).add(e01.add(o01)).intoArray(lanes, L);
            FloatVector.fromArray(F, lanes, 2 * L).add(e02.add(o02)).intoArray(lanes, 2 * L);
            FloatVector.fromArray(F, lanes, 3 * L).add(e03.add(o03)).intoArray(lanes, 3 * L);
            FloatVector.fromArray(F, lanes, 4 * L).add(e10.add(o10)).intoArray(lanes, 4 * L);
            FloatVector.fromArray(F, lanes, 5 * L).add(e11.add(o11)).intoArray(lanes, 5 * L);
            FloatVector.fromArray(F, lanes, 6 * L).add(e12.add(o12)).intoArray(lanes, 6 * L);
            FloatVector.fromArray(F, lanes, 7 * L).add(e13.add(o13)).intoArray(lanes, 7 * L);
        } else {
            e00.add(o00).intoArray(lanes, 0);
            e01.add(o01).intoArray(lanes, L);
            e02.add(o02).intoArray(lanes, 2 * L);
            e03.add(o03).intoArray(lanes, 3 * L);
            e10.add(o10).intoArray(lanes, 4 * L);
            e11.add(o11).intoArray(lanes, 5 * L);
            e12.add(o12).intoArray(lanes, 6 * L);
            e13.add(o13).intoArray(lanes, 7 * L);
        }
    }
}
