package io.expertmesh.cuda.forward;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Matrix;
import io.expertmesh.cuda.forward.DeviceTensor.Kind;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * CudaOps's argument checks, without a GPU: tensors are HostOps tensors (OpShapes sees only kind and length), so
 * each wrong call is also run on HostOps where the contract makes it an error on both.
 */
class OpShapesTest {
    private final HostOps host = new HostOps();

    private DeviceTensor f32(long n) {
        return host.allocate(Kind.F32, n);
    }

    private DeviceTensor i32(long n) {
        return host.allocate(Kind.I32, n);
    }

    private DeviceTensor bf16(long n) {
        return host.allocate(Kind.BF16, n);
    }

    /** The call fails with an IllegalArgumentException whose message contains {@code fragment}. */
    private static void rejects(String fragment, Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), "message '" + e.getMessage() + "' lacks '" + fragment + "'");
    }

    @Test
    void tensorAndCopies_rangesAndKinds() {
        rejects("length must be positive", () -> OpShapes.tensor(Kind.F32, 0));
        rejects("kind is missing", () -> OpShapes.tensor(null, 4));
        DeviceTensor t = f32(10);
        assertDoesNotThrow(() -> OpShapes.copyIn(20, 10, t, Kind.F32, 3, 7));
        rejects("source range [15, 22)", () -> OpShapes.copyIn(20, 15, t, Kind.F32, 0, 7));
        rejects("copy destination needs 11", () -> OpShapes.copyIn(20, 0, t, Kind.F32, 4, 7));
        rejects("copy destination must be I32", () -> OpShapes.copyIn(20, 0, t, Kind.I32, 0, 7));
        rejects("offset must not be negative", () -> OpShapes.copyOut(t, Kind.F32, -1, 20, 0, 3));
        rejects("destination range", () -> OpShapes.copyOut(t, Kind.F32, 0, 5, 3, 3));
        rejects("copy destination needs 11", () -> host.copyIn(new float[20], 0, t, 4, 7));
        rejects("x needs 11", () -> OpShapes.zero(t, 11));
        rejects("x needs 11", () -> host.zero(t, 11));
    }

    @Test
    void uploadStacked_sharedShapeAndDtype() {
        Matrix a = new Matrix("a", DType.F32, 2, 3, MemorySegment.ofArray(new float[6]));
        Matrix b = new Matrix("b", DType.F32, 3, 2, MemorySegment.ofArray(new float[6]));
        Matrix c = new Matrix("c", DType.BF16, 2, 3, MemorySegment.ofArray(new short[6]));
        assertEquals(6, OpShapes.stacked(new Matrix[]{a, a}));
        rejects("b differs from a", () -> OpShapes.stacked(new Matrix[]{a, b}));
        rejects("c differs from a", () -> OpShapes.stacked(new Matrix[]{a, c}));
        rejects("b differs from a", () -> host.uploadStacked(new Matrix[]{a, b}));
        rejects("no matrices", () -> OpShapes.stacked(new Matrix[0]));
        assertEquals(Kind.BF16, OpShapes.kindOf(c));
    }

    @Test
    void embed_returnsVocabularyAndChecksKinds() {
        assertEquals(37, OpShapes.embed(bf16(37 * 45), i32(13), f32(13 * 45), 13, 45));
        rejects("embedding table must be F32 or BF16", () -> OpShapes.embed(i32(37 * 45), i32(13), f32(13 * 45),
                13, 45));
        rejects("ids must be I32", () -> OpShapes.embed(f32(37 * 45), f32(13), f32(13 * 45), 13, 45));
        rejects("out needs 585", () -> OpShapes.embed(f32(37 * 45), i32(13), f32(584), 13, 45));
        rejects("out needs 585", () -> host.embed(f32(37 * 45), i32(13), f32(584), 13, 45));
        rejects("rows and hidden must be positive", () -> OpShapes.embed(f32(37), i32(1), f32(1), 0, 1));
    }

    @Test
    void rmsNorm_stridesExtentsAndInPlace() {
        DeviceTensor x = f32(6 * 311 + 301);
        assertDoesNotThrow(() -> OpShapes.rmsNorm(x, 311, f32(301), 1e-6f, x, 311, 7, 301));
        rejects("x needs 2478", () -> OpShapes.rmsNorm(x, 311, f32(301), 1e-6f, f32(5000), 311, 8, 301));
        rejects("strides must be at least n", () -> OpShapes.rmsNorm(x, 300, f32(301), 1e-6f, f32(5000), 311, 2,
                301));
        rejects("strides must be at least n", () -> host.rmsNorm(x, 300, f32(301), 1e-6f, f32(5000), 311, 2, 301));
        rejects("weight needs 301", () -> OpShapes.rmsNorm(x, 311, f32(300), 1e-6f, x, 311, 7, 301));
        // GPU rows run in parallel: writing row r over a different row's input would race.
        rejects("in-place RMSNorm needs equal strides", () -> OpShapes.rmsNorm(x, 311, f32(301), 1e-6f, x, 305, 7,
                301));
        rejects("eps", () -> OpShapes.rmsNorm(x, 311, f32(301), Float.NaN, f32(5000), 311, 7, 301));
    }

    @Test
    void rope_extentEvenDimAndGrid() {
        // last head of the last row ends at 4·220 + 2·69 + 5 + 66 = 1089
        assertDoesNotThrow(() -> OpShapes.rope(f32(1089), f32(5 * 34), f32(5 * 34), 5, 3, 220, 69, 5, 66, 34));
        rejects("x needs 1089", () -> OpShapes.rope(f32(1088), f32(5 * 34), f32(5 * 34), 5, 3, 220, 69, 5, 66,
                34));
        rejects("x needs 1089", () -> host.rope(true, f32(1088), f32(5 * 34), f32(5 * 34), 5, 3, 220, 69, 5, 66,
                34));
        rejects("even", () -> OpShapes.rope(f32(1000), f32(100), f32(100), 1, 1, 100, 0, 0, 65, 0));
        rejects("cos needs", () -> OpShapes.rope(f32(5 * 220), f32(5 * 34 - 2), f32(5 * 34), 5, 3, 220, 69, 5, 66,
                34));
        rejects("heads 70000 exceeds the GPU grid limit", () -> OpShapes.rope(f32(70_000 * 2), f32(1), f32(1), 1,
                70_000, 0, 2, 0, 2, 0));
        rejects("must not be negative", () -> OpShapes.rope(f32(1000), f32(100), f32(100), 2, 1, -4, 0, 0, 2, 0));
    }

    @Test
    void linearAndHeadLinear_sizesAndAliasing() {
        assertDoesNotThrow(() -> OpShapes.linear(bf16(133 * 301), f32(11 * 301), f32(11 * 133), 133, 301, 11));
        rejects("weight needs 40033", () -> OpShapes.linear(bf16(40_032), f32(11 * 301), f32(11 * 133), 133, 301,
                11));
        rejects("x needs", () -> host.linear(bf16(133 * 301), f32(11 * 301 - 1), f32(11 * 133), 133, 301, 11));
        DeviceTensor xo = f32(4000);
        rejects("cannot run in place", () -> OpShapes.linear(f32(100), xo, xo, 10, 10, 3));
        // heads 5, rows 37, cols 29, tokens 11 over strided views (the GPU check's shapes)
        int xRow = 5 * 32 + 5;
        int oRow = 5 * 38 + 3;
        assertDoesNotThrow(() -> OpShapes.headLinear(f32(5 * 37 * 29), 5, 37, 29, f32(11 * xRow), xRow, 32, 2,
                f32(11 * oRow), oRow, 38, 1, 11));
        rejects("weight needs 5365", () -> OpShapes.headLinear(f32(5 * 37 * 29 - 1), 5, 37, 29, f32(11 * xRow),
                xRow, 32, 2, f32(11 * oRow), oRow, 38, 1, 11));
        rejects("out needs", () -> OpShapes.headLinear(f32(5 * 37 * 29), 5, 37, 29, f32(11 * xRow), xRow, 32, 2,
                f32(10 * oRow), oRow, 38, 1, 11));
        rejects("out needs", () -> host.headLinear(f32(5 * 37 * 29), 5, 37, 29, f32(11 * xRow), xRow, 32, 2,
                f32(10 * oRow), oRow, 38, 1, 11));
        rejects("cannot run in place", () -> OpShapes.headLinear(f32(1), 1, 1, 1, xo, 2, 0, 0, xo, 2, 0, 1, 3));
    }

    @Test
    void elementwise_sizesAndKinds() {
        rejects("src needs", () -> OpShapes.copyStrided(f32(10), 5, 0, 0, f32(100), 5, 0, 0, 3, 1, 5));
        rejects("dst needs", () -> OpShapes.copyStrided(f32(100), 5, 0, 0, f32(14), 5, 0, 0, 3, 1, 5));
        rejects("bias needs 333", () -> OpShapes.addBias(f32(9 * 333), f32(332), 9, 333));
        rejects("y must be F32", () -> OpShapes.add(i32(5), f32(5), 5));
        rejects("n must be positive", () -> OpShapes.add(f32(5), f32(5), 0));
        rejects("n must be positive", () -> host.add(f32(5), f32(5), 0));
        rejects("up needs 8", () -> OpShapes.swiglu(f32(8), f32(7), f32(8), 8));
        rejects("g needs 11", () -> OpShapes.gatedAdd(f32(11 * 3), f32(11 * 3), f32(10), 11, 3));
        rejects("g needs 11", () -> host.gatedAdd(f32(11 * 3), f32(11 * 3), f32(10), 11, 3));
    }

    @Test
    void kvWrite_rowPartInsidePoolRowAndSlotsReturned() {
        assertEquals(40, OpShapes.kvWrite(f32(13 * 31), 31, bf16(40 * 41), 41, 9, i32(13), 13, 27));
        rejects("row part [15, 42) outside a pool row of 41", () -> OpShapes.kvWrite(f32(13 * 31), 31,
                bf16(40 * 41), 41, 15, i32(13), 13, 27));
        rejects("row part [15, 42) outside a pool row of 41", () -> host.kvWrite(f32(13 * 31), 31, bf16(40 * 41),
                41, 15, i32(13), 13, 27));
        rejects("pool must be BF16", () -> OpShapes.kvWrite(f32(13 * 31), 31, f32(40 * 41), 41, 9, i32(13), 13,
                27));
        rejects("slots needs 13", () -> OpShapes.kvWrite(f32(13 * 31), 31, bf16(40 * 41), 41, 9, i32(12), 13, 27));
    }

    @Test
    void attention_poolBlocksTablesAndLimits() {
        int row = 33;
        // 4 tokens, 5 heads, latent 23 + rope 10, 30 blocks of 7, maxBlocks 20
        assertEquals(30, OpShapes.mlaAttention(f32(4 * 5 * row), bf16(30 * 7 * row + 5), i32(4 * 20), i32(4),
                f32(4 * 5 * 23), 4, 5, 23, 10, 20, 7, 0.1f));
        rejects("block table needs 80", () -> OpShapes.mlaAttention(f32(4 * 5 * row), bf16(30 * 7 * row), i32(79),
                i32(4), f32(4 * 5 * 23), 4, 5, 23, 10, 20, 7, 0.1f));
        rejects("out needs 460", () -> OpShapes.mlaAttention(f32(4 * 5 * row), bf16(30 * 7 * row), i32(80),
                i32(4), f32(459), 4, 5, 23, 10, 20, 7, 0.1f));
        rejects("out needs 460", () -> host.mlaAttention(f32(4 * 5 * row), bf16(30 * 7 * row), i32(80), i32(4),
                f32(459), 4, 5, 23, 10, 20, 7, 0.1f));
        rejects("must be BF16, got F32", () -> OpShapes.mlaAttention(f32(4 * 5 * row), f32(30 * 7 * row), i32(80),
                i32(4), f32(4 * 5 * 23), 4, 5, 23, 10, 20, 7, 0.1f));
        rejects("at least one block", () -> OpShapes.mlaAttention(f32(4 * 5 * row), bf16(6 * row), i32(80),
                i32(4), f32(4 * 5 * 23), 4, 5, 23, 10, 20, 7, 0.1f));
        rejects("shared memory", () -> OpShapes.mlaAttention(f32(4000), bf16(10_000_000), i32(1), i32(1),
                f32(10_000), 1, 1, 5000, 3000, 1, 1, 0.1f));
        rejects("tokens 70000 exceeds the GPU grid limit", () -> OpShapes.mlaAttention(f32(70_000 * row),
                bf16(7 * row), i32(70_000), i32(70_000), f32(70_000 * 23), 70_000, 1, 23, 10, 1, 7, 0.1f));
        assertEquals(3, OpShapes.gqaAttention(f32(3 * 12 * 72), bf16(3 * 16 * 2 * 4 * 72), i32(3 * 19), i32(3),
                f32(3 * 12 * 72), 3, 12, 4, 72, 19, 16, 0.1f));
        rejects("heads 12 must be a multiple of kv heads 5", () -> OpShapes.gqaAttention(f32(10_000),
                bf16(100_000), i32(60), i32(3), f32(10_000), 3, 12, 5, 72, 19, 16, 0.1f));
        rejects("head dim 320 exceeds", () -> OpShapes.gqaAttention(f32(100_000), bf16(1_000_000), i32(60),
                i32(3), f32(100_000), 3, 8, 8, 320, 19, 16, 0.1f));
        DeviceTensor q = f32(3 * 12 * 72);
        rejects("cannot write its query", () -> OpShapes.gqaAttention(q, bf16(3 * 16 * 2 * 4 * 72), i32(3 * 19),
                i32(3), q, 3, 12, 4, 72, 19, 16, 0.1f));
    }

    @Test
    void topkGate_sameRulesAsTheKernelLauncher() {
        assertDoesNotThrow(() -> OpShapes.topkGate(f32(37 * 64), f32(64), 37, 64, 6, 8, 3, i32(37 * 6),
                f32(37 * 6)));
        rejects("top-k must be in [1, 64]", () -> OpShapes.topkGate(f32(37 * 64), null, 37, 64, 65, 1, 1,
                i32(37 * 65), f32(37 * 65)));
        rejects("n_group 7 must divide 64", () -> OpShapes.topkGate(f32(37 * 64), null, 37, 64, 6, 7, 3,
                i32(37 * 6), f32(37 * 6)));
        rejects("hold fewer than k", () -> OpShapes.topkGate(f32(37 * 64), null, 37, 64, 20, 8, 2, i32(37 * 20),
                f32(37 * 20)));
        rejects("ids must be I32", () -> OpShapes.topkGate(f32(37 * 64), null, 37, 64, 6, 8, 3, f32(37 * 6),
                f32(37 * 6)));
        rejects("bias needs 64", () -> OpShapes.topkGate(f32(37 * 64), f32(63), 37, 64, 6, 8, 3, i32(37 * 6),
                f32(37 * 6)));
    }

    @Test
    void gatherAndScatter_rowsReturnedAndAliasRejected() {
        assertEquals(41, OpShapes.gatherRows(f32(41 * 37 + 5), i32(18), 3, f32(13 * 37), 13, 37));
        rejects("idx needs 16", () -> OpShapes.gatherRows(f32(41 * 37), i32(15), 3, f32(13 * 37), 13, 37));
        rejects("idx needs 16", () -> host.gatherRows(f32(41 * 37), i32(15), 3, f32(13 * 37), 13, 37));
        DeviceTensor same = f32(41 * 37);
        rejects("cannot run in place", () -> OpShapes.gatherRows(same, i32(18), 3, same, 13, 37));
        assertEquals(29, OpShapes.scatterAddRows(f32(13 * 37), i32(20), f32(20), 5, f32(29 * 37), 13, 37));
        rejects("w needs 18", () -> OpShapes.scatterAddRows(f32(13 * 37), i32(20), f32(17), 5, f32(29 * 37), 13,
                37));
        rejects("w needs 18", () -> host.scatterAddRows(f32(13 * 37), i32(20), f32(17), 5, f32(29 * 37), 13, 37));
        rejects("idxOff must not be negative", () -> OpShapes.scatterAddRows(f32(13 * 37), i32(20), f32(20), -1,
                f32(29 * 37), 13, 37));
    }
}
