package io.expertmesh.gpucheck.device;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.expertmesh.cuda.CudaDevice;
import io.expertmesh.gpucheck.CheckResult;
import io.expertmesh.gpucheck.KernelChecks;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Each kernel against its CPU reference (see {@link KernelChecks}: fresh random inputs at odd sizes, outputs
 * poisoned with NaN). Skipped, not failed, without a GPU.
 */
class GpuKernelsTest {
    private KernelChecks checks;

    @BeforeEach
    void needsGpu() {
        assumeTrue(CudaDevice.available(), () -> CudaDevice.probe().describe());
        checks = new KernelChecks(CudaDevice.get(), System.nanoTime());
    }

    private static void pass(CheckResult r) {
        assertTrue(r.passed(), r.toString());
    }

    @Test
    void rmsNorm_oddSizes_matchesScalarKernels() {
        pass(checks.rmsNorm(7, 1001));
        pass(checks.rmsNorm(1, 5));
    }

    @Test
    void rope_bothConventions_matchScalarKernelsAndLeaveOtherElements() {
        pass(checks.rope(true, 5, 3, 66));
        pass(checks.rope(false, 5, 3, 66));
        pass(checks.rope(true, 9, 1, 64));
    }

    @Test
    void swiglu_oddLength_matchesScalarKernels() {
        pass(checks.swiglu(10_007));
    }

    @Test
    void topkGate_everyFamilyRule_sameIdsAndWeightsAsGate() {
        pass(checks.topkGate("v3 sigmoid+bias+groups", 37, 64, 6, true, true, 8, 3, true, 2.5f));
        pass(checks.topkGate("v3 full 256", 5, 256, 8, true, true, 8, 4, true, 2.5f));
        pass(checks.topkGate("mixtral softmax top2", 37, 8, 2, false, false, 1, 1, true, 1f));
        pass(checks.topkGate("qwen2 softmax no-renorm", 37, 60, 4, false, false, 1, 1, false, 1f));
    }

    @Test
    void linear_bf16AndF32Weights_scalarAndVectorPaths_matchScalarKernels() {
        pass(checks.linear(true, 333, 1001, 11));
        pass(checks.linear(true, 257, 1024, 9));
        pass(checks.linear(false, 129, 1000, 3));
        pass(checks.linear(false, 65, 37, 1));
    }

    @Test
    void gemmBf16_oddShapes_matchesReference() {
        pass(checks.gemmBf16(100, 77, 1001));
        pass(checks.gemmBf16(257, 130, 72));
        pass(checks.gemmBf16(1, 1, 1));
    }

    @Test
    void groupedGemm_emptyAndUnevenExperts_matchesReference() {
        pass(checks.groupedGemm(new int[]{3, 0, 70, 17, 1}, 96, 200));
        pass(checks.groupedGemm(new int[]{0, 129}, 33, 45));
    }

    @Test
    void mlaDecode_pagedSplitKv_matchesReference() {
        pass(checks.mlaDecode(new int[]{1, 63, 64, 200, 1000}, 20, 16, 0));
        pass(checks.mlaDecode(new int[]{777}, 128, 16, 0));
    }

    @Test
    void mlaDecode_sharedMemoryAccumulatorBaseline_matchesReference() {
        pass(checks.mlaDecode(new int[]{1, 63, 64, 200, 1000}, 20, 16, 0, true));
        pass(checks.mlaDecode(new int[]{65}, 3, 7, 5, true));
    }

    @Test
    void mlaDecode_moreSplitsThanTiles_emptySplitsIgnoredByMerge() {
        pass(checks.mlaDecode(new int[]{1, 5, 130}, 16, 64, 3));
        pass(checks.mlaDecode(new int[]{65}, 3, 7, 5));
    }

    @Test
    void gqaDecode_pagedGroupedHeads_matchesReference() {
        pass(checks.gqaDecode(new int[]{1, 45, 300}, 12, 4, 72, 16));
        pass(checks.gqaDecode(new int[]{17, 2}, 8, 8, 128, 32));
    }

    @Test
    void prefill_causalWithPast_matchesReference() {
        pass(checks.prefill(45, 19, 6, 2, 72, 40));
        pass(checks.prefill(33, 0, 4, 4, 128, 128));
        pass(checks.prefill(1, 0, 2, 1, 192, 128));
    }
}
