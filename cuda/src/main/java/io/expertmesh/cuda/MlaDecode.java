package io.expertmesh.cuda;

import static io.expertmesh.cuda.ElementwiseOps.fits;
import static io.expertmesh.cuda.ElementwiseOps.fitsBf16;
import static io.expertmesh.cuda.ElementwiseOps.require;

/**
 * Launcher for {@code mla_decode.cu}: absorbed MLA decode over the paged latent cache (V3 shapes: latent 512 +
 * rope 64 per cached row), split-KV then merge.
 *
 * <p>Buffers: q [B, H, 576] bf16; cache [pages, pageSize, 576] bf16 (one layer); blockTable [B, maxPages] int;
 * seqLens [B] int (0 for an empty sequence: its output is zeros); out [B, H, 512] f32; oPart [B, H, splits, 512]
 * f32 and lsePart [B, H, splits] f32 as scratch ({@link #partialFloats}).
 */
public final class MlaDecode {
    public static final int LATENT = 512;
    public static final int ROPE = 64;
    public static final int ROW = LATENT + ROPE;
    private static final int HEADS_PER_BLOCK = 16;

    private final CudaDevice device;
    // Resolved once here: a launch looks nothing up.
    private final CudaKernel mlaDecodeMerge;
    /** The split kernel this instance launches ({@link #kernelName()}). */
    private final CudaKernel split;
    private final int stages;
    private final boolean smemAccumulators;

    /** The default kernel: O accumulated in registers, two stages where shared memory allows. */
    public MlaDecode(CudaDevice device) {
        this(device, false);
    }

    /**
     * @param smemAccumulators the first version (O kept in shared memory, loaded and stored every tile), kept as
     *                         a benchmark baseline; needs two stages
     */
    public MlaDecode(CudaDevice device, boolean smemAccumulators) {
        this.device = device;
        this.mlaDecodeMerge = device.kernel(KernelSpecs.MLA_DECODE_MERGE);
        // Double-buffered tiles need ~208 KB of shared memory (Hopper: 227 KB); smaller GPUs get one stage.
        this.stages = sharedBytes(2) <= device.info().maxSharedPerBlockOptin() ? 2 : 1;
        if (smemAccumulators && stages != 2) {
            throw new CudaException("the shared-memory-accumulator MLA kernel needs " + sharedBytes(2)
                    + " bytes of shared memory per block; " + device.info().name() + " allows "
                    + device.info().maxSharedPerBlockOptin());
        }
        this.smemAccumulators = smemAccumulators;
        this.split = device.kernel(smemAccumulators ? KernelSpecs.MLA_DECODE_SPLIT_512_64_S2_SMEM_O
                : stages == 2 ? KernelSpecs.MLA_DECODE_SPLIT_512_64_S2 : KernelSpecs.MLA_DECODE_SPLIT_512_64_S1);
    }

    public int stages() {
        return stages;
    }

    /** The split kernel this instance launches. */
    public String kernelName() {
        return smemAccumulators ? "mla_decode_split_512_64_s2_smem_o"
                : stages == 2 ? "mla_decode_split_512_64_s2" : "mla_decode_split_512_64_s1";
    }

    /** Shared memory of one block, as the kernel's MlaSmem lays it out. */
    public static int sharedBytes(int stages) {
        int dp = ROW + 8;
        int q = align(2 * HEADS_PER_BLOCK * dp);
        int k = align(2 * stages * MlaSplitPlan.TILE * dp);
        int s = align(4 * 2 * HEADS_PER_BLOCK * (MlaSplitPlan.TILE + 4));
        int p = align(2 * HEADS_PER_BLOCK * (MlaSplitPlan.TILE + 8));
        int o = align(4 * HEADS_PER_BLOCK * (LATENT + 4));
        int stats = align(4 * 3 * HEADS_PER_BLOCK);
        return q + k + s + p + o + stats;
    }

    private static int align(int x) {
        return (x + 127) / 128 * 128;
    }

    public static int headGroups(int heads) {
        return (heads + HEADS_PER_BLOCK - 1) / HEADS_PER_BLOCK;
    }

    /** Floats of oPart for this shape; lsePart needs {@code batch·heads·splits}. */
    public static long partialFloats(int batch, int heads, int splits) {
        return (long) batch * heads * splits * LATENT;
    }

    public int splitsFor(int batch, int heads, int maxLen) {
        return MlaSplitPlan.splits(batch, headGroups(heads), maxLen, device.info().multiprocessors());
    }

    /** Planned from the real lengths {@code lens[0, batch)}. */
    public int splitsFor(int[] lens, int batch, int heads) {
        return MlaSplitPlan.splits(lens, batch, headGroups(heads), device.info().multiprocessors());
    }

    public void run(DeviceBuffer q, DeviceBuffer cache, DeviceBuffer blockTable, DeviceBuffer seqLens,
                    DeviceBuffer out, DeviceBuffer oPart, DeviceBuffer lsePart, int batch, int heads, int maxPages,
                    int pageSize, int pages, int splits, float scale) {
        require(batch > 0 && heads > 0 && maxPages > 0 && pageSize > 0 && splits > 0 && pages > 0,
                "batch, heads, maxPages, pageSize, pages and splits must be positive");
        fitsBf16(q, (long) batch * heads * ROW, "q");
        fitsBf16(cache, (long) pages * pageSize * ROW, "cache");
        fits(blockTable, (long) batch * maxPages, "block table");
        fits(seqLens, batch, "seqLens");
        fits(out, (long) batch * heads * LATENT, "out");
        fits(oPart, partialFloats(batch, heads, splits), "oPart");
        fits(lsePart, (long) batch * heads * splits, "lsePart");
        split.launch(headGroups(heads), splits, batch, 256, sharedBytes(stages)).ptr(q).ptr(cache).ptr(blockTable)
                .ptr(seqLens).ptr(oPart).ptr(lsePart).i32(heads).i32(maxPages).i32(pageSize).i32(splits).f32(scale)
                .go();
        mlaDecodeMerge.launch(batch * heads, 1, 1, 128, 0).ptr(oPart).ptr(lsePart).ptr(out).i32(splits).i32(LATENT)
                .go();
    }
}
