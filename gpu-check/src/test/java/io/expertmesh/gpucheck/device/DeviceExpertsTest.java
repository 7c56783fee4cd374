package io.expertmesh.gpucheck.device;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.model.ExpertRunner;
import io.expertmesh.core.model.LocalExperts;
import io.expertmesh.core.model.Mlp;
import io.expertmesh.core.model.Moe;
import io.expertmesh.core.model.StepContext;
import io.expertmesh.cuda.forward.DeviceExperts;
import io.expertmesh.cuda.forward.HostOps;
import io.expertmesh.gpucheck.CheckResult;
import io.expertmesh.gpucheck.DeviceExpertsCheck;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** An expert worker's experts in device memory (on HostOps here) against core's LocalExperts on the CPU. */
class DeviceExpertsTest {
    private static final Path FIXTURE = Path.of("../core/src/test/resources/fixtures/deepseek-v3-tiny/f32");

    @Test
    void checkOfTheGpuHost_passesOnHostOps() throws Exception {
        try (ComputePool pool = ComputePool.create(2)) {
            CheckResult r = DeviceExpertsCheck.compare(FIXTURE, new HostOps(), new VectorKernels(pool), 5);
            assertTrue(r.passed(), r.toString());
        }
    }

    @Test
    void heldSubset_sameSumsAsLocalExperts_andFollowsLoadsAndUnloads() throws Exception {
        try (ComputePool pool = ComputePool.create(2);
             LoadedModel m = LoadedModel.open(FIXTURE, new VectorKernels(pool), (a, b) -> { });
             DeviceExperts device = new DeviceExperts(new HostOps())) {
            int layer = 1;
            int hidden = m.config().hiddenSize();
            LocalExperts all = (LocalExperts) ((Moe) m.transformer().block(layer).ffn()).routed();
            Mlp[] held = new Mlp[all.size()];
            for (int e : new int[]{0, 2, 3, 5, 7}) {
                held[e] = all.expert(e);
            }
            Random rnd = new Random(9);
            StepContext ctx = StepContext.standalone(new VectorKernels(pool));
            compare(device.create(layer, held, hidden), new LocalExperts(held, hidden), ctx, rnd, 13, hidden,
                    List.of(0, 2, 3, 5, 7));
            // Unload 3, load 4: the runner made after the change serves the new set.
            held[3] = null;
            held[4] = all.expert(4);
            ExpertRunner after = device.create(layer, held, hidden);
            compare(after, new LocalExperts(held, hidden), ctx, rnd, 9, hidden, List.of(0, 2, 4, 5, 7));
            assertTrue(device.describe().startsWith("5 experts"), device.describe());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> after.run(
                    new float[hidden], 1, new int[]{0, 1}, new int[]{3}, new float[]{1f}, new float[hidden], ctx));
            assertTrue(e.getMessage().contains("expert 3 is not held"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> after.run(new float[hidden], 1,
                    new int[]{0, 2}, new int[]{4, 4}, new float[]{1f, 1f}, new float[hidden], ctx));
            assertTrue(e.getMessage().contains("twice"), e.getMessage());
        }
    }

    private static void compare(ExpertRunner device, LocalExperts cpu, StepContext ctx, Random rnd, int tokens,
                                int hidden, List<Integer> held) {
        CheckResult r = DeviceExpertsCheck.compare("experts " + held, device, cpu, ctx, rnd, tokens, hidden, held);
        assertTrue(r.passed(), r.toString());
    }
}
