package io.expertmesh.gpucheck.bench;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.model.ExpertRunner;
import io.expertmesh.core.model.LocalExperts;
import io.expertmesh.core.model.Mlp;
import io.expertmesh.core.model.Moe;
import io.expertmesh.core.model.StepContext;
import io.expertmesh.core.synthetic.SyntheticModels;
import io.expertmesh.cuda.DeviceCounts;
import io.expertmesh.cuda.forward.CountingOps;
import io.expertmesh.cuda.forward.DeviceExperts;
import io.expertmesh.cuda.forward.HostOps;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

/**
 * The host-side work of one RunExperts call on an expert worker whose experts live in device memory
 * ({@link DeviceExperts}): launches, copies and waits, counted by {@link CountingOps} around {@link HostOps}, as
 * {@link StepCounts} counts a router's decode step. The worker holds every routed expert of the first MoE layer;
 * each of {@code batch} tokens names its top-k distinct experts drawn at random (seeded), as a router's gate
 * would spread them. Topologies as {@link StepCounts#config}. Usage: {@code WorkerCounts [BATCH...]} (default
 * 1 64).
 */
public final class WorkerCounts {
    private WorkerCounts() {
    }

    public static void main(String[] args) throws Exception {
        List<Integer> batches = StepCounts.batches(args);
        for (String shape : List.of("bench", "v3")) {
            Path dir = Files.createTempDirectory("expertmesh-counts");
            SyntheticModels.writeModel(StepCounts.config(shape), 5, dir);
            for (int b : batches) {
                System.out.printf("worker counts, %-5s topology, RunExperts of %3d tokens: %s%n", shape, b,
                        runExperts(dir, b, 11).counts());
            }
        }
    }

    /** What one call did and on how many experts. */
    public record Call(DeviceCounts counts, int activeExperts, int pairs) {
    }

    /** The counts of one RunExperts call of {@code tokens} tokens on the first MoE layer of {@code modelDir}. */
    public static Call runExperts(Path modelDir, int tokens, long seed) throws Exception {
        try (ComputePool pool = ComputePool.create(1);
             LoadedModel model = LoadedModel.open(modelDir, new VectorKernels(pool), (a, b) -> { })) {
            int layer = model.config().moeLayers().stream().sorted().findFirst().orElseThrow();
            int hidden = model.config().hiddenSize();
            int k = model.config().expertsPerToken();
            LocalExperts local = (LocalExperts) ((Moe) model.transformer().block(layer).ffn()).routed();
            Mlp[] experts = new Mlp[local.size()];
            for (int e = 0; e < experts.length; e++) {
                experts[e] = local.expert(e);
            }
            Random rnd = new Random(seed);
            int[] offsets = new int[tokens + 1];
            int[] ids = new int[tokens * k];
            boolean[] active = new boolean[experts.length];
            for (int t = 0; t < tokens; t++) {
                int[] mine = rnd.ints(0, experts.length).distinct().limit(k).sorted().toArray();
                System.arraycopy(mine, 0, ids, t * k, k);
                for (int e : mine) {
                    active[e] = true;
                }
                offsets[t + 1] = (t + 1) * k;
            }
            float[] weights = new float[ids.length];
            for (int i = 0; i < weights.length; i++) {
                weights[i] = rnd.nextFloat();
            }
            float[] xn = new float[tokens * hidden];
            for (int i = 0; i < xn.length; i++) {
                xn[i] = (float) rnd.nextGaussian();
            }
            CountingOps ops = new CountingOps(new HostOps(), false);
            try (DeviceExperts device = new DeviceExperts(ops)) {
                ExpertRunner runner = device.create(layer, experts, hidden);
                StepContext ctx = StepContext.standalone(new VectorKernels(pool));
                DeviceCounts before = ops.counts();
                runner.run(xn, tokens, offsets, ids, weights, new float[tokens * hidden], ctx);
                int activeExperts = 0;
                for (boolean a : active) {
                    activeExperts += a ? 1 : 0;
                }
                return new Call(ops.counts().minus(before), activeExperts, ids.length);
            }
        }
    }
}
