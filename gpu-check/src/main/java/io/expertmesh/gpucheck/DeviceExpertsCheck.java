package io.expertmesh.gpucheck;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.model.ExpertRunner;
import io.expertmesh.core.model.LocalExperts;
import io.expertmesh.core.model.Moe;
import io.expertmesh.core.model.StepContext;
import io.expertmesh.cuda.forward.DeviceExperts;
import io.expertmesh.cuda.forward.DeviceOps;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * An expert worker's experts in device memory ({@link DeviceExperts}) against core's {@link LocalExperts} on the
 * CPU: random tokens, each with 0 to 3 distinct held experts and random weights; float32 throughout, so the sums
 * agree to float32 rounding of the summation order.
 */
public final class DeviceExpertsCheck {
    static final double TOL = 1e-5;

    private DeviceExpertsCheck() {
    }

    /** On the first MoE layer of {@code modelDir}, every expert held. */
    public static CheckResult compare(Path modelDir, DeviceOps ops, Kernels cpu, long seed) throws IOException {
        try (LoadedModel m = LoadedModel.open(modelDir, cpu, (a, b) -> { });
             DeviceExperts device = new DeviceExperts(ops)) {
            int layer = m.config().moeLayers().stream().sorted().findFirst()
                    .orElseThrow(() -> new IllegalArgumentException(modelDir + " has no MoE layer"));
            LocalExperts local = (LocalExperts) ((Moe) m.transformer().block(layer).ffn()).routed();
            io.expertmesh.core.model.Mlp[] experts = new io.expertmesh.core.model.Mlp[local.size()];
            List<Integer> held = new ArrayList<>();
            for (int e = 0; e < experts.length; e++) {
                experts[e] = local.expert(e);
                held.add(e);
            }
            int hidden = m.config().hiddenSize();
            return compare("worker experts " + modelDir.getFileName(), device.create(layer, experts, hidden), local,
                    StepContext.standalone(cpu), new Random(seed), 37, hidden, held);
        }
    }

    /** {@code tokens} random rows through both runners; passes within {@link #TOL} relative L2. */
    public static CheckResult compare(String name, ExpertRunner device, LocalExperts cpu, StepContext ctx,
                                      Random rnd, int tokens, int hidden, List<Integer> held) {
        float[] xn = new float[tokens * hidden];
        for (int i = 0; i < xn.length; i++) {
            xn[i] = (float) rnd.nextGaussian();
        }
        int[] offsets = new int[tokens + 1];
        List<Integer> ids = new ArrayList<>();
        for (int t = 0; t < tokens; t++) {
            List<Integer> pool = new ArrayList<>(held);
            Collections.shuffle(pool, rnd);
            List<Integer> mine = new ArrayList<>(pool.subList(0, rnd.nextInt(Math.min(4, pool.size() + 1))));
            mine.sort(null);
            ids.addAll(mine);
            offsets[t + 1] = ids.size();
        }
        float[] w = new float[ids.size()];
        for (int i = 0; i < w.length; i++) {
            w[i] = rnd.nextFloat();
        }
        int[] idArray = ids.stream().mapToInt(Integer::intValue).toArray();
        float[] want = new float[tokens * hidden];
        float[] got = new float[tokens * hidden];
        cpu.run(xn, tokens, offsets, idArray, w, want, ctx);
        device.run(xn, tokens, offsets, idArray, w, got, ctx);
        return new CheckResult(name, Errors.relativeL2(got, want), TOL, ids.size() + " pairs over " + tokens
                + " tokens");
    }
}
