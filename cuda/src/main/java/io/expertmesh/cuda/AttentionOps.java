package io.expertmesh.cuda;

import static io.expertmesh.cuda.ElementwiseOps.fits;
import static io.expertmesh.cuda.ElementwiseOps.fitsBf16;
import static io.expertmesh.cuda.ElementwiseOps.require;

/** Launchers for {@code attention.cu}: GQA decode over a paged cache, and causal prefill. */
public final class AttentionOps {
    public static final int MAX_HEAD_DIM = 256;

    // Resolved once here: a launch looks nothing up.
    private final CudaKernel gqaDecodePaged;
    private final CudaKernel prefillCausal;

    public AttentionOps(CudaDevice device) {
        this.gqaDecodePaged = device.kernel(KernelSpecs.GQA_DECODE_PAGED);
        this.prefillCausal = device.kernel(KernelSpecs.PREFILL_CAUSAL);
    }

    /**
     * One decode query per sequence. q [B, Hq, D] f32; cache [pages, pageSize, 2·Hkv·D] bf16 (a row = K of all kv
     * heads then V); blockTable [B, maxPages]; seqLens [B] (each ≥ 1); out [B, Hq, D] f32.
     */
    public void gqaDecode(DeviceBuffer q, DeviceBuffer cache, DeviceBuffer blockTable, DeviceBuffer seqLens,
                          DeviceBuffer out, int batch, int heads, int kvHeads, int dim, int maxPages, int pageSize,
                          int pages, float scale) {
        require(batch > 0 && heads > 0 && kvHeads > 0 && heads % kvHeads == 0,
                "heads must be a positive multiple of kv heads, got " + heads + " and " + kvHeads);
        require(dim > 0 && dim <= MAX_HEAD_DIM, "head dim must be in [1, " + MAX_HEAD_DIM + "], got " + dim);
        fits(q, (long) batch * heads * dim, "q");
        fitsBf16(cache, (long) pages * pageSize * 2 * kvHeads * dim, "cache");
        fits(blockTable, (long) batch * maxPages, "block table");
        fits(seqLens, batch, "seqLens");
        fits(out, (long) batch * heads * dim, "out");
        gqaDecodePaged.launch(heads, batch, 1, 128, 0).ptr(q).ptr(cache).ptr(blockTable).ptr(seqLens).ptr(out)
                .i32(heads).i32(kvHeads).i32(dim).i32(maxPages).i32(pageSize).f32(scale).go();
    }

    /**
     * Causal attention of T new tokens at positions past..past+T-1 over past+T keys. q [T, Hq, Dk], k [past+T,
     * Hkv, Dk], v [past+T, Hkv, Dv] bf16; out [T, Hq, Dv] f32.
     */
    public void prefill(DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, DeviceBuffer out, int tokens, int past,
                        int heads, int kvHeads, int dk, int dv, float scale) {
        require(tokens > 0 && past >= 0, "tokens must be positive and past >= 0, got " + tokens + ", " + past);
        require(heads > 0 && kvHeads > 0 && heads % kvHeads == 0,
                "heads must be a positive multiple of kv heads, got " + heads + " and " + kvHeads);
        require(dk > 0 && dv > 0 && dk <= MAX_HEAD_DIM && dv <= MAX_HEAD_DIM && dk + dv <= 384,
                "head dims must be in [1, 256] with dk + dv <= 384, got " + dk + ", " + dv);
        int keys = past + tokens;
        fitsBf16(q, (long) tokens * heads * dk, "q");
        fitsBf16(k, (long) keys * kvHeads * dk, "k");
        fitsBf16(v, (long) keys * kvHeads * dv, "v");
        fits(out, (long) tokens * heads * dv, "out");
        prefillCausal.launch((tokens + 15) / 16, heads, 1, 128, 32 * (dk + dv) * Float.BYTES).ptr(q).ptr(k).ptr(v)
                .ptr(out).i32(tokens).i32(past).i32(heads).i32(kvHeads).i32(dk).i32(dv).f32(scale).go();
    }
}
