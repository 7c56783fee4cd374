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
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Rows of an int4 matmul ({@link io.expertmesh.core.tensor.DType#I4}) on the calling thread:
 * {@code out[b][r] = Σ_c (q[r][c]·scale[r][c/block]) · x[b][c]}, {@code q} in [-8, 7], F16 scales.
 *
 * <p><b>Inner loop.</b> A row's 128-column groups are stored so that nibble {@code n} of int lane {@code j} is
 * column {@code 16n + j} ({@link Int4Quantizer}): one {@code 4L}-byte int vector load gives eight {@code L}-float
 * vectors of consecutive columns. Each nibble becomes its weight by a table lookup, not arithmetic: per 32-column
 * block the sixteen possible weights {@code level·scale} are one vector ({@code LEVELS × scale}), and
 * {@code (p >>> 4n).selectFrom(table)} (one {@code vpermi2d}; the lookup takes the index modulo the table, so the
 * higher nibbles need no mask) gives sixteen weights at once, then one fused multiply-add with the activations.
 * That is a shift, a permute and an FMA per 16 weights where widening by arithmetic took two shifts, a
 * conversion, a multiply and the FMA. The weight is the float {@code q·scale}, exact (a 4-bit integer times an
 * 11-bit F16 significand) either way, so the bits are those of the arithmetic form, of
 * {@link io.expertmesh.core.tensor.Matrix#get} and of the scalar reference's weights.
 *
 * <p><b>Four rows at a time.</b> At batch 1 one activation vector serves the same columns of four rows (a quad,
 * stored interleaved: {@link Int4Quantizer}), so the loop loads one activation vector per 64 weights instead of
 * per 16 and reduces the four rows' sums with one permute network ({@link VectorMath#reduce8}). Each row keeps its
 * own two accumulators in {@link #row1}'s order, so a row's bits do not depend on whether it ran in a quad. In a
 * probe loop on one AVX-512 core, 1024 columns, one row at a time vs quads: 31 vs 42 G weights/s from L2, 28 vs
 * 32 from DRAM; this class, 704×1024 hot, 17 G weights/s before the lookups, quads and vector scales, 30 after.
 *
 * <p><b>Determinism.</b> As {@link Int8Matmul}: two vector accumulators per (row, batch row), the first for the
 * even 16-column runs of every group and the second for the odd ones, {@code (a0+a1)} reduced as a fixed tree,
 * plus the sub-blocks of a last partial group reduced on their own and added, whatever the tiling, thread or
 * batch. With whole 4-row batch tiles and 16 lanes, each row block is widened to floats {@code q·scale} once and
 * {@link Int8Matmul}'s F32 tile runs on it, over the whole groups and then the partial group, in the same column
 * order into the same accumulators, so the bits are {@link #row1}'s. Vector code is inline, not in helpers (see
 * {@link Int8Matmul}).
 *
 * <p><b>Tiling.</b> Rows widened {@link RowBlocks} at a time (rounded to whole quads) when there are whole 4-row
 * batch tiles, every tile running over the block; otherwise a quad at a time. Batch rows outside a 4-tile (all of
 * them at batch 1) run quad by quad, two of them together ({@link #quad2}: each nibble looked up once for both), rows
 * outside a whole quad (a range's ends, the last {@code rows % 4}) one by one. Without the widened tile (8 lanes)
 * every batch row runs quad by quad, re-reading the quad from L1.
 */
final class Int4Matmul {
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    /** Bytes of a tail sub-block that widen to one int vector: {@code L} of them. */
    private static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(L * 8));
    /** {@code L} F16 scales, widened to one int vector. */
    private static final VectorSpecies<Short> H = VectorSpecies.of(short.class, VectorShape.forBitSize(L * 16));
    private static final ValueLayout.OfShort F16 =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int GROUP = Int4Quantizer.GROUP;
    private static final int SUB = Int4Quantizer.SUB_BLOCK;
    private static final int QUAD = Int4Quantizer.QUAD;
    /** Int loads per 128-column group: 1 with 16 lanes, 2 with 8. */
    private static final int LOADS = 16 / L;
    /**
     * The signed level of each nibble value, as the two tables of {@code selectFrom(lo, hi)}, which takes indices
     * modulo {@code 2L}: with 16 lanes both halves are the whole table (a nibble's index, plus 16 when the next
     * bit is set, lands on the same level); with 8, levels 0..7 and 8..15.
     */
    private static final FloatVector LEVELS_LO = levels(0);
    private static final FloatVector LEVELS_HI = L == 16 ? LEVELS_LO : levels(L);

    private Int4Matmul() {
    }

    private static FloatVector levels(int from) {
        float[] l = new float[L];
        for (int j = 0; j < L; j++) {
            int n = (from + j) % 16;
            l[j] = n < 8 ? n : n - 16;
        }
        return FloatVector.fromArray(F, l, 0);
    }

    /** Whether the vector path can run here: lanes that divide a 16-column run, and a table of 16 in two. */
    static boolean supports(int block) {
        return L >= 8 && L <= 16 && 16 % L == 0 && block % SUB == 0;
    }

    /**
     * Scales {@code [from, from + n)} of {@code s} (F16) as floats into {@code dst[off..]}, with integer operations
     * on whole vectors: the F16 sign moves to bit 31 and exponent and significand shift up 13 bits, which reads as
     * the value times 2^-112 (F16 subnormals as float subnormals), and one multiply by 2^112 gives it back, exactly.
     * The same value as {@link Float#float16ToFloat} for every finite scale (the quantizer makes no other), at a
     * fraction of the cost of one bounds-checked segment read and one conversion per scale in the inner loop (that
     * made decode 2-5x slower).
     */
    private static void scales(MemorySegment s, long from, int n, float[] dst, int off) {
        int i = 0;
        for (; i + L <= n; i += L) {
            IntVector v = (IntVector) ShortVector.fromMemorySegment(H, s, (from + i) * Short.BYTES,
                    ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I, 0);
            IntVector bits = v.and(0x80000000).or(v.and(0x7FFF).lanewise(VectorOperators.LSHL, 13));
            ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f).intoArray(dst, off + i);
        }
        for (; i < n; i++) {
            dst[off + i] = Float.float16ToFloat(s.getAtIndex(F16, from + i));
        }
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
        int blockRows = widenOnce ? Math.max(QUAD, RowBlocks.rows(cols, 4) & ~(QUAD - 1)) : QUAD;
        KernelScratch scratch = KernelScratch.get();
        float[] wide = widenOnce ? scratch.dequantized(blockRows * cols) : null;
        float[] sc = scratch.scales(QUAD * (cols / block));
        int quads = Int4Quantizer.quadRows(rows);
        int blockStart = from;
        while (blockStart < to) {
            // Blocks end on a quad boundary, so a block's quads are whole.
            int blockEnd = Math.min(to, (blockStart + blockRows) & ~(QUAD - 1));
            int b = 0;
            if (widenOnce) {
                widen(q, s, rows, cols, block, blockStart, blockEnd, wide, sc);
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
                            out[outOff + k * rows + r] = row1(q, s, rows, cols, block, r, x, xOff + k * cols, lanes,
                                    sc);
                        }
                    }
                }
            }
            for (; b < batch; b++) {
                // Two batch rows left (an MoE expert at batched decode): a quad looks its weights up once for both.
                boolean pair = batch - b == 2;
                int r = blockStart;
                while (r < blockEnd) {
                    if ((r & (QUAD - 1)) == 0 && r + QUAD <= blockEnd && r + QUAD <= quads) {
                        if (pair) {
                            quad2(q, s, rows, cols, block, r, x, xOff + b * cols, out, outOff + b * rows, lanes, sc);
                        } else {
                            quad(q, s, rows, cols, block, r, x, xOff + b * cols, out, outOff + b * rows, lanes, sc);
                        }
                        r += QUAD;
                    } else if (pair) {
                        for (int k = b; k < b + 2; k++) {
                            out[outOff + k * rows + r] = row1(q, s, rows, cols, block, r, x, xOff + k * cols, lanes,
                                    sc);
                        }
                        r++;
                    } else {
                        out[outOff + b * rows + r] = row1(q, s, rows, cols, block, r, x, xOff + b * cols, lanes,
                                sc);
                        r++;
                    }
                }
                if (pair) {
                    b++;
                }
            }
            blockStart = blockEnd;
        }
    }

    /** Rows {@code [from, to)} (16 lanes) as floats {@code q·scale} into {@code wide}, row-major. */
    private static void widen(MemorySegment q, MemorySegment s, int rows, int cols, int block, int from, int to,
                              float[] wide, float[] sc) {
        int full = cols / GROUP * GROUP;
        int perRow = cols / block;
        for (int r = from; r < to; r++) {
            scales(s, (long) r * perRow, perRow, sc, 0);
            int o = (r - from) * cols;
            long part = Int4Quantizer.partialOffset(rows, cols, r);
            for (int c = full; c < cols; c += SUB) {
                IntVector t = (IntVector) LEVELS_LO.mul(sc[c / block]).reinterpretAsInts();
                IntVector v = (IntVector) ByteVector.fromMemorySegment(B, q, part + (c - full) / 2,
                        ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0);
                ((FloatVector) v.selectFrom(t, t).reinterpretAsFloats()).intoArray(wide, o + c);
                ((FloatVector) v.lanewise(VectorOperators.LSHR, 4).selectFrom(t, t).reinterpretAsFloats())
                        .intoArray(wide, o + c + 16);
            }
            long off = Int4Quantizer.groupOffset(rows, cols, r, 0);
            int stride = Int4Quantizer.groupStride(rows, r);
            for (int g = 0; g < full; g += GROUP, off += stride) {
                IntVector p = IntVector.fromMemorySegment(I, q, off, ByteOrder.LITTLE_ENDIAN);
                for (int k = 0; k < 4; k++) {
                    IntVector t = (IntVector) LEVELS_LO.mul(sc[(g + 32 * k) / block]).reinterpretAsInts();
                    int c = o + g + 32 * k;
                    ((FloatVector) p.lanewise(VectorOperators.LSHR, 8 * k).selectFrom(t, t).reinterpretAsFloats())
                            .intoArray(wide, c);
                    ((FloatVector) p.lanewise(VectorOperators.LSHR, 8 * k + 4).selectFrom(t, t)
                            .reinterpretAsFloats()).intoArray(wide, c + 16);
                }
            }
        }
    }

    /** One weight row against the batch row starting at {@code x[xRow]}. */
    static float row1(MemorySegment q, MemorySegment s, int rows, int cols, int block, int r, float[] x, int xRow,
                      float[] lanes, float[] sc) {
        scales(s, (long) r * (cols / block), cols / block, sc, 0);
        // The whole groups and the partial group are reduced separately and added: the order the widened tile
        // in rows() and quad() reproduce.
        float sum = groups(q, rows, cols, block, r, x, xRow, lanes, sc);
        return cols % GROUP != 0 ? sum + partialGroup(q, rows, cols, block, r, x, xRow, lanes, sc, 0) : sum;
    }

    /** The whole 128-column groups of row {@code r} (its scales in {@code sc}) against one batch row, reduced. */
    private static float groups(MemorySegment q, int rows, int cols, int block, int r, float[] x, int xRow,
                                float[] lanes, float[] sc) {
        long off = Int4Quantizer.groupOffset(rows, cols, r, 0);
        int stride = Int4Quantizer.groupStride(rows, r);
        int full = cols / GROUP * GROUP;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        for (int g = 0; g < full; g += GROUP, off += stride) {
            for (int h = 0; h < LOADS; h++) {
                IntVector p = IntVector.fromMemorySegment(I, q, off + 4L * L * h, ByteOrder.LITTLE_ENDIAN);
                // Columns [g + 32k, g + 32k + 32) lie in one block: blocks are multiples of 32.
                for (int k = 0; k < 4; k++) {
                    float scale = sc[(g + 32 * k) / block];
                    IntVector lo = (IntVector) LEVELS_LO.mul(scale).reinterpretAsInts();
                    IntVector hi = (IntVector) LEVELS_HI.mul(scale).reinterpretAsInts();
                    int c = xRow + g + L * h + 32 * k;
                    a0 = ((FloatVector) p.lanewise(VectorOperators.LSHR, 8 * k).selectFrom(lo, hi)
                            .reinterpretAsFloats()).fma(FloatVector.fromArray(F, x, c), a0);
                    a1 = ((FloatVector) p.lanewise(VectorOperators.LSHR, 8 * k + 4).selectFrom(lo, hi)
                            .reinterpretAsFloats()).fma(FloatVector.fromArray(F, x, c + 16), a1);
                }
            }
        }
        a0.add(a1).intoArray(lanes, 0);
        return VectorMath.reduce(lanes);
    }

    /**
     * Rows {@code r..r+3} (a whole quad, {@code r} a multiple of 4) against one batch row: each row's whole groups
     * in {@link #groups}'s order and its partial group in {@link #partialGroup}'s ({@link #partialQuad}), the eight
     * sums reduced together, each row's two added.
     */
    private static void quad(MemorySegment q, MemorySegment s, int rows, int cols, int block, int r, float[] x,
                             int xRow, float[] out, int o, float[] lanes, float[] sc) {
        long off = Int4Quantizer.groupOffset(rows, cols, r, 0);
        int perRow = cols / block;
        // The four rows' scales are contiguous: one conversion.
        scales(s, (long) r * perRow, QUAD * perRow, sc, 0);
        int s1 = perRow;
        int s2 = 2 * perRow;
        int s3 = 3 * perRow;
        int full = cols / GROUP * GROUP;
        int rowBytes = GROUP / 2;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        FloatVector b0 = a0;
        FloatVector b1 = a0;
        FloatVector c0 = a0;
        FloatVector c1 = a0;
        FloatVector d0 = a0;
        FloatVector d1 = a0;
        for (int g = 0; g < full; g += GROUP, off += QUAD * rowBytes) {
            for (int h = 0; h < LOADS; h++) {
                long at = off + 4L * L * h;
                IntVector p0 = IntVector.fromMemorySegment(I, q, at, ByteOrder.LITTLE_ENDIAN);
                IntVector p1 = IntVector.fromMemorySegment(I, q, at + rowBytes, ByteOrder.LITTLE_ENDIAN);
                IntVector p2 = IntVector.fromMemorySegment(I, q, at + 2 * rowBytes, ByteOrder.LITTLE_ENDIAN);
                IntVector p3 = IntVector.fromMemorySegment(I, q, at + 3 * rowBytes, ByteOrder.LITTLE_ENDIAN);
                for (int k = 0; k < 4; k++) {
                    int j = (g + 32 * k) / block;
                    int c = xRow + g + L * h + 32 * k;
                    FloatVector x0 = FloatVector.fromArray(F, x, c);
                    FloatVector x1 = FloatVector.fromArray(F, x, c + 16);
                    int lowShift = 8 * k;
                    int highShift = 8 * k + 4;
                    float scale = sc[j];
                    IntVector lo = (IntVector) LEVELS_LO.mul(scale).reinterpretAsInts();
                    IntVector hi = (IntVector) LEVELS_HI.mul(scale).reinterpretAsInts();
                    a0 = ((FloatVector) p0.lanewise(VectorOperators.LSHR, lowShift).selectFrom(lo, hi)
                            .reinterpretAsFloats()).fma(x0, a0);
                    a1 = ((FloatVector) p0.lanewise(VectorOperators.LSHR, highShift).selectFrom(lo, hi)
                            .reinterpretAsFloats()).fma(x1, a1);
                    scale = sc[s1 + j];
                    lo = (IntVector) LEVELS_LO.mul(scale).reinterpretAsInts();
                    hi = (IntVector) LEVELS_HI.mul(scale).reinterpretAsInts();
                    b0 = ((FloatVector) p1.lanewise(VectorOperators.LSHR, lowShift).selectFrom(lo, hi)
                            .reinterpretAsFloats()).fma(x0, b0);
                    b1 = ((FloatVector) p1.lanewise(VectorOperators.LSHR, highShift).selectFrom(lo, hi)
                            .reinterpretAsFloats()).fma(x1, b1);
                    scale = sc[s2 + j];
                    lo = (IntVector) LEVELS_LO.mul(scale).reinterpretAsInts();
                    hi = (IntVector) LEVELS_HI.mul(scale).reinterpretAsInts();
                    c0 = ((FloatVector) p2.lanewise(VectorOperators.LSHR, lowShift).selectFrom(lo, hi)
                            .reinterpretAsFloats()).fma(x0, c0);
                    c1 = ((FloatVector) p2.lanewise(VectorOperators.LSHR, highShift).selectFrom(lo, hi)
                            .reinterpretAsFloats()).fma(x1, c1);
                    scale = sc[s3 + j];
                    lo = (IntVector) LEVELS_LO.mul(scale).reinterpretAsInts();
                    hi = (IntVector) LEVELS_HI.mul(scale).reinterpretAsInts();
                    d0 = ((FloatVector) p3.lanewise(VectorOperators.LSHR, lowShift).selectFrom(lo, hi)
                            .reinterpretAsFloats()).fma(x0, d0);
                    d1 = ((FloatVector) p3.lanewise(VectorOperators.LSHR, highShift).selectFrom(lo, hi)
                            .reinterpretAsFloats()).fma(x1, d1);
                }
            }
        }
        a0.add(a1).intoArray(lanes, 0);
        b0.add(b1).intoArray(lanes, L);
        c0.add(c1).intoArray(lanes, 2 * L);
        d0.add(d1).intoArray(lanes, 3 * L);
        if (full < cols) {
            // The partial groups' sums go to slots 4..7 and are reduced with the groups' in one network: the
            // same two fixed-order reductions, added, as row1.
            partialQuad(q, rows, cols, block, r, x, xRow, lanes, sc, 4);
        } else {
            FloatVector zero = FloatVector.zero(F);
            for (int k = 4; k < 8; k++) {
                zero.intoArray(lanes, k * L);
            }
        }
        VectorMath.reduce8(lanes, 0);
        float sum0 = lanes[0];
        float sum1 = lanes[1];
        float sum2 = lanes[2];
        float sum3 = lanes[3];
        if (full < cols) {
            sum0 += lanes[4];
            sum1 += lanes[5];
            sum2 += lanes[6];
            sum3 += lanes[7];
        }
        out[o + r] = sum0;
        out[o + r + 1] = sum1;
        out[o + r + 2] = sum2;
        out[o + r + 3] = sum3;
    }

    /**
     * {@link #quad} against two batch rows, {@code x[xRow..]} and {@code x[xRow + cols..]} (outputs at {@code out[o..]}
     * and {@code out[o + rows..]}): each weight vector is looked up once for both, each (row, batch row) keeping
     * {@link #groups}' accumulators, so the bits are quad's.
     */
    private static void quad2(MemorySegment q, MemorySegment s, int rows, int cols, int block, int r, float[] x,
                              int xRow, float[] out, int o, float[] lanes, float[] sc) {
        long off = Int4Quantizer.groupOffset(rows, cols, r, 0);
        int perRow = cols / block;
        scales(s, (long) r * perRow, QUAD * perRow, sc, 0);
        int s1 = perRow;
        int s2 = 2 * perRow;
        int s3 = 3 * perRow;
        int full = cols / GROUP * GROUP;
        int rowBytes = GROUP / 2;
        int yRow = xRow + cols;
        FloatVector z = FloatVector.zero(F);
        FloatVector a0 = z, a1 = z, b0 = z, b1 = z, c0 = z, c1 = z, d0 = z, d1 = z;
        FloatVector e0 = z, e1 = z, f0 = z, f1 = z, g0 = z, g1 = z, h0 = z, h1 = z;
        for (int g = 0; g < full; g += GROUP, off += QUAD * rowBytes) {
            for (int h = 0; h < LOADS; h++) {
                long at = off + 4L * L * h;
                IntVector p0 = IntVector.fromMemorySegment(I, q, at, ByteOrder.LITTLE_ENDIAN);
                IntVector p1 = IntVector.fromMemorySegment(I, q, at + rowBytes, ByteOrder.LITTLE_ENDIAN);
                IntVector p2 = IntVector.fromMemorySegment(I, q, at + 2 * rowBytes, ByteOrder.LITTLE_ENDIAN);
                IntVector p3 = IntVector.fromMemorySegment(I, q, at + 3 * rowBytes, ByteOrder.LITTLE_ENDIAN);
                for (int k = 0; k < 4; k++) {
                    int j = (g + 32 * k) / block;
                    int c = g + L * h + 32 * k;
                    FloatVector x0 = FloatVector.fromArray(F, x, xRow + c);
                    FloatVector x1 = FloatVector.fromArray(F, x, xRow + c + 16);
                    FloatVector y0 = FloatVector.fromArray(F, x, yRow + c);
                    FloatVector y1 = FloatVector.fromArray(F, x, yRow + c + 16);
                    int lowShift = 8 * k;
                    int highShift = 8 * k + 4;
                    float scale = sc[j];
                    IntVector lo = (IntVector) LEVELS_LO.mul(scale).reinterpretAsInts();
                    IntVector hi = (IntVector) LEVELS_HI.mul(scale).reinterpretAsInts();
                    FloatVector wl = (FloatVector) p0.lanewise(VectorOperators.LSHR, lowShift).selectFrom(lo, hi)
                            .reinterpretAsFloats();
                    FloatVector wh = (FloatVector) p0.lanewise(VectorOperators.LSHR, highShift).selectFrom(lo, hi)
                            .reinterpretAsFloats();
                    a0 = wl.fma(x0, a0);
                    a1 = wh.fma(x1, a1);
                    e0 = wl.fma(y0, e0);
                    e1 = wh.fma(y1, e1);
                    scale = sc[s1 + j];
                    lo = (IntVector) LEVELS_LO.mul(scale).reinterpretAsInts();
                    hi = (IntVector) LEVELS_HI.mul(scale).reinterpretAsInts();
                    wl = (FloatVector) p1.lanewise(VectorOperators.LSHR, lowShift).selectFrom(lo, hi)
                            .reinterpretAsFloats();
                    wh = (FloatVector) p1.lanewise(VectorOperators.LSHR, highShift).selectFrom(lo, hi)
                            .reinterpretAsFloats();
                    b0 = wl.fma(x0, b0);
                    b1 = wh.fma(x1, b1);
                    f0 = wl.fma(y0, f0);
                    f1 = wh.fma(y1, f1);
                    scale = sc[s2 + j];
                    lo = (IntVector) LEVELS_LO.mul(scale).reinterpretAsInts();
                    hi = (IntVector) LEVELS_HI.mul(scale).reinterpretAsInts();
                    wl = (FloatVector) p2.lanewise(VectorOperators.LSHR, lowShift).selectFrom(lo, hi)
                            .reinterpretAsFloats();
                    wh = (FloatVector) p2.lanewise(VectorOperators.LSHR, highShift).selectFrom(lo, hi)
                            .reinterpretAsFloats();
                    c0 = wl.fma(x0, c0);
                    c1 = wh.fma(x1, c1);
                    g0 = wl.fma(y0, g0);
                    g1 = wh.fma(y1, g1);
                    scale = sc[s3 + j];
                    lo = (IntVector) LEVELS_LO.mul(scale).reinterpretAsInts();
                    hi = (IntVector) LEVELS_HI.mul(scale).reinterpretAsInts();
                    wl = (FloatVector) p3.lanewise(VectorOperators.LSHR, lowShift).selectFrom(lo, hi)
                            .reinterpretAsFloats();
                    wh = (FloatVector) p3.lanewise(VectorOperators.LSHR, highShift).selectFrom(lo, hi)
                            .reinterpretAsFloats();
                    d0 = wl.fma(x0, d0);
                    d1 = wh.fma(x1, d1);
                    h0 = wl.fma(y0, h0);
                    h1 = wh.fma(y1, h1);
                }
            }
        }
        // Both batch rows' whole-group sums in one network, then both partial groups' in another; each output is
        // its two reductions added, as in quad.
        a0.add(a1).intoArray(lanes, 0);
        b0.add(b1).intoArray(lanes, L);
        c0.add(c1).intoArray(lanes, 2 * L);
        d0.add(d1).intoArray(lanes, 3 * L);
        e0.add(e1).intoArray(lanes, 4 * L);
        f0.add(f1).intoArray(lanes, 5 * L);
        g0.add(g1).intoArray(lanes, 6 * L);
        h0.add(h1).intoArray(lanes, 7 * L);
        VectorMath.reduce8(lanes, 0);
        for (int i = 0; i < QUAD; i++) {
            out[o + r + i] = lanes[i];
            out[o + rows + r + i] = lanes[QUAD + i];
        }
        if (full < cols) {
            partialQuad(q, rows, cols, block, r, x, xRow, lanes, sc, 0);
            partialQuad(q, rows, cols, block, r, x, yRow, lanes, sc, 4);
            VectorMath.reduce8(lanes, 0);
            for (int i = 0; i < QUAD; i++) {
                out[o + r + i] += lanes[i];
                out[o + rows + r + i] += lanes[QUAD + i];
            }
        }
    }

    /**
     * The last partial groups of quad rows {@code r..r+3} against one batch row, each in {@link #partialGroup}'s
     * order, their unreduced sums stored at {@code lanes[(slot + i)·L..]}; the activations loaded once for all four.
     */
    private static void partialQuad(MemorySegment q, int rows, int cols, int block, int r, float[] x, int xRow,
                                    float[] lanes, float[] sc, int slot) {
        int full = cols / GROUP * GROUP;
        int perRow = cols / block;
        int partBytes = (cols - full) / 2;
        long part = Int4Quantizer.partialOffset(rows, cols, r);
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        FloatVector b0 = a0;
        FloatVector b1 = a0;
        FloatVector c0 = a0;
        FloatVector c1 = a0;
        FloatVector d0 = a0;
        FloatVector d1 = a0;
        for (int c = full; c < cols; c += SUB) {
            int j = c / block;
            for (int h = 0; h < LOADS; h++) {
                long at = part + (c - full) / 2 + (long) L * h;
                int xc = xRow + c + L * h;
                FloatVector x0 = FloatVector.fromArray(F, x, xc);
                FloatVector x1 = FloatVector.fromArray(F, x, xc + 16);
                float scale = sc[j];
                IntVector lo = (IntVector) LEVELS_LO.mul(scale).reinterpretAsInts();
                IntVector hi = (IntVector) LEVELS_HI.mul(scale).reinterpretAsInts();
                IntVector v = (IntVector) ByteVector.fromMemorySegment(B, q, at, ByteOrder.LITTLE_ENDIAN)
                        .convertShape(VectorOperators.B2I, I, 0);
                a0 = ((FloatVector) v.selectFrom(lo, hi).reinterpretAsFloats()).fma(x0, a0);
                a1 = ((FloatVector) v.lanewise(VectorOperators.LSHR, 4).selectFrom(lo, hi).reinterpretAsFloats())
                        .fma(x1, a1);
                scale = sc[perRow + j];
                lo = (IntVector) LEVELS_LO.mul(scale).reinterpretAsInts();
                hi = (IntVector) LEVELS_HI.mul(scale).reinterpretAsInts();
                v = (IntVector) ByteVector.fromMemorySegment(B, q, at + partBytes, ByteOrder.LITTLE_ENDIAN)
                        .convertShape(VectorOperators.B2I, I, 0);
                b0 = ((FloatVector) v.selectFrom(lo, hi).reinterpretAsFloats()).fma(x0, b0);
                b1 = ((FloatVector) v.lanewise(VectorOperators.LSHR, 4).selectFrom(lo, hi).reinterpretAsFloats())
                        .fma(x1, b1);
                scale = sc[2 * perRow + j];
                lo = (IntVector) LEVELS_LO.mul(scale).reinterpretAsInts();
                hi = (IntVector) LEVELS_HI.mul(scale).reinterpretAsInts();
                v = (IntVector) ByteVector.fromMemorySegment(B, q, at + 2L * partBytes, ByteOrder.LITTLE_ENDIAN)
                        .convertShape(VectorOperators.B2I, I, 0);
                c0 = ((FloatVector) v.selectFrom(lo, hi).reinterpretAsFloats()).fma(x0, c0);
                c1 = ((FloatVector) v.lanewise(VectorOperators.LSHR, 4).selectFrom(lo, hi).reinterpretAsFloats())
                        .fma(x1, c1);
                scale = sc[3 * perRow + j];
                lo = (IntVector) LEVELS_LO.mul(scale).reinterpretAsInts();
                hi = (IntVector) LEVELS_HI.mul(scale).reinterpretAsInts();
                v = (IntVector) ByteVector.fromMemorySegment(B, q, at + 3L * partBytes, ByteOrder.LITTLE_ENDIAN)
                        .convertShape(VectorOperators.B2I, I, 0);
                d0 = ((FloatVector) v.selectFrom(lo, hi).reinterpretAsFloats()).fma(x0, d0);
                d1 = ((FloatVector) v.lanewise(VectorOperators.LSHR, 4).selectFrom(lo, hi).reinterpretAsFloats())
                        .fma(x1, d1);
            }
        }
        a0.add(a1).intoArray(lanes, slot * L);
        b0.add(b1).intoArray(lanes, (slot + 1) * L);
        c0.add(c1).intoArray(lanes, (slot + 2) * L);
        d0.add(d1).intoArray(lanes, (slot + 3) * L);
    }

    /**
     * The 32-column sub-blocks of row {@code r}'s last partial group (Q4_0 order: byte {@code i} holds columns
     * {@code i} and {@code 16+i}) against one batch row, reduced on their own; its scales at {@code sc[scOff..]}.
     */
    private static float partialGroup(MemorySegment q, int rows, int cols, int block, int r, float[] x, int xRow,
                                      float[] lanes, float[] sc, int scOff) {
        int full = cols / GROUP * GROUP;
        long part = Int4Quantizer.partialOffset(rows, cols, r);
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        for (int c = full; c < cols; c += SUB) {
            float scale = sc[scOff + c / block];
            IntVector lo = (IntVector) LEVELS_LO.mul(scale).reinterpretAsInts();
            IntVector hi = (IntVector) LEVELS_HI.mul(scale).reinterpretAsInts();
            for (int h = 0; h < LOADS; h++) {
                // Bytes widen sign-extended; the lookup reads only an index's low bits, so either nibble serves.
                IntVector v = (IntVector) ByteVector.fromMemorySegment(B, q, part + (c - full) / 2 + (long) L * h,
                        ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0);
                int xc = xRow + c + L * h;
                a0 = ((FloatVector) v.selectFrom(lo, hi).reinterpretAsFloats()).fma(FloatVector.fromArray(F, x, xc),
                        a0);
                a1 = ((FloatVector) v.lanewise(VectorOperators.LSHR, 4).selectFrom(lo, hi).reinterpretAsFloats())
                        .fma(FloatVector.fromArray(F, x, xc + 16), a1);
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
                    float w = Int4Quantizer.value(q, rows, cols, r, c)
                            * Float.float16ToFloat(s.getAtIndex(F16, (long) r * perRow + c / block));
                    acc = Math.fma(w, x[xOff + b * cols + c], acc);
                }
                out[outOff + b * rows + r] = acc;
            }
        }
    }
}
