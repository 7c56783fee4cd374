package io.expertmesh.cuda.forward;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.model.ForwardBatch;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The forward pass's calls against CudaOps's argument checks, without a GPU: DeviceForward on {@link
 * ShapeCheckedOps} (HostOps behind {@link OpShapes}) must run every family's prefill and decode without a rejected
 * call, and compute exactly what it computes on plain HostOps.
 */
class DeviceForwardShapesTest {
    private static final Path FIXTURES = Path.of("../core/src/test/resources/fixtures");
    private static ComputePool pool;

    @BeforeAll
    static void pool() {
        pool = ComputePool.create(2);
    }

    @AfterAll
    static void closePool() {
        pool.close();
    }

    @ParameterizedTest
    @ValueSource(strings = {"deepseek-v3-tiny/bf16", "deepseek-v3-tiny/f32", "deepseek-v3-qlora0",
            "deepseek-v3-groups4", "deepseek-v3-long-yarn", "mixtral-tiny", "qwen2-moe-tiny", "qwen3-moe-tiny"})
    void everyFamily_prefillAndDecode_passCudaOpsChecks(String fixture) throws Exception {
        try (LoadedModel m = LoadedModel.open(FIXTURES.resolve(fixture), new VectorKernels(pool), (a, b) -> { })) {
            int[] prompt = {1, 17, 42, 99, 5, 200, 3};  // 7 tokens: crosses blocks of 4
            ShapeCheckedOps checked = new ShapeCheckedOps();
            float[] want = run(new DeviceForward(m.transformer(), new HostOps(), 16, 4, null), prompt);
            float[] got = run(new DeviceForward(m.transformer(), checked, 16, 4, null), prompt);
            assertTrue(checked.calls > 0, "no operation went through the checks");
            assertArrayEquals(want, got, fixture + ": logits");
        }
    }

    /** Prefill, then two decode steps; the last step's logits. */
    private static float[] run(DeviceForward dev, int[] prompt) {
        try (dev) {
            float[] lg = new float[dev.config().vocabSize()];
            try (DeviceKvCache cache = dev.newCache(prompt.length + 3)) {
                DeviceForward.Runner r = dev.newRunner();
                r.forward(ForwardBatch.ofSequence(prompt, 0, cache, prompt.length - 1), lg);
                for (int s = 0; s < 2; s++) {
                    r.forward(ForwardBatch.ofSequence(new int[]{io.expertmesh.cuda.check.DeviceForwardCheck.argmax(lg)}, prompt.length + s,
                            cache, 0), lg);
                }
            }
            return lg;
        }
    }
}
