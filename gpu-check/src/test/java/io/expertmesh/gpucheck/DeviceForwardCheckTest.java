package io.expertmesh.gpucheck;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.cuda.forward.DeviceOps;
import io.expertmesh.cuda.forward.DeviceTensor;
import io.expertmesh.cuda.forward.HostOps;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The GPU check's device-forward comparison can fail: HostOps with noisy products does. */
class DeviceForwardCheckTest {
    private static final Path FIXTURES = Path.of("../core/src/test/resources/fixtures");

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
            CheckResult clean = DeviceForwardCheck.compare(FIXTURES.resolve("deepseek-v3-tiny/bf16"), host,
                    new VectorKernels(pool), new int[]{1, 17, 42, 99, 5}, 4, 4);
            assertTrue(clean.passed(), clean.toString());
            CheckResult r = DeviceForwardCheck.compare(FIXTURES.resolve("deepseek-v3-tiny/bf16"), noisy,
                    new VectorKernels(pool), new int[]{1, 17, 42, 99, 5}, 4, 4);
            assertFalse(r.passed(), r.toString());
        }
    }
}
