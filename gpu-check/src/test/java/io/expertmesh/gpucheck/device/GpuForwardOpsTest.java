package io.expertmesh.gpucheck.device;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.expertmesh.cuda.CudaDevice;
import io.expertmesh.cuda.forward.CudaOps;
import io.expertmesh.cuda.forward.HostOps;
import io.expertmesh.gpucheck.CheckResult;
import io.expertmesh.gpucheck.ForwardOpsChecks;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Each CudaOps operation against HostOps (see {@link ForwardOpsChecks}: fresh random inputs at odd sizes, outputs
 * poisoned with NaN or compared whole over a random background). Skipped, not failed, without a GPU.
 */
class GpuForwardOpsTest {
    private ForwardOpsChecks checks;

    @BeforeEach
    void needsGpu() {
        assumeTrue(CudaDevice.available(), () -> CudaDevice.probe().describe());
        checks = new ForwardOpsChecks(CudaDevice.get(), System.nanoTime());
    }

    @AfterEach
    void free() {
        if (checks != null) {
            checks.close();
        }
    }

    private void pass(CheckResult r) {
        checks.release();
        assertTrue(r.passed(), r.toString());
    }

    @Test
    void copiesAndZero_offsetsRespected() {
        pass(checks.copyRoundTrip());
        pass(checks.zero(1001, 777));
    }

    @Test
    void embed_f32AndBf16Tables() {
        pass(checks.embed(false, 37, 45, 13));
        pass(checks.embed(true, 37, 45, 13));
    }

    @Test
    void rmsNorm_stridedAndInPlace() {
        pass(checks.rmsNorm(7, 301, 311, 307, false));
        pass(checks.rmsNorm(5, 301, 311, 311, true));
        pass(checks.rmsNorm(1, 5, 5, 5, false));
    }

    @Test
    void rope_bothConventions() {
        pass(checks.rope(true, 5, 3, 66));
        pass(checks.rope(false, 5, 3, 66));
    }

    @Test
    void linearAndHeadLinear_bf16AndF32Weights() {
        pass(checks.linear(true, 133, 301, 11));
        pass(checks.linear(false, 67, 1001, 3));
        pass(checks.headLinear(true, 5, 37, 29, 11));
        pass(checks.headLinear(false, 3, 19, 131, 9));
        pass(checks.headLinear(true, 1, 1, 1, 1));
    }

    @Test
    void copyBiasAddSwiglu() {
        pass(checks.copyStrided(7, 3, 19));
        pass(checks.addBias(9, 333));
        pass(checks.add(10_007));
        pass(checks.swiglu(10_007, false));
        pass(checks.swiglu(1001, true));
    }

    @Test
    void kvWrite_bitExactRoundingAndBackgroundUntouched() {
        pass(checks.kvWrite(13, 27, 41, 9));
        pass(checks.kvWrite(1, 1, 3, 2));
    }

    @Test
    void mlaAttention_genericKernelAnyLatentAndRope() {
        pass(checks.mla(false, new int[]{1, 37, 200, 129}, 5, 23, 10, 7));
        pass(checks.mla(false, new int[]{64, 65, 1000}, 3, 32, 16, 16));
        pass(checks.mla(false, new int[]{1, 100, 700}, 20, 512, 64, 16));
    }

    @Test
    void mlaAttention_v3ShapesOnTheTensorCoreKernel() {
        pass(checks.mla(true, new int[]{1, 100, 700}, 20, 512, 64, 16));
        pass(checks.mla(true, new int[]{65, 3}, 3, 512, 64, 7));
    }

    @Test
    void gqaAttention_pagedGroupedHeads() {
        pass(checks.gqa(new int[]{1, 45, 300}, 12, 4, 72, 16));
        pass(checks.gqa(new int[]{17, 2}, 8, 8, 128, 7));
    }

    @Test
    void topkGate_sameIdsAndWeightsAsHost() {
        pass(checks.topkGate("v3 sigmoid+bias+groups", 37, 64, 6, true, true, 8, 3, true, 2.5f));
        pass(checks.topkGate("mixtral softmax top2", 37, 8, 2, false, false, 1, 1, true, 1f));
        pass(checks.topkGate("qwen2 softmax no-renorm", 37, 60, 4, false, false, 1, 1, false, 1f));
    }

    @Test
    void gatherScatterGated() {
        pass(checks.gatherRows(41, 37, 13, 3));
        pass(checks.scatterAddRows(29, 37, 13, 5));
        pass(checks.gatedAdd(11, 301));
    }
}
