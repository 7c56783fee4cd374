package io.expertmesh.core.kernel;

import static io.expertmesh.core.kernel.VectorMath.F;
import static io.expertmesh.core.kernel.VectorMath.L;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;

/**
 * Rows of an F32 matmul on the calling thread: {@code out[b][r] = Σ_c w[r][c] · x[b][c]}.
 *
 * <p><b>Determinism.</b> Every (row, batch row) pair uses two vector accumulators over steps of {@code 2L}, one
 * more {@code L} step into the first if it fits, {@code (a0+a1)} reduced as a fixed tree ({@link VectorMath#reduce}, or {@link VectorMath#reduce8} for the
 * tile's 8 accumulators at once, bit-identical), then the scalar tail
 * (fewer than {@code L} elements) summed in order with fused multiply-adds, whatever the tiling or thread.
 * The register tile is 2 weight rows × 4 batch rows (one row at a time for leftover batch rows), within blocks of
 * {@link #ROW_BLOCK} weight rows, as in {@link Bf16Matmul}.
 */
final class F32Matmul {
    private static final ValueLayout.OfFloat F32 =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int ROW_BLOCK = 4;

    private F32Matmul() {
    }

    /** Computes weight rows {@code [from, to)} for all batch rows. */
    static void rows(MemorySegment w, int rows, int cols, int from, int to, float[] x, int xOff,
                     float[] out, int outOff, int batch, float[] lanes) {
        for (int blockStart = from; blockStart < to; blockStart += ROW_BLOCK) {
            int blockEnd = Math.min(to, blockStart + ROW_BLOCK);
            int b = 0;
            for (; b + 4 <= batch; b += 4) {
                int r = blockStart;
                for (; r + 2 <= blockEnd; r += 2) {
                    tile2x4(w, cols, r, rows, x, xOff + b * cols, out, outOff + b * rows, lanes);
                }
                for (; r < blockEnd; r++) {
                    for (int k = b; k < b + 4; k++) {
                        out[outOff + k * rows + r] = row1(w, cols, r, x, xOff + k * cols, lanes);
                    }
                }
            }
            // Leftover batch rows (all of them at batch 1, i.e. decode) go row by row: one sequential stream
            // through the weights, which measured 1.5-2x faster out of cache than interleaving two rows.
            for (; b < batch; b++) {
                for (int r = blockStart; r < blockEnd; r++) {
                    out[outOff + b * rows + r] = row1(w, cols, r, x, xOff + b * cols, lanes);
                }
            }
        }
    }

    private static FloatVector load(MemorySegment w, long byteOffset) {
        return FloatVector.fromMemorySegment(F, w, byteOffset, ByteOrder.LITTLE_ENDIAN);
    }

    private static float tail(MemorySegment w, long rowBase, int from, int cols, float[] x, int xRow) {
        float t = 0f;
        for (int c = from; c < cols; c++) {
            t = Math.fma(w.get(F32, rowBase + 4L * c), x[xRow + c], t);
        }
        return t;
    }

    /** One weight row against the batch row starting at {@code x[xRow]}. */
    static float row1(MemorySegment w, int cols, int r, float[] x, int xRow, float[] lanes) {
        long base = (long) r * cols * 4;
        int step = 2 * L;
        int main = cols / step * step;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        int c = 0;
        for (; c < main; c += step) {
            long off = base + 4L * c;
            a0 = load(w, off).fma(FloatVector.fromArray(F, x, xRow + c), a0);
            a1 = load(w, off + 4L * L).fma(FloatVector.fromArray(F, x, xRow + c + L), a1);
        }
        if (c + L <= cols) {
            a0 = load(w, base + 4L * c).fma(FloatVector.fromArray(F, x, xRow + c), a0);
            c += L;
        }
        a0.add(a1).intoArray(lanes, 0);
        return VectorMath.reduce(lanes) + tail(w, base, c, cols, x, xRow);
    }


    /**
     * Weight rows {@code r, r+1} against the 4 consecutive batch rows at {@code x[x0]}, written from
     * {@code out[o0]}: 16 accumulators, 12 loads per 16 FMAs.
     */
    private static void tile2x4(MemorySegment w, int cols, int r, int rows, float[] x, int x0, float[] out, int o0,
                                float[] lanes) {
        long base0 = (long) r * cols * 4;
        long base1 = base0 + 4L * cols;
        int step = 2 * L;
        int main = cols / step * step;
        int x1 = x0 + cols;
        int x2 = x1 + cols;
        int x3 = x2 + cols;
        FloatVector z = FloatVector.zero(F);
        FloatVector a000 = z, a001 = z, a010 = z, a011 = z, a020 = z, a021 = z, a030 = z, a031 = z;
        FloatVector a100 = z, a101 = z, a110 = z, a111 = z, a120 = z, a121 = z, a130 = z, a131 = z;
        int c = 0;
        for (; c < main; c += step) {
            FloatVector w00 = load(w, base0 + 4L * c);
            FloatVector w01 = load(w, base0 + 4L * c + 4L * L);
            FloatVector w10 = load(w, base1 + 4L * c);
            FloatVector w11 = load(w, base1 + 4L * c + 4L * L);
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
        if (c + L <= cols) {
            FloatVector w00 = load(w, base0 + 4L * c);
            FloatVector w10 = load(w, base1 + 4L * c);
            FloatVector xv;
            xv = FloatVector.fromArray(F, x, x0 + c);
            a000 = w00.fma(xv, a000);
            a100 = w10.fma(xv, a100);
            xv = FloatVector.fromArray(F, x, x1 + c);
            a010 = w00.fma(xv, a010);
            a110 = w10.fma(xv, a110);
            xv = FloatVector.fromArray(F, x, x2 + c);
            a020 = w00.fma(xv, a020);
            a120 = w10.fma(xv, a120);
            xv = FloatVector.fromArray(F, x, x3 + c);
            a030 = w00.fma(xv, a030);
            a130 = w10.fma(xv, a130);
            c += L;
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
        out[o0 + r] = lanes[0] + tail(w, base0, c, cols, x, x0);
        out[o0 + rows + r] = lanes[1] + tail(w, base0, c, cols, x, x1);
        out[o0 + 2 * rows + r] = lanes[2] + tail(w, base0, c, cols, x, x2);
        out[o0 + 3 * rows + r] = lanes[3] + tail(w, base0, c, cols, x, x3);
        out[o0 + r + 1] = lanes[4] + tail(w, base1, c, cols, x, x0);
        out[o0 + rows + r + 1] = lanes[5] + tail(w, base1, c, cols, x, x1);
        out[o0 + 2 * rows + r + 1] = lanes[6] + tail(w, base1, c, cols, x, x2);
        out[o0 + 3 * rows + r + 1] = lanes[7] + tail(w, base1, c, cols, x, x3);
    }
}
