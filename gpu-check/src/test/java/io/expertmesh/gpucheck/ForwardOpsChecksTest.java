package io.expertmesh.gpucheck;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.cuda.forward.DeviceOps;
import io.expertmesh.cuda.forward.DeviceTensor;
import io.expertmesh.cuda.forward.HostOps;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The GPU host's op-by-op checks, run here with HostOps standing in for CudaOps: every check must run (no wrong
 * size in the check code itself would then waste a GPU run) and agree exactly; and a wrong op must fail.
 */
class ForwardOpsChecksTest {

    @Test
    void hostOpsAgainstItself_everyCheckRunsAndAgreesExactly() {
        long seed = System.nanoTime(); // a new seed each run; printed with a failure so it can be replayed
        try (ForwardOpsChecks checks = new ForwardOpsChecks(new HostOps(), new HostOps(), seed)) {
            List<CheckResult> results = checks.all();
            assertEquals(36, results.size());
            for (CheckResult r : results) {
                assertTrue(r.passed() && r.error() == 0, "seed " + seed + ": " + r);
            }
        }
    }

    /** HostOps whose {@code op} output (argument {@code outArg}, {@code n} floats) is off by 1e-3 relative. */
    private static DeviceOps skewed(String op, int outArg) {
        HostOps host = new HostOps();
        return (DeviceOps) Proxy.newProxyInstance(DeviceOps.class.getClassLoader(), new Class<?>[]{DeviceOps.class},
                (proxy, method, args) -> {
                    Object r;
                    try {
                        r = method.invoke(host, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                    if (method.getName().equals(op)) {
                        DeviceTensor out = (DeviceTensor) args[outArg];
                        float[] v = new float[(int) out.length()];
                        host.copyOut(out, 0, v, 0, v.length);
                        for (int i = 0; i < v.length; i++) {
                            v[i] *= 1.001f;
                        }
                        host.copyIn(v, 0, out, 0, v.length);
                    }
                    return r;
                });
    }

    @Test
    void wrongOps_failTheirChecks() {
        try (ForwardOpsChecks checks = new ForwardOpsChecks(skewed("rmsNorm", 4), new HostOps(), 1)) {
            assertFalse(checks.rmsNorm(7, 301, 311, 307, false).passed());
            assertTrue(checks.add(1001).passed());
        }
        try (ForwardOpsChecks checks = new ForwardOpsChecks(skewed("mlaAttention", 4), skewed("mlaAttention", 4), 2)) {
            assertFalse(checks.mla(false, new int[]{1, 37, 200, 129}, 5, 23, 10, 7).passed());
        }
        try (ForwardOpsChecks checks = new ForwardOpsChecks(skewed("headLinear", 8), new HostOps(), 3)) {
            assertFalse(checks.headLinear(true, 5, 37, 29, 11).passed());
        }
    }
}
