package io.expertmesh.cuda.check;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.cuda.forward.DeviceOps;
import io.expertmesh.cuda.forward.DeviceTensor;
import io.expertmesh.cuda.forward.HostOps;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The GPU check's device-forward greedy comparison, run here on HostOps (what CudaOps is checked against): it must
 * pass on a fixture, so a failure on a GPU host points at CudaOps, not at the comparison.
 */
class DeviceGreedyComparisonTest {
    private static final Path FIXTURES = Path.of("../core/src/test/resources/fixtures");

    @Test
    void hostOps_sameTokensAsCpu_onMlaAndGqaFixtures() throws Exception {
        int[] prompt = {1, 17, 42, 99, 5, 200, 3, 77};
        try (ComputePool pool = ComputePool.create(2)) {
            for (String fixture : new String[]{"deepseek-v3-tiny/bf16", "qwen2-moe-tiny"}) {
                CheckResult r = DeviceGreedyComparison.compare(FIXTURES.resolve(fixture), pool, new HostOps(),
                        prompt, 6);
                assertTrue(r.passed(), r.toString());
                assertTrue(r.detail().startsWith("tokens [") && r.name().contains("host emulation"), r.toString());
            }
        }
    }

    @Test
    void opsWithNoisyProducts_fail() throws Exception {
        HostOps host = new HostOps();
        Random noise = new Random(3);
        // HostOps whose linear adds noise to its output: what a wrong GEMM kernel would look like.
        DeviceOps noisy = (DeviceOps) Proxy.newProxyInstance(DeviceOps.class.getClassLoader(),
                new Class<?>[]{DeviceOps.class}, (proxy, method, args) -> {
                    Object r;
                    try {
                        r = method.invoke(host, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                    if (method.getName().equals("linear")) {
                        DeviceTensor out = (DeviceTensor) args[2];
                        int n = (int) args[3] * (int) args[5];
                        float[] v = new float[n];
                        host.copyOut(out, 0, v, 0, n);
                        for (int i = 0; i < n; i++) {
                            v[i] += (float) noise.nextGaussian();
                        }
                        host.copyIn(v, 0, out, 0, n);
                    }
                    return r;
                });
        try (ComputePool pool = ComputePool.create(2)) {
            CheckResult r = DeviceGreedyComparison.compare(FIXTURES.resolve("deepseek-v3-tiny/bf16"), pool, noisy,
                    new int[]{1, 17, 42, 99, 5}, 4);
            assertFalse(r.passed(), r.toString());
        }
    }
}
