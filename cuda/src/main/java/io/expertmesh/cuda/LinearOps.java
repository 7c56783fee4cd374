package io.expertmesh.cuda;

import static io.expertmesh.cuda.ElementwiseOps.fits;
import static io.expertmesh.cuda.ElementwiseOps.fitsBf16;
import static io.expertmesh.cuda.ElementwiseOps.require;

/** Launchers for {@code linear.cu}: products with a weight in the checkpoint's [out, in] layout. */
public final class LinearOps {
    private static final int WARPS_PER_BLOCK = 8;
    /** Weight rows per block of the staged kernels (8 warps of 4 rows: LX_WARPS x LX_ROWS in linear.cu). */
    private static final int STAGED_ROWS_PER_BLOCK = 32;
    /**
     * Batches above this run {@code linear_*w_f32_xs} (activations staged in shared memory once per 32 weight
     * rows); up to it, {@code linear_*w_f32} (a warp per weight row: at most 8 activation rows, read once per
     * pass). Both give the same bits, so the choice is speed only. 8 is where the warp-row kernel's activation
     * reads start to repeat; the crossover has not been measured on a device yet (GpuKernelBench's
     * {@code linear} lines print both kernels at batch 1, 8, 16 and 64).
     */
    public static final int STAGED_ABOVE_BATCH = 8;
    private static final int TILE = 64;

    // Resolved once here: a launch looks nothing up.
    private final CudaKernel gemmBf16Tc;
    private final CudaKernel groupedGemmBf16Tc;
    private final CudaKernel linearBf16wF32;
    private final CudaKernel linearBf16wF32Xs;
    private final CudaKernel linearF32wF32;
    private final CudaKernel linearF32wF32Xs;

    public LinearOps(CudaDevice device) {
        this.gemmBf16Tc = device.kernel(KernelSpecs.GEMM_BF16_TC);
        this.groupedGemmBf16Tc = device.kernel(KernelSpecs.GROUPED_GEMM_BF16_TC);
        this.linearBf16wF32 = device.kernel(KernelSpecs.LINEAR_BF16W_F32);
        this.linearBf16wF32Xs = device.kernel(KernelSpecs.LINEAR_BF16W_F32_XS);
        this.linearF32wF32 = device.kernel(KernelSpecs.LINEAR_F32W_F32);
        this.linearF32wF32Xs = device.kernel(KernelSpecs.LINEAR_F32W_F32_XS);
    }

    /**
     * {@code out[b, r] = Σ_c w[r, c] · x[b, c]}: float32 activations and accumulation, weights bf16 or f32; the
     * kernel picked by batch size ({@link #STAGED_ABOVE_BATCH}).
     */
    public void linear(DeviceBuffer w, boolean bf16Weights, DeviceBuffer x, DeviceBuffer out, int rows, int cols,
                       int batch) {
        linear(w, bf16Weights, x, out, rows, cols, batch, batch > STAGED_ABOVE_BATCH);
    }

    /** As {@link #linear(DeviceBuffer, boolean, DeviceBuffer, DeviceBuffer, int, int, int)} on the kernel named. */
    public void linear(DeviceBuffer w, boolean bf16Weights, DeviceBuffer x, DeviceBuffer out, int rows, int cols,
                       int batch, boolean staged) {
        require(rows > 0 && cols > 0 && batch > 0, "rows, cols and batch must be positive, got " + rows + ", "
                + cols + ", " + batch);
        if (bf16Weights) {
            fitsBf16(w, (long) rows * cols, "weight");
        } else {
            fits(w, (long) rows * cols, "weight");
        }
        fits(x, (long) batch * cols, "x");
        fits(out, (long) batch * rows, "out");
        if (staged) {

            (bf16Weights ? linearBf16wF32Xs : linearF32wF32Xs).launch((rows + STAGED_ROWS_PER_BLOCK - 1)
                    / STAGED_ROWS_PER_BLOCK, 1, 1, WARPS_PER_BLOCK * 32, 0).ptr(w).ptr(x).ptr(out).i32(rows).i32(cols)
                    .i32(batch).go();
        } else {
            (bf16Weights ? linearBf16wF32 : linearF32wF32).launch((rows + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK, 1,
                    1, WARPS_PER_BLOCK * 32, 0).ptr(w).ptr(x).ptr(out).i32(rows).i32(cols).i32(batch).go();
        }
    }

    /** Tensor cores: {@code C[m, n] = Σ_k A[m, k] · B[n, k]}, A and B bf16, C float32 [M, N]. */
    public void gemmBf16(DeviceBuffer a, DeviceBuffer b, DeviceBuffer c, int m, int n, int k) {
        require(m > 0 && n > 0 && k > 0, "M, N, K must be positive, got " + m + ", " + n + ", " + k);
        fitsBf16(a, (long) m * k, "A");
        fitsBf16(b, (long) n * k, "B");
        fits(c, (long) m * n, "C");
        gemmBf16Tc.launch((n + TILE - 1) / TILE, (m + TILE - 1) / TILE, 1, 128, 0).ptr(a).ptr(b).ptr(c).i32(m).i32(n)
                .i32(k).go();
    }

    /**
     * Expert FFN products grouped by expert: rows {@code [offsets[e], offsets[e+1])} of A times expert e's
     * weight {@code W[e]} ([N, K] each, stacked), into the same rows of C. {@code offsetsHost} is the same
     * table as {@code offsets} (the host copy sizes the grid).
     */
    public void groupedGemmBf16(DeviceBuffer a, DeviceBuffer w, DeviceBuffer c, DeviceBuffer offsets,
                                int[] offsetsHost, int n, int k) {
        int experts = offsetsHost.length - 1;
        require(experts >= 1 && offsetsHost[0] == 0, "offsets must start at 0 and name at least one expert");
        int maxRows = 0;
        for (int e = 0; e < experts; e++) {
            int rows = offsetsHost[e + 1] - offsetsHost[e];
            require(rows >= 0, "offsets must not decrease (expert " + e + ")");
            maxRows = Math.max(maxRows, rows);
        }
        int total = offsetsHost[experts];
        require(n > 0 && k > 0, "N and K must be positive, got " + n + ", " + k);
        if (maxRows == 0) {
            return;
        }
        fitsBf16(a, (long) total * k, "A");
        fitsBf16(w, (long) experts * n * k, "W");
        fits(c, (long) total * n, "C");
        fits(offsets, experts + 1, "offsets");
        groupedGemmBf16Tc.launch((n + TILE - 1) / TILE, (maxRows + TILE - 1) / TILE, experts, 128, 0).ptr(a).ptr(w)
                .ptr(c).ptr(offsets).i32(n).i32(k).go();
    }
}
