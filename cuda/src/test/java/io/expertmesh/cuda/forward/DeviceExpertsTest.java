package io.expertmesh.cuda.forward;

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
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** An expert worker's experts in device memory (on HostOps here) against core's LocalExperts on the CPU. */
class DeviceExpertsTest {
    private static final Path FIXTURE = Path.of("../core/src/test/resources/fixtures/deepseek-v3-tiny/f32");

    /** Random pairs over the held experts: per token 0..3 distinct experts, ascending. */
    private record Pairs(int[] offsets, int[] ids, float[] weights) {
        static Pairs random(Random rnd, int tokens, List<Integer> held) {
            int[] offsets = new int[tokens + 1];
            List<Integer> ids = new ArrayList<>();
            for (int t = 0; t < tokens; t++) {
                List<Integer> pool = new ArrayList<>(held);
                java.util.Collections.shuffle(pool, rnd);
                List<Integer> mine = new ArrayList<>(pool.subList(0, rnd.nextInt(Math.min(4, pool.size() + 1))));
                mine.sort(null);
                ids.addAll(mine);
                offsets[t + 1] = ids.size();
            }
            float[] w = new float[ids.size()];
            for (int i = 0; i < w.length; i++) {
                w[i] = rnd.nextFloat();
            }
            return new Pairs(offsets, ids.stream().mapToInt(Integer::intValue).toArray(), w);
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
        float[] xn = new float[tokens * hidden];
        for (int i = 0; i < xn.length; i++) {
            xn[i] = (float) rnd.nextGaussian();
        }
        Pairs p = Pairs.random(rnd, tokens, held);
        float[] want = new float[tokens * hidden];
        float[] got = new float[tokens * hidden];
        cpu.run(xn, tokens, p.offsets, p.ids, p.weights, want, ctx);
        device.run(xn, tokens, p.offsets, p.ids, p.weights, got, ctx);
        double err = DeviceForwardTest.relL2(got, want);
        assertTrue(err < 1e-5, "relative L2 " + err);
    }
}
