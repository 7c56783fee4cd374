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
 * more {@code L} step into the first if it fits, {@code (a0+a1)} reduced as a fixed tree, then the scalar tail
 * (fewer than {@code L} elements) summed in order with fused multiply-adds, whatever the tiling or thread.
 * Batch rows are tiled by 4 within blocks of {@link #ROW_BLOCK} weight rows, as in {@link Bf16Matmul}.
 */
final class F32Matmul {
    private static final ValueLayout.OfFloat F32 =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int ROW_BLOCK = 8;

    private F32Matmul() {
    }

    /** Computes weight rows {@code [from, to)} for all batch rows. */
    static void rows(MemorySegment w, int rows, int cols, int from, int to, float[] x, int xOff,
                     float[] out, int outOff, int batch, float[] lanes) {
        for (int blockStart = from; blockStart < to; blockStart += ROW_BLOCK) {
            int blockEnd = Math.min(to, blockStart + ROW_BLOCK);
            int b = 0;
            for (; b + 4 <= batch; b += 4) {
                for (int r = blockStart; r < blockEnd; r++) {
                    row4(w, cols, r, rows, x, xOff + b * cols, out, outOff + b * rows, lanes);
                }
            }
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

    /** One weight row against the 4 consecutive batch rows at {@code x[x0]}, written from {@code out[o0]}. */
    private static void row4(MemorySegment w, int cols, int r, int rows, float[] x, int x0, float[] out, int o0,
                             float[] lanes) {
        long base = (long) r * cols * 4;
        int step = 2 * L;
        int main = cols / step * step;
        int x1 = x0 + cols;
        int x2 = x1 + cols;
        int x3 = x2 + cols;
        FloatVector z = FloatVector.zero(F);
        FloatVector a00 = z, a01 = z, a10 = z, a11 = z, a20 = z, a21 = z, a30 = z, a31 = z;
        int c = 0;
        for (; c < main; c += step) {
            long off = base + 4L * c;
            FloatVector w0 = load(w, off);
            FloatVector w1 = load(w, off + 4L * L);
            a00 = w0.fma(FloatVector.fromArray(F, x, x0 + c), a00);
            a01 = w1.fma(FloatVector.fromArray(F, x, x0 + c + L), a01);
            a10 = w0.fma(FloatVector.fromArray(F, x, x1 + c), a10);
            a11 = w1.fma(FloatVector.fromArray(F, x, x1 + c + L), a11);
            a20 = w0.fma(FloatVector.fromArray(F, x, x2 + c), a20);
            a21 = w1.fma(FloatVector.fromArray(F, x, x2 + c + L), a21);
            a30 = w0.fma(FloatVector.fromArray(F, x, x3 + c), a30);
            a31 = w1.fma(FloatVector.fromArray(F, x, x3 + c + L), a31);
        }
        if (c + L <= cols) {
            FloatVector w0 = load(w, base + 4L * c);
            a00 = w0.fma(FloatVector.fromArray(F, x, x0 + c), a00);
            a10 = w0.fma(FloatVector.fromArray(F, x, x1 + c), a10);
            a20 = w0.fma(FloatVector.fromArray(F, x, x2 + c), a20);
            a30 = w0.fma(FloatVector.fromArray(F, x, x3 + c), a30);
            c += L;
        }
        a00.add(a01).intoArray(lanes, 0);
        a10.add(a11).intoArray(lanes, 1 * L);
        a20.add(a21).intoArray(lanes, 2 * L);
        a30.add(a31).intoArray(lanes, 3 * L);
        out[o0 + r] = VectorMath.reduce(lanes, 0) + tail(w, base, c, cols, x, x0);
        out[o0 + rows + r] = VectorMath.reduce(lanes, 1 * L) + tail(w, base, c, cols, x, x1);
        out[o0 + 2 * rows + r] = VectorMath.reduce(lanes, 2 * L) + tail(w, base, c, cols, x, x2);
        out[o0 + 3 * rows + r] = VectorMath.reduce(lanes, 3 * L) + tail(w, base, c, cols, x, x3);
    }
}
