package io.expertmesh.cuda.forward;

import static io.expertmesh.cuda.forward.OpChecks.extent;
import static io.expertmesh.cuda.forward.OpChecks.fits;
import static io.expertmesh.cuda.forward.OpChecks.positive;
import static io.expertmesh.cuda.forward.OpChecks.require;
import static io.expertmesh.cuda.forward.OpChecks.weight;

import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Fp8Matrix;
import io.expertmesh.core.tensor.InterleavedRows;
import io.expertmesh.core.tensor.Matrix;
import io.expertmesh.cuda.forward.DeviceTensor.Kind;
import java.lang.foreign.Arena;

/**
 * The argument checks {@link CudaOps} runs before every launch, as pure functions of the arguments and the
 * tensors' kinds and lengths, so they are unit-tested without a GPU. They are {@link HostOps}'s checks (the same
 * sizes are errors on both) plus what a GPU adds: grid dimensions y and z are at most 65,535, shared memory and
 * head sizes the kernels support, non-negative strides (kernel index arithmetic is unsigned), and inputs that may
 * not alias outputs when threads would race. A failure is an {@link IllegalArgumentException} naming the argument.
 *
 * <p>What the host cannot see without waiting for the device (token ids, slots, block tables, sequence lengths in
 * device memory) is guarded by the kernels instead: an index out of range never touches memory outside its tensor.
 * Methods that derive a bound the kernel needs (rows of a table, slots of a pool) return it.
 */
final class OpShapes {
    /** gridDim.y and gridDim.z limit. */
    static final int MAX_GRID_YZ = 65_535;
    /** Head dim limit of gqa_decode_paged (8 values per lane). */
    static final int MAX_GQA_DIM = 256;
    /** Dynamic shared memory a launch may take without an opt-in. */
    static final int SHARED_LIMIT = 48 * 1024;
    /** Static shared memory of mla_attention_f32q (scores and slots of one 64-position chunk). */
    static final int MLA_STATIC_SHARED = 64 * 4 * 2;

    private OpShapes() {
    }

    static void nonNegative(String what, int... values) {
        for (int v : values) {
            require(v >= 0, what + " must not be negative, got " + v);
        }
    }

    private static void gridYz(String what, int v) {
        require(v <= MAX_GRID_YZ, what + " " + v + " exceeds the GPU grid limit of " + MAX_GRID_YZ);
    }

    /** Host array range {@code [off, off + n)} inside an array of {@code length}. */
    static void hostRange(String what, int length, int off, int n) {
        require(off >= 0 && n >= 0 && (long) off + n <= length, what + " range [" + off + ", " + ((long) off + n)
                + ") outside an array of " + length);
    }

    /** A tensor of {@code length} elements of {@code kind} (as {@link HostOps}: at least one element). */
    static void tensor(Kind kind, long length) {
        require(kind != null, "tensor kind is missing");
        require(length >= 1, "tensor length must be positive, got " + length);
    }

    static void copyIn(int srcLength, int srcOff, DeviceTensor dst, Kind kind, long dstOff, int n) {
        hostRange("source", srcLength, srcOff, n);
        require(dstOff >= 0, "destination offset must not be negative, got " + dstOff);
        fits(dst, kind, dstOff + n, "copy destination");
    }

    static void copyOut(DeviceTensor src, Kind kind, long srcOff, int dstLength, int dstOff, int n) {
        hostRange("destination", dstLength, dstOff, n);
        require(srcOff >= 0, "source offset must not be negative, got " + srcOff);
        fits(src, kind, srcOff + n, "copy source");
    }

    static void zero(DeviceTensor x, int n) {
        nonNegative("n", n);
        fits(x, Kind.F32, n, "x");
    }

    /**
     * {@code ws} as the device holds them: an FP8 matrix (a DeepSeek-V3 checkpoint kept FP8 on the host) becomes its
     * BF16 copy, the values the pre-native loader made, since the device kernels read BF16 and F32 only; an
     * interleaved matrix (laid out for the CPU's native kernels) its plain-row copy first. A copy is garbage once
     * uploaded.
     */
    static Matrix[] uploadable(Matrix[] ws) {
        Matrix[] out = ws;
        for (int i = 0; i < ws.length; i++) {
            if (ws[i] != null && (ws[i].dtype() == DType.F8_E4M3 || ws[i].interleaved())) {
                if (out == ws) {
                    out = ws.clone();
                }
                Matrix plain = InterleavedRows.rowMajor(ws[i]);
                out[i] = plain.dtype() == DType.F8_E4M3 ? Fp8Matrix.toBf16(plain, Arena.ofAuto()) : plain;
            }
        }
        return out;
    }

    /** The kind a matrix uploads as. */
    static Kind kindOf(Matrix w) {
        return w.dtype() == DType.BF16 ? Kind.BF16 : Kind.F32;
    }

    /** Stacked matrices share shape and dtype; returns the elements of one. */
    static long stacked(Matrix[] ws) {
        require(ws != null && ws.length > 0, "no matrices to upload");
        Matrix first = ws[0];
        for (Matrix w : ws) {
            require(w != null, "a stacked matrix is missing");
            require(!w.dtype().blockQuantized(), w.name() + " is " + w.dtype() + " (--quantize int8/int4), which "
                    + "only the CPU kernels read; "
                    + "load the model with --quantize none for the GPU");
            require(w.dtype() == first.dtype() && w.rows() == first.rows() && w.cols() == first.cols(),
                    "stacked matrices must share shape and dtype: " + w.name() + " differs from " + first.name());
        }
        return (long) first.rows() * first.cols();
    }

    /** Returns the table's rows (vocabulary). */
    static long embed(DeviceTensor table, DeviceTensor ids, DeviceTensor out, int rows, int hidden) {
        positive("rows and hidden", rows, hidden);
        weight(table, hidden, "embedding table");
        fits(ids, Kind.I32, rows, "ids");
        fits(out, Kind.F32, (long) rows * hidden, "out");
        return Math.min(table.length() / hidden, Integer.MAX_VALUE);
    }

    static void rmsNorm(DeviceTensor x, int xStride, DeviceTensor w, float eps, DeviceTensor out, int outStride,
                        int rows, int n) {
        positive("rows and n", rows, n);
        require(xStride >= n && outStride >= n, "strides must be at least n = " + n + ", got " + xStride + " and "
                + outStride);
        require(Float.isFinite(eps) && eps >= 0, "eps must be finite and not negative, got " + eps);
        fits(x, Kind.F32, extent(rows, xStride, 1, 0, 0, n), "x");
        fits(out, Kind.F32, extent(rows, outStride, 1, 0, 0, n), "out");
        fits(w, Kind.F32, n, "weight");
        // Rows run in parallel: in place is safe only row onto the same row.
        require(x != out || xStride == outStride || rows == 1,
                "in-place RMSNorm needs equal strides, got " + xStride + " and " + outStride);
    }

    static void rope(DeviceTensor x, DeviceTensor cos, DeviceTensor sin, int rows, int heads, int rowStride,
                     int headStride, int offset, int dim, int csStride) {
        positive("rows, heads and dim", rows, heads, dim);
        require(dim % 2 == 0, "rope dim must be even, got " + dim);
        nonNegative("rope strides and offset", rowStride, headStride, offset, csStride);
        gridYz("heads", heads);
        fits(x, Kind.F32, extent(rows, rowStride, heads, headStride, offset, dim), "x");
        fits(cos, Kind.F32, extent(rows, csStride, 1, 0, 0, dim / 2), "cos");
        fits(sin, Kind.F32, extent(rows, csStride, 1, 0, 0, dim / 2), "sin");
    }

    static void linear(DeviceTensor w, DeviceTensor x, DeviceTensor out, int rows, int cols, int batch) {
        positive("rows, cols and batch", rows, cols, batch);
        weight(w, (long) rows * cols, "weight");
        fits(x, Kind.F32, (long) batch * cols, "x");
        fits(out, Kind.F32, (long) batch * rows, "out");
        require(x != out, "linear cannot run in place (x and out are the same tensor)");
    }

    static void headLinear(DeviceTensor w, int heads, int rows, int cols, DeviceTensor x, int xRow, int xHead,
                           int xOff, DeviceTensor out, int oRow, int oHead, int oOff, int tokens) {
        positive("heads, rows, cols and tokens", heads, rows, cols, tokens);
        nonNegative("strides and offsets", xRow, xHead, xOff, oRow, oHead, oOff);
        gridYz("heads", heads);
        weight(w, (long) heads * rows * cols, "weight");
        fits(x, Kind.F32, extent(tokens, xRow, heads, xHead, xOff, cols), "x");
        fits(out, Kind.F32, extent(tokens, oRow, heads, oHead, oOff, rows), "out");
        require(x != out, "headLinear cannot run in place (x and out are the same tensor)");
    }

    static void copyStrided(DeviceTensor src, int sRow, int sHead, int sOff, DeviceTensor dst, int dRow, int dHead,
                            int dOff, int rows, int heads, int n) {
        positive("rows, heads and n", rows, heads, n);
        nonNegative("strides and offsets", sRow, sHead, sOff, dRow, dHead, dOff);
        gridYz("heads", heads);
        fits(src, Kind.F32, extent(rows, sRow, heads, sHead, sOff, n), "src");
        fits(dst, Kind.F32, extent(rows, dRow, heads, dHead, dOff, n), "dst");
    }

    static void addBias(DeviceTensor x, DeviceTensor bias, int rows, int n) {
        positive("rows and n", rows, n);
        fits(x, Kind.F32, (long) rows * n, "x");
        fits(bias, Kind.F32, n, "bias");
    }

    static void add(DeviceTensor y, DeviceTensor x, int n) {
        positive("n", n);
        fits(y, Kind.F32, n, "y");
        fits(x, Kind.F32, n, "x");
    }

    static void swiglu(DeviceTensor gate, DeviceTensor up, DeviceTensor out, int n) {
        positive("n", n);
        fits(gate, Kind.F32, n, "gate");
        fits(up, Kind.F32, n, "up");
        fits(out, Kind.F32, n, "out");
    }

    /** Returns the pool's slots. */
    static int kvWrite(DeviceTensor src, int srcStride, DeviceTensor pool, int poolRow, int dstOff,
                       DeviceTensor slots, int rows, int n) {
        positive("rows, n and poolRow", rows, n, poolRow);
        require(dstOff >= 0 && (long) dstOff + n <= poolRow, "row part [" + dstOff + ", " + ((long) dstOff + n)
                + ") outside a pool row of " + poolRow);
        require(srcStride >= n || rows == 1, "src stride must be at least n = " + n + ", got " + srcStride);
        nonNegative("src stride", srcStride);
        fits(src, Kind.F32, extent(rows, srcStride, 1, 0, 0, n), "src");
        fits(slots, Kind.I32, rows, "slots");
        fits(pool, Kind.BF16, poolRow, "pool");
        return poolSlots(pool, poolRow);
    }

    private static int poolSlots(DeviceTensor pool, long row) {
        long slots = pool.length() / row;
        require(slots <= Integer.MAX_VALUE, "pool of " + slots + " slots exceeds 2^31 - 1");
        return (int) slots;
    }

    private static void table(DeviceTensor blockTable, DeviceTensor seqLens, int tokens, int maxBlocks,
                              int blockSize) {
        fits(blockTable, Kind.I32, (long) tokens * maxBlocks, "block table");
        fits(seqLens, Kind.I32, tokens, "seqLens");
        require((long) maxBlocks * blockSize <= Integer.MAX_VALUE, "maxBlocks × blockSize = "
                + (long) maxBlocks * blockSize + " exceeds 2^31 - 1 positions");
        gridYz("tokens", tokens);
    }

    /** Returns the pool's blocks. */
    static int mlaAttention(DeviceTensor q, DeviceTensor pool, DeviceTensor blockTable, DeviceTensor seqLens,
                            DeviceTensor out, int tokens, int heads, int latent, int rope, int maxBlocks,
                            int blockSize, float scale) {
        positive("tokens, heads, latent, maxBlocks and blockSize", tokens, heads, latent, maxBlocks, blockSize);
        nonNegative("rope", rope);
        require(Float.isFinite(scale), "scale must be finite, got " + scale);
        long row = (long) latent + rope;
        require((row + latent) * Float.BYTES + MLA_STATIC_SHARED <= SHARED_LIMIT, "latent " + latent + " + rope "
                + rope + " needs more shared memory than the MLA kernel may take (" + SHARED_LIMIT + " bytes)");
        // The fast path converts the query with an int element count.
        require((long) tokens * heads * row <= Integer.MAX_VALUE, "q of " + (long) tokens * heads * row
                + " elements exceeds 2^31 - 1");
        fits(q, Kind.F32, (long) tokens * heads * row, "q");
        fits(out, Kind.F32, (long) tokens * heads * latent, "out");
        require(q != out, "MLA attention cannot write its query (q and out are the same tensor)");
        fits(pool, Kind.BF16, blockSize * row, "pool (at least one block of " + blockSize + " rows of " + row + ")");
        table(blockTable, seqLens, tokens, maxBlocks, blockSize);
        return poolSlots(pool, row) / blockSize;
    }

    /** Returns the pool's blocks. */
    static int gqaAttention(DeviceTensor q, DeviceTensor pool, DeviceTensor blockTable, DeviceTensor seqLens,
                            DeviceTensor out, int tokens, int heads, int kvHeads, int dim, int maxBlocks,
                            int blockSize, float scale) {
        positive("tokens, heads, kvHeads, dim, maxBlocks and blockSize", tokens, heads, kvHeads, dim, maxBlocks,
                blockSize);
        require(heads % kvHeads == 0, "heads " + heads + " must be a multiple of kv heads " + kvHeads);
        require(dim <= MAX_GQA_DIM, "head dim " + dim + " exceeds the GQA kernel's " + MAX_GQA_DIM);
        require(Float.isFinite(scale), "scale must be finite, got " + scale);
        long row = 2L * kvHeads * dim;
        fits(q, Kind.F32, (long) tokens * heads * dim, "q");
        fits(out, Kind.F32, (long) tokens * heads * dim, "out");
        require(q != out, "GQA attention cannot write its query (q and out are the same tensor)");
        fits(pool, Kind.BF16, blockSize * row, "pool (at least one block of " + blockSize + " rows of " + row + ")");
        table(blockTable, seqLens, tokens, maxBlocks, blockSize);
        return poolSlots(pool, row) / blockSize;
    }

    /** Dynamic shared memory of topk_gate_f32. */
    static int topkShared(int experts, int nGroup) {
        return (2 * experts + nGroup) * Float.BYTES;
    }

    static void topkGate(DeviceTensor logits, DeviceTensor bias, int tokens, int experts, int k, int nGroup,
                         int topkGroup, DeviceTensor ids, DeviceTensor weights) {
        positive("tokens and experts", tokens, experts);
        require(k >= 1 && k <= experts, "top-k must be in [1, " + experts + "], got " + k);
        require(nGroup >= 1 && experts % nGroup == 0, "n_group " + nGroup + " must divide " + experts + " experts");
        require(topkGroup >= 1 && topkGroup <= nGroup, "topk_group must be in [1, n_group], got " + topkGroup);
        require(nGroup == 1 || topkGroup == nGroup || (long) topkGroup * (experts / nGroup) >= k,
                "topk_group " + topkGroup + " groups of " + experts / nGroup + " hold fewer than k = " + k);
        require((long) topkShared(experts, nGroup) <= SHARED_LIMIT, experts + " experts exceed the gate kernel's "
                + "shared memory");
        fits(logits, Kind.F32, (long) tokens * experts, "logits");
        fits(ids, Kind.I32, (long) tokens * k, "ids");
        fits(weights, Kind.F32, (long) tokens * k, "weights");
        if (bias != null) {
            fits(bias, Kind.F32, experts, "bias");
        }
    }

    /** Returns the rows of src. */
    static int gatherRows(DeviceTensor src, DeviceTensor idx, int idxOff, DeviceTensor dst, int rows, int n) {
        positive("rows and n", rows, n);
        nonNegative("idxOff", idxOff);
        fits(idx, Kind.I32, (long) idxOff + rows, "idx");
        fits(dst, Kind.F32, (long) rows * n, "dst");
        fits(src, Kind.F32, n, "src (at least one row of " + n + ")");
        require(src != dst, "gatherRows cannot run in place (src and dst are the same tensor)");
        return (int) Math.min(src.length() / n, Integer.MAX_VALUE);
    }

    /** Returns the rows of dst. */
    static int scatterAddRows(DeviceTensor src, DeviceTensor idx, DeviceTensor w, int idxOff, DeviceTensor dst,
                              int rows, int n) {
        positive("rows and n", rows, n);
        nonNegative("idxOff", idxOff);
        fits(src, Kind.F32, (long) rows * n, "src");
        fits(idx, Kind.I32, (long) idxOff + rows, "idx");
        fits(w, Kind.F32, (long) idxOff + rows, "w");
        fits(dst, Kind.F32, n, "dst (at least one row of " + n + ")");
        require(src != dst, "scatterAddRows cannot run in place (src and dst are the same tensor)");
        return (int) Math.min(dst.length() / n, Integer.MAX_VALUE);
    }

    static void gatedAdd(DeviceTensor y, DeviceTensor x, DeviceTensor g, int rows, int n) {
        positive("rows and n", rows, n);
        fits(y, Kind.F32, (long) rows * n, "y");
        fits(x, Kind.F32, (long) rows * n, "x");
        fits(g, Kind.F32, rows, "g");
    }

    /** Most choices per token combineExperts takes (combine_experts_f32 sorts them in a fixed array). */
    static final int MAX_TOP_K = 16;

    static void routeByExpert(DeviceTensor ids, int tokens, int k, int experts, DeviceTensor offsets,
                              DeviceTensor slotOfPair, DeviceTensor tokenOfSlot) {
        positive("tokens, k and experts", tokens, k, experts);
        long pairs = (long) tokens * k;
        require(pairs <= Integer.MAX_VALUE, "too many pairs: " + pairs);
        fits(ids, Kind.I32, pairs, "ids");
        fits(offsets, Kind.I32, experts + 1L, "offsets");
        fits(slotOfPair, Kind.I32, pairs, "slotOfPair");
        fits(tokenOfSlot, Kind.I32, pairs, "tokenOfSlot");
        require(ids != offsets && ids != slotOfPair && ids != tokenOfSlot && offsets != slotOfPair
                && offsets != tokenOfSlot && slotOfPair != tokenOfSlot, "routeByExpert's tensors must be distinct");
    }

    static void groupedLinear(DeviceTensor w, int experts, DeviceTensor x, DeviceTensor out, DeviceTensor offsets,
                              int rows, int cols, int pairs) {
        positive("experts, rows, cols and pairs", experts, rows, cols, pairs);
        gridYz("experts", experts);
        weight(w, (long) experts * rows * cols, "weight");
        fits(x, Kind.F32, (long) pairs * cols, "x");
        fits(out, Kind.F32, (long) pairs * rows, "out");
        fits(offsets, Kind.I32, experts + 1L, "offsets");
        require(x != out, "groupedLinear cannot run in place (x and out are the same tensor)");
    }

    static void combineExperts(DeviceTensor y, DeviceTensor ids, DeviceTensor weights, DeviceTensor slotOfPair,
                               int tokens, int k, DeviceTensor out, int n) {
        positive("tokens, k and n", tokens, k, n);
        require(k <= MAX_TOP_K, "combineExperts takes at most " + MAX_TOP_K + " choices per token, got " + k);
        long pairs = (long) tokens * k;
        fits(y, Kind.F32, pairs * n, "y");
        fits(ids, Kind.I32, pairs, "ids");
        fits(weights, Kind.F32, pairs, "weights");
        fits(slotOfPair, Kind.I32, pairs, "slotOfPair");
        fits(out, Kind.F32, (long) tokens * n, "out");
        require(y != out, "combineExperts cannot run in place (y and out are the same tensor)");
    }
}
