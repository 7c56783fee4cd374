package io.expertmesh.core.kernel;

import static io.expertmesh.core.kernel.VectorMath.F;
import static io.expertmesh.core.kernel.VectorMath.L;

import io.expertmesh.core.tensor.Fp8E4M3;
import io.expertmesh.core.tensor.Matrix;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Rows of an FP8 matmul ({@link io.expertmesh.core.tensor.DType#F8_E4M3}, 128×128 block scales) on the calling
 * thread: {@code out[b][r] = Σ_c (e4m3[r][c]·scale[r/128][c/128]) · x[b][c]}, reading the checkpoint's bytes in
 * place.
 *
 * <p><b>Widening.</b> One int vector load reads {@code 4L} bytes; byte {@code k} of lane {@code j} is column
 * {@code 4j+k}. Shifting byte {@code k} to the top ({@code << 24-8k}), then arithmetically right by 4 and masking
 * with {@code 0x87F00000}, leaves its sign at bit 31 and its 7 magnitude bits at bits 26..20: a float equal to
 * the e4m3 value times 2^-120 ({@link Fp8E4M3#widenedBits}), subnormals included. Multiplying by the block's scale,
 * which holds the 2^120 back ({@link Matrix}), gives exactly the float {@code e4m3·scale_inv}, the weight that
 * {@link Matrix#get} and the scalar reference use; the accumulation is then {@link F32Matmul}'s. Three integer
 * operations and one multiply per weight vector, no table and no conversion instruction. The byte positions
 * ({@code 4j+k}) are strided, so, as {@link Bf16Matmul} splits its activations into even and odd, the activations
 * are reordered once per call ({@link #splitPhases}): within each {@code 4L}-column step, phase {@code k} (columns
 * {@code 4j+k}) becomes {@code L} consecutive floats, and each weight vector meets a plain activation load.
 *
 * <p><b>Scales.</b> A step of {@code 4L} columns (64 with AVX-512) lies within one 128-column block, so each
 * step loads one scale; the row's block row is fixed. Columns past the last whole step (fewer than {@code 4L})
 * are the scalar tail.
 *
 * <p><b>Determinism.</b> Every (row, batch row) pair uses two vector accumulators, the first for phases 0 and 2
 * of each step and the second for phases 1 and 3, {@code (a0+a1)} reduced as a fixed tree ({@link VectorMath#reduce},
 * or {@link VectorMath#reduce8}, the same tree), plus the tail summed in column order with fused multiply-adds,
 * whatever the tiling, thread or batch.
 *
 * <p><b>Tiling.</b> As {@link Int8Matmul}: with whole 4-row batch tiles a block of weight rows ({@link RowBlocks})
 * is widened once into float scratch (in the reordered column order) and the 2×4 tile runs on floats, so the
 * widening is paid once per weight, not once per batch tile; leftover batch rows (all of them at decode) go one
 * weight row at a time from the bytes, a single sequential stream for the prefetcher, up to three sharing each
 * widened weight vector.
 */
final class Fp8Matmul {
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final ValueLayout.OfFloat SCALE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int BLOCK = Matrix.FP8_BLOCK;
    /** Columns one int vector load covers: 4 bytes per lane. */
    static final int STEP = 4 * L;
    /** Sign bit and the 7 magnitude bits' place in the float after the shifts. */
    private static final int SIGN_MAGNITUDE = 0x87F00000;
    private static final int ROW_BLOCK = 4;

    private Fp8Matmul() {
    }

    /** Whether a {@code 4L}-column step fits in one scale block (any vector up to 1024 bits). */
    static boolean supports() {
        return BLOCK % STEP == 0;
    }

    /** Columns covered by vector steps; the rest (fewer than {@code 4L}) is the scalar tail. */
    static int vectorCols(int cols) {
        return cols / STEP * STEP;
    }

    /**
     * Reorders the vector-covered columns of each batch row of {@code x} into {@code xs}, {@code vectorCols(cols)}
     * floats per batch row: {@code xs[b·vc + s + k·L + j] = x[b][s + 4j + k]} for each step {@code s}.
     */
    static void splitPhases(float[] x, int xOff, int cols, int batch, float[] xs) {
        int vc = vectorCols(cols);
        for (int b = 0; b < batch; b++) {
            int src = xOff + b * cols;
            int dst = b * vc;
            for (int s = 0; s < vc; s += STEP) {
                for (int j = 0; j < L; j++) {
                    int c = src + s + 4 * j;
                    int d = dst + s + j;
                    xs[d] = x[c];
                    xs[d + L] = x[c + 1];
                    xs[d + 2 * L] = x[c + 2];
                    xs[d + 3 * L] = x[c + 3];
                }
            }
        }
    }

    /**
     * Computes weight rows {@code [from, to)} for all batch rows; {@code q} the e4m3 bytes, {@code s} the folded
     * scale grid, {@code xs} the activations from {@link #splitPhases}.
     */
    static void rows(MemorySegment q, MemorySegment s, int rows, int cols, int from, int to, float[] x, int xOff,
                     float[] xs, float[] out, int outOff, int batch, float[] lanes) {
        int vc = vectorCols(cols);
        boolean widenOnce = batch >= 4 && vc > 0;
        int blockRows = widenOnce ? RowBlocks.rows(vc, 4) : ROW_BLOCK;
        float[] wide = widenOnce ? KernelScratch.get().dequantized(blockRows * vc) : null;
        for (int blockStart = from; blockStart < to; blockStart += blockRows) {
            int blockEnd = Math.min(to, blockStart + blockRows);
            int b = 0;
            if (widenOnce) {
                widen(q, s, cols, blockStart, blockEnd, wide);
                for (; b + 4 <= batch; b += 4) {
                    int r = blockStart;
                    for (; r + 2 <= blockEnd; r += 2) {
                        tile2x4(wide, (r - blockStart) * vc, vc, q, s, cols, r, rows, xs, b * vc, x,
                                xOff + b * cols, out, outOff + b * rows, lanes);
                    }
                    for (; r < blockEnd; r++) {
                        for (int k = b; k < b + 4; k++) {
                            out[outOff + k * rows + r] = row1(q, s, cols, r, x, xOff + k * cols, xs, k * vc, lanes);
                        }
                    }
                }
            }
            // Leftover batch rows (all of them at batch 1, i.e. decode; all of them when rows are too short to
            // widen) go one weight row at a time from the bytes; up to three share each widened weight vector (an
            // MoE expert at batched decode), as in Int8Matmul.
            for (int r = blockStart; r < blockEnd; r++) {
                for (int k = b; k < batch; ) {
                    int n = Math.min(3, batch - k);
                    if (n == 1) {
                        out[outOff + k * rows + r] = row1(q, s, cols, r, x, xOff + k * cols, xs, k * vc, lanes);
                    } else {
                        if (n == 2) {
                            row1x2(q, s, cols, r, xs, k * vc, vc, lanes);
                        } else {
                            row1x3(q, s, cols, r, xs, k * vc, vc, lanes);
                        }
                        leftoverOut(q, s, cols, r, rows, x, xOff, out, outOff, k, n, lanes);
                    }
                    k += n;
                }
            }
        }
    }

    /** Byte {@code k} of each lane as a widened float, for {@code shift = 24-8k} ({@code k < 3}). */
    private static FloatVector phase(IntVector p, int shift) {
        return (FloatVector) p.lanewise(VectorOperators.LSHL, shift).lanewise(VectorOperators.ASHR, 4)
                .lanewise(VectorOperators.AND, SIGN_MAGNITUDE).reinterpretAsFloats();
    }

    /** Byte 3 of each lane as a widened float: already at the top. */
    private static FloatVector phase3(IntVector p) {
        return (FloatVector) p.lanewise(VectorOperators.ASHR, 4).lanewise(VectorOperators.AND, SIGN_MAGNITUDE)
                .reinterpretAsFloats();
    }

    private static long scaleRow(int r, int cols) {
        return (long) (r / BLOCK) * Matrix.fp8Blocks(cols);
    }

    /** One weight row against one batch row: {@code x[xRow..]} plain, {@code xs[xs0..]} reordered. */
    static float row1(MemorySegment q, MemorySegment s, int cols, int r, float[] x, int xRow, float[] xs, int xs0,
                      float[] lanes) {
        long base = (long) r * cols;
        long sBase = scaleRow(r, cols);
        int vc = vectorCols(cols);
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        for (int c = 0; c < vc; c += STEP) {
            float sc = s.getAtIndex(SCALE, sBase + c / BLOCK);
            IntVector p = IntVector.fromMemorySegment(I, q, base + c, ByteOrder.LITTLE_ENDIAN);
            int o = xs0 + c;
            a0 = phase(p, 24).mul(sc).fma(FloatVector.fromArray(F, xs, o), a0);
            a1 = phase(p, 16).mul(sc).fma(FloatVector.fromArray(F, xs, o + L), a1);
            a0 = phase(p, 8).mul(sc).fma(FloatVector.fromArray(F, xs, o + 2 * L), a0);
            a1 = phase3(p).mul(sc).fma(FloatVector.fromArray(F, xs, o + 3 * L), a1);
        }
        a0.add(a1).intoArray(lanes, 0);
        return VectorMath.reduce(lanes, 0) + tail(q, s, base, sBase, vc, cols, x, xRow);
    }

    /**
     * Row {@code r}'s vector-covered columns against the reordered batch rows at {@code xs[xs0]} and
     * {@code xs[xs0 + vc]}, each accumulated exactly as {@link #row1} does; lanes to {@code 0} and {@code L}.
     */
    private static void row1x2(MemorySegment q, MemorySegment s, int cols, int r, float[] xs, int xs0, int vc,
                               float[] lanes) {
        long base = (long) r * cols;
        long sBase = scaleRow(r, cols);
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0, b0 = a0, b1 = a0;
        for (int c = 0; c < vc; c += STEP) {
            float sc = s.getAtIndex(SCALE, sBase + c / BLOCK);
            IntVector p = IntVector.fromMemorySegment(I, q, base + c, ByteOrder.LITTLE_ENDIAN);
            int o = xs0 + c;
            int o1 = o + vc;
            FloatVector w = phase(p, 24).mul(sc);
            a0 = w.fma(FloatVector.fromArray(F, xs, o), a0);
            b0 = w.fma(FloatVector.fromArray(F, xs, o1), b0);
            w = phase(p, 16).mul(sc);
            a1 = w.fma(FloatVector.fromArray(F, xs, o + L), a1);
            b1 = w.fma(FloatVector.fromArray(F, xs, o1 + L), b1);
            w = phase(p, 8).mul(sc);
            a0 = w.fma(FloatVector.fromArray(F, xs, o + 2 * L), a0);
            b0 = w.fma(FloatVector.fromArray(F, xs, o1 + 2 * L), b0);
            w = phase3(p).mul(sc);
            a1 = w.fma(FloatVector.fromArray(F, xs, o + 3 * L), a1);
            b1 = w.fma(FloatVector.fromArray(F, xs, o1 + 3 * L), b1);
        }
        a0.add(a1).intoArray(lanes, 0);
        b0.add(b1).intoArray(lanes, L);
    }

    /** As {@link #row1x2} for three batch rows; lanes at {@code 0, L, 2L}. */
    private static void row1x3(MemorySegment q, MemorySegment s, int cols, int r, float[] xs, int xs0, int vc,
                               float[] lanes) {
        long base = (long) r * cols;
        long sBase = scaleRow(r, cols);
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0;
        for (int c = 0; c < vc; c += STEP) {
            float sc = s.getAtIndex(SCALE, sBase + c / BLOCK);
            IntVector p = IntVector.fromMemorySegment(I, q, base + c, ByteOrder.LITTLE_ENDIAN);
            int o = xs0 + c;
            int o1 = o + vc;
            int o2 = o1 + vc;
            FloatVector w = phase(p, 24).mul(sc);
            a0 = w.fma(FloatVector.fromArray(F, xs, o), a0);
            b0 = w.fma(FloatVector.fromArray(F, xs, o1), b0);
            c0 = w.fma(FloatVector.fromArray(F, xs, o2), c0);
            w = phase(p, 16).mul(sc);
            a1 = w.fma(FloatVector.fromArray(F, xs, o + L), a1);
            b1 = w.fma(FloatVector.fromArray(F, xs, o1 + L), b1);
            c1 = w.fma(FloatVector.fromArray(F, xs, o2 + L), c1);
            w = phase(p, 8).mul(sc);
            a0 = w.fma(FloatVector.fromArray(F, xs, o + 2 * L), a0);
            b0 = w.fma(FloatVector.fromArray(F, xs, o1 + 2 * L), b0);
            c0 = w.fma(FloatVector.fromArray(F, xs, o2 + 2 * L), c0);
            w = phase3(p).mul(sc);
            a1 = w.fma(FloatVector.fromArray(F, xs, o + 3 * L), a1);
            b1 = w.fma(FloatVector.fromArray(F, xs, o1 + 3 * L), b1);
            c1 = w.fma(FloatVector.fromArray(F, xs, o2 + 3 * L), c1);
        }
        a0.add(a1).intoArray(lanes, 0);
        b0.add(b1).intoArray(lanes, L);
        c0.add(c1).intoArray(lanes, 2 * L);
    }

    /** Writes row {@code r} of batch rows {@code b..b+n-1} from {@code lanes[k·L]}, each plus its scalar tail. */
    private static void leftoverOut(MemorySegment q, MemorySegment s, int cols, int r, int rows, float[] x,
                                    int xOff, float[] out, int outOff, int b, int n, float[] lanes) {
        long base = (long) r * cols;
        long sBase = scaleRow(r, cols);
        int vc = vectorCols(cols);
        for (int k = 0; k < n; k++) {
            out[outOff + (b + k) * rows + r] = VectorMath.reduce(lanes, k * L)
                    + tail(q, s, base, sBase, vc, cols, x, xOff + (b + k) * cols);
        }
    }

    /** Columns {@code [from, cols)} of the row at byte {@code base}, in order, with fused multiply-adds. */
    private static float tail(MemorySegment q, MemorySegment s, long base, long sBase, int from, int cols, float[] x,
                              int xRow) {
        float t = 0f;
        for (int c = from; c < cols; c++) {
            float w = Float.intBitsToFloat(Fp8E4M3.widenedBits(q.get(ValueLayout.JAVA_BYTE, base + c)))
                    * s.getAtIndex(SCALE, sBase + c / BLOCK);
            t = Math.fma(w, x[xRow + c], t);
        }
        return t;
    }

    /** Rows {@code [from, to)}, vector-covered columns, as scaled floats in reordered order into {@code wide}. */
    private static void widen(MemorySegment q, MemorySegment s, int cols, int from, int to, float[] wide) {
        int vc = vectorCols(cols);
        for (int r = from; r < to; r++) {
            long base = (long) r * cols;
            long sBase = scaleRow(r, cols);
            int o = (r - from) * vc;
            for (int c = 0; c < vc; c += STEP) {
                float sc = s.getAtIndex(SCALE, sBase + c / BLOCK);
                IntVector p = IntVector.fromMemorySegment(I, q, base + c, ByteOrder.LITTLE_ENDIAN);
                phase(p, 24).mul(sc).intoArray(wide, o + c);
                phase(p, 16).mul(sc).intoArray(wide, o + c + L);
                phase(p, 8).mul(sc).intoArray(wide, o + c + 2 * L);
                phase3(p).mul(sc).intoArray(wide, o + c + 3 * L);
            }
        }
    }

    /**
     * Widened rows {@code wide[w0..]} and {@code wide[w0+vc..]} (weight rows {@code r, r+1}) against the 4 batch
     * rows at {@code xs[x0]} (reordered, {@code vc} apart), plus each pair's tail from the bytes and plain
     * {@code x[xRow0..]}, written from {@code out[o0]}. The accumulators take steps of {@code 2L} as row1 takes
     * phases (0 and 2 into the first, 1 and 3 into the second), so every output has row1's bits.
     */
    private static void tile2x4(float[] wide, int w0, int vc, MemorySegment q, MemorySegment s, int cols, int r,
                                int rows, float[] xs, int x0, float[] x, int xRow0, float[] out, int o0,
                                float[] lanes) {
        int w1 = w0 + vc;
        int x1 = x0 + vc;
        int x2 = x1 + vc;
        int x3 = x2 + vc;
        FloatVector z = FloatVector.zero(F);
        FloatVector a000 = z, a001 = z, a010 = z, a011 = z, a020 = z, a021 = z, a030 = z, a031 = z;
        FloatVector a100 = z, a101 = z, a110 = z, a111 = z, a120 = z, a121 = z, a130 = z, a131 = z;
        for (int c = 0; c < vc; c += 2 * L) {
            FloatVector w00 = FloatVector.fromArray(F, wide, w0 + c);
            FloatVector w01 = FloatVector.fromArray(F, wide, w0 + c + L);
            FloatVector w10 = FloatVector.fromArray(F, wide, w1 + c);
            FloatVector w11 = FloatVector.fromArray(F, wide, w1 + c + L);
            FloatVector xv;
            xv = FloatVector.fromArray(F, xs, x0 + c);
            a000 = w00.fma(xv, a000);
            a100 = w10.fma(xv, a100);
            xv = FloatVector.fromArray(F, xs, x0 + c + L);
            a001 = w01.fma(xv, a001);
            a101 = w11.fma(xv, a101);
            xv = FloatVector.fromArray(F, xs, x1 + c);
            a010 = w00.fma(xv, a010);
            a110 = w10.fma(xv, a110);
            xv = FloatVector.fromArray(F, xs, x1 + c + L);
            a011 = w01.fma(xv, a011);
            a111 = w11.fma(xv, a111);
            xv = FloatVector.fromArray(F, xs, x2 + c);
            a020 = w00.fma(xv, a020);
            a120 = w10.fma(xv, a120);
            xv = FloatVector.fromArray(F, xs, x2 + c + L);
            a021 = w01.fma(xv, a021);
            a121 = w11.fma(xv, a121);
            xv = FloatVector.fromArray(F, xs, x3 + c);
            a030 = w00.fma(xv, a030);
            a130 = w10.fma(xv, a130);
            xv = FloatVector.fromArray(F, xs, x3 + c + L);
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
        float t00 = lanes[0], t01 = lanes[1], t02 = lanes[2], t03 = lanes[3];
        float t10 = lanes[4], t11 = lanes[5], t12 = lanes[6], t13 = lanes[7];
        if (vc < cols) {
            long base0 = (long) r * cols;
            long base1 = base0 + cols;
            long s0 = scaleRow(r, cols);
            long s1 = scaleRow(r + 1, cols);
            t00 += tail(q, s, base0, s0, vc, cols, x, xRow0);
            t01 += tail(q, s, base0, s0, vc, cols, x, xRow0 + cols);
            t02 += tail(q, s, base0, s0, vc, cols, x, xRow0 + 2 * cols);
            t03 += tail(q, s, base0, s0, vc, cols, x, xRow0 + 3 * cols);
            t10 += tail(q, s, base1, s1, vc, cols, x, xRow0);
            t11 += tail(q, s, base1, s1, vc, cols, x, xRow0 + cols);
            t12 += tail(q, s, base1, s1, vc, cols, x, xRow0 + 2 * cols);
            t13 += tail(q, s, base1, s1, vc, cols, x, xRow0 + 3 * cols);
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

    /** The scalar form, for a vector wider than a scale block ({@link #supports} false): column order, fma. */
    static void rowsScalar(Matrix w, int from, int to, float[] x, int xOff, float[] out, int outOff, int batch) {
        int rows = w.rows();
        int cols = w.cols();
        for (int b = 0; b < batch; b++) {
            for (int r = from; r < to; r++) {
                out[outOff + b * rows + r] = tail(w.data(), w.scales(), (long) r * cols, scaleRow(r, cols), 0, cols,
                        x, xOff + b * cols);
            }
        }
    }
}
