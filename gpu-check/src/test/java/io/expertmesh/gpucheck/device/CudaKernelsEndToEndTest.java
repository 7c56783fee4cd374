package io.expertmesh.gpucheck.device;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.cuda.CudaDevice;
import io.expertmesh.cuda.CudaKernels;
import io.expertmesh.gpucheck.CheckResult;
import io.expertmesh.gpucheck.GreedyComparison;
import java.nio.file.Path;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The whole model with CudaKernels: greedy tokens equal the CPU's on the fixture models. Skipped without a GPU. */
class CudaKernelsEndToEndTest {
    private static final Path FIXTURES = Path.of("../core/src/test/resources/fixtures");

    @ParameterizedTest
    @ValueSource(strings = {"deepseek-v3-tiny/bf16", "deepseek-v3-tiny/f32", "mixtral-tiny", "qwen3-moe-tiny"})
    void greedy_fixtureModel_sameTokensAsCpu(String fixture) throws Exception {
        assumeTrue(CudaDevice.available(), () -> CudaDevice.probe().describe());
        try (ComputePool pool = ComputePool.create(2); CudaKernels gpu = new CudaKernels(pool)) {
            CheckResult r = GreedyComparison.compare(FIXTURES.resolve(fixture), gpu, new VectorKernels(pool),
                    new int[]{1, 17, 42, 99, 5, 200, 3, 77}, 12);
            assertTrue(r.passed(), r.toString());
            assertFalse(gpu.residency().startsWith("0 weights"), gpu.residency());
        }
    }
}
