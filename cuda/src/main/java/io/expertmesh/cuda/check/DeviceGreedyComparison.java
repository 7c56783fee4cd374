package io.expertmesh.cuda.check;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.model.ForwardBatch;
import io.expertmesh.core.model.KvCache;
import io.expertmesh.core.model.Transformer;
import io.expertmesh.cuda.forward.DeviceForward;
import io.expertmesh.cuda.forward.DeviceKvCache;
import io.expertmesh.cuda.forward.DeviceOps;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Greedy decoding of one model twice: core's CPU {@link Transformer}, and the device-resident {@link DeviceForward}
 * on a {@link DeviceOps} (CudaOps on a GPU host). Token ids must be identical and every step's logits within
 * {@link #LOGIT_TOL} relative L2 (the device's KV pool is bf16, the CPU cache float32).
 */
public final class DeviceGreedyComparison {
    /** As DeviceForwardTest: logits agree to the bf16 rounding of the cache. */
    public static final double LOGIT_TOL = 2e-2;
    private static final int BLOCK_SIZE = 16;

    private DeviceGreedyComparison() {
    }

    public static CheckResult compare(Path modelDir, ComputePool pool, DeviceOps ops, int[] prompt, int steps)
            throws IOException {
        try (LoadedModel m = LoadedModel.open(modelDir, new VectorKernels(pool), (a, b) -> { })) {
            Transformer tr = m.transformer();
            int positions = prompt.length + steps;
            List<float[]> cpu = new ArrayList<>();
            List<Integer> cpuIds = new ArrayList<>();
            greedy(tr.config().vocabSize(), prompt, steps, cpu, cpuIds, tr.newCache(positions), tr::forward);
            List<float[]> dev = new ArrayList<>();
            List<Integer> devIds = new ArrayList<>();
            try (DeviceForward df = new DeviceForward(tr, ops, (positions + BLOCK_SIZE - 1) / BLOCK_SIZE + 1,
                    BLOCK_SIZE, null);
                 DeviceKvCache cache = df.newCache(positions)) {
                DeviceForward.Runner r = df.newRunner();
                greedy(tr.config().vocabSize(), prompt, steps, dev, devIds, cache, r::forward);
            }
            double worst = 0;
            for (int i = 0; i < cpu.size(); i++) {
                worst = Math.max(worst, Errors.relativeL2(dev.get(i), cpu.get(i)));
            }
            String name = "device forward greedy " + modelDir.getParent().getFileName() + "/"
                    + modelDir.getFileName() + " on " + ops.name();
            if (!cpuIds.equals(devIds)) {
                return new CheckResult(name, Double.NaN, LOGIT_TOL, "device " + devIds + " cpu " + cpuIds
                        + " (worst logits rel.err " + worst + ")");
            }
            return new CheckResult(name, worst, LOGIT_TOL, "tokens " + devIds + " prompt " + Arrays.toString(prompt));
        }
    }

    private interface Step {
        void forward(ForwardBatch batch, float[] logits);
    }

    /** Prefill, then greedy decode: the logits before each of {@code steps} picks, and the picks. */
    private static void greedy(int vocab, int[] prompt, int steps, List<float[]> logits, List<Integer> ids,
                               KvCache cache, Step step) {
        float[] lg = new float[vocab];
        for (int s = 0; s < steps; s++) {
            int[] tokens = s == 0 ? prompt : new int[]{ids.get(s - 1)};
            int pos = s == 0 ? 0 : prompt.length + s - 1;
            step.forward(ForwardBatch.ofSequence(tokens, pos, cache, tokens.length - 1), lg);
            logits.add(lg.clone());
            ids.add(argmax(lg));
        }
    }

    private static int argmax(float[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) {
            if (x[i] > x[best]) {
                best = i;
            }
        }
        return best;
    }
}
