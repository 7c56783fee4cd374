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
 * <p><b>Determinism.</b> Every (row, batch row) pair is accumulated the same way whatever the batch tile, the
 * row block or the thread: four vector accumulators over steps of {@code 4L} elements (even/odd of two int
 * loads), one more {@code 2L} step into the first pair if it fits, then {@code ((e0+e1)+(o0+o1))} reduced as a
 * fixed tree, plus the scalar tail (the last {@code < 2L} elements) summed in order with fused multiply-adds.
 *
 * <p><b>Batch.</b> Rows are processed in blocks of {@link #ROW_BLOCK}; for each block every tile of 4 batch
 * rows runs over the block's rows, so the weight rows come from DRAM once and are re-read from cache for the
 * other tiles, and the activation tile stays hot across the block.
 */
final class Bf16Matmul {
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
    private static final ValueLayout.OfShort BF16 =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int ROW_BLOCK = 8;
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
        for (int blockStart = from; blockStart < to; blockStart += ROW_BLOCK) {
            int blockEnd = Math.min(to, blockStart + ROW_BLOCK);
            int b = 0;
            for (; b + 4 <= batch; b += 4) {
                for (int r = blockStart; r < blockEnd; r++) {
                    row4(w, cols, r, rows, x, xOff, even, odd, h, b, out, outOff, lanes);
                }
            }
            for (; b < batch; b++) {
                for (int r = blockStart; r < blockEnd; r++) {
                    out[outOff + b * rows + r] =
                            row1(w, cols, r, x, xOff + b * cols, even, odd, b * h, lanes);
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
        int step = 4 * L;
        int main = cols / step * step;
        FloatVector e0 = FloatVector.zero(F);
        FloatVector o0 = e0;
        FloatVector e1 = e0;
        FloatVector o1 = e0;
        // Loop on the pair index j (c = 2j) so that array indices are linear in the induction variable and the
        // JIT can hoist their range checks.
        int mainPairs = main / 2;
        int j = 0;
        for (; j < mainPairs; j += 2 * L) {
            long off = base + 4L * j;
            IntVector p0 = load(w, off);
            IntVector p1 = load(w, off + 4L * L);
            e0 = evens(p0).fma(FloatVector.fromArray(F, even, h0 + j), e0);
            o0 = odds(p0).fma(FloatVector.fromArray(F, odd, h0 + j), o0);
            e1 = evens(p1).fma(FloatVector.fromArray(F, even, h0 + j + L), e1);
            o1 = odds(p1).fma(FloatVector.fromArray(F, odd, h0 + j + L), o1);
        }
        int c = 2 * j;
        if (c + 2 * L <= cols) {
            IntVector p0 = load(w, base + 2L * c);
            e0 = evens(p0).fma(FloatVector.fromArray(F, even, h0 + j), e0);
            o0 = odds(p0).fma(FloatVector.fromArray(F, odd, h0 + j), o0);
            c += 2 * L;
        }
        e0.add(e1).add(o0.add(o1)).intoArray(lanes, 0);
        float sum = VectorMath.reduce(lanes);
        return sum + tail(w, base, c, cols, x, xRow);
    }

    /** One weight row against batch rows {@code b .. b+3}: the row is loaded once for the four. */
    private static void row4(MemorySegment w, int cols, int r, int rows, float[] x, int xOff, float[] even,
                             float[] odd, int h, int b, float[] out, int outOff, float[] lanes) {
        long base = (long) r * cols * 2;
        int step = 4 * L;
        int main = cols / step * step;
        int h0 = b * h;
        int h1 = h0 + h;
        int h2 = h1 + h;
        int h3 = h2 + h;
        FloatVector z = FloatVector.zero(F);
        FloatVector e00 = z, o00 = z, e01 = z, o01 = z;
        FloatVector e10 = z, o10 = z, e11 = z, o11 = z;
        FloatVector e20 = z, o20 = z, e21 = z, o21 = z;
        FloatVector e30 = z, o30 = z, e31 = z, o31 = z;
        int mainPairs = main / 2;
        int j = 0;
        for (; j < mainPairs; j += 2 * L) {
            long off = base + 4L * j;
            IntVector p0 = load(w, off);
            IntVector p1 = load(w, off + 4L * L);
            FloatVector we0 = evens(p0);
            FloatVector wo0 = odds(p0);
            FloatVector we1 = evens(p1);
            FloatVector wo1 = odds(p1);
            e00 = we0.fma(FloatVector.fromArray(F, even, h0 + j), e00);
            o00 = wo0.fma(FloatVector.fromArray(F, odd, h0 + j), o00);
            e01 = we1.fma(FloatVector.fromArray(F, even, h0 + j + L), e01);
            o01 = wo1.fma(FloatVector.fromArray(F, odd, h0 + j + L), o01);
            e10 = we0.fma(FloatVector.fromArray(F, even, h1 + j), e10);
            o10 = wo0.fma(FloatVector.fromArray(F, odd, h1 + j), o10);
            e11 = we1.fma(FloatVector.fromArray(F, even, h1 + j + L), e11);
            o11 = wo1.fma(FloatVector.fromArray(F, odd, h1 + j + L), o11);
            e20 = we0.fma(FloatVector.fromArray(F, even, h2 + j), e20);
            o20 = wo0.fma(FloatVector.fromArray(F, odd, h2 + j), o20);
            e21 = we1.fma(FloatVector.fromArray(F, even, h2 + j + L), e21);
            o21 = wo1.fma(FloatVector.fromArray(F, odd, h2 + j + L), o21);
            e30 = we0.fma(FloatVector.fromArray(F, even, h3 + j), e30);
            o30 = wo0.fma(FloatVector.fromArray(F, odd, h3 + j), o30);
            e31 = we1.fma(FloatVector.fromArray(F, even, h3 + j + L), e31);
            o31 = wo1.fma(FloatVector.fromArray(F, odd, h3 + j + L), o31);
        }
        int c = 2 * j;
        if (c + 2 * L <= cols) {
            IntVector p0 = load(w, base + 2L * c);
            FloatVector we0 = evens(p0);
            FloatVector wo0 = odds(p0);
            e00 = we0.fma(FloatVector.fromArray(F, even, h0 + j), e00);
            o00 = wo0.fma(FloatVector.fromArray(F, odd, h0 + j), o00);
            e10 = we0.fma(FloatVector.fromArray(F, even, h1 + j), e10);
            o10 = wo0.fma(FloatVector.fromArray(F, odd, h1 + j), o10);
            e20 = we0.fma(FloatVector.fromArray(F, even, h2 + j), e20);
            o20 = wo0.fma(FloatVector.fromArray(F, odd, h2 + j), o20);
            e30 = we0.fma(FloatVector.fromArray(F, even, h3 + j), e30);
            o30 = wo0.fma(FloatVector.fromArray(F, odd, h3 + j), o30);
            c += 2 * L;
        }
        int x0 = xOff + b * cols;
        e00.add(e01).add(o00.add(o01)).intoArray(lanes, 0);
        e10.add(e11).add(o10.add(o11)).intoArray(lanes, 1 * L);
        e20.add(e21).add(o20.add(o21)).intoArray(lanes, 2 * L);
        e30.add(e31).add(o30.add(o31)).intoArray(lanes, 3 * L);
        out[outOff + b * rows + r] = VectorMath.reduce(lanes, 0)
                + tail(w, base, c, cols, x, x0);
        out[outOff + (b + 1) * rows + r] = VectorMath.reduce(lanes, 1 * L)
                + tail(w, base, c, cols, x, x0 + cols);
        out[outOff + (b + 2) * rows + r] = VectorMath.reduce(lanes, 2 * L)
                + tail(w, base, c, cols, x, x0 + 2 * cols);
        out[outOff + (b + 3) * rows + r] = VectorMath.reduce(lanes, 3 * L)
                + tail(w, base, c, cols, x, x0 + 3 * cols);
    }
}
