package io.expertmesh.gpucheck;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.model.ForwardBatch;
import io.expertmesh.core.model.KvCache;
import io.expertmesh.core.model.Transformer;
import io.expertmesh.cuda.forward.DeviceForward;
import io.expertmesh.cuda.forward.DeviceKvCache;
import io.expertmesh.cuda.forward.DeviceOps;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The whole model on the device-resident forward pass against core's CPU forward pass: greedy generation from a
 * prompt (prefill, then one token per step), token ids compared, and the logits of every step within
 * {@link #LOGIT_TOL} relative L2 (the KV pool is bf16, the CPU cache float32). Run on the GPU host with
 * {@code CudaOps}, and in the tests with {@code HostOps}.
 */
public final class DeviceForwardCheck {
    /** bf16 rounding of the cached keys and values moves logits by 2-5e-3 relative L2 on the fixtures (HostOps). */
    public static final double LOGIT_TOL = 2e-2;

    private DeviceForwardCheck() {
    }

    /** Token ids and the logits each was chosen from. */
    public record Greedy(List<Integer> tokens, List<float[]> logits) {
    }

    public static Greedy onCpu(Transformer model, int[] prompt, int steps) {
        KvCache cache = model.newCache(prompt.length + steps + 1);
        return run((batch, logits) -> model.forward(batch, logits), model.config().vocabSize(), cache, prompt,
                steps);
    }

    public static Greedy onDevice(DeviceForward dev, int[] prompt, int steps) {
        return onDevice(dev, prompt, steps, null);
    }

    /**
     * As {@link #onDevice(DeviceForward, int[], int)}, fed {@code forced} (another run's tokens) instead of its
     * own choices when not null: its logits then compare step by step with that run's, and one near-tie chosen
     * differently does not make every later step differ too.
     */
    public static Greedy onDevice(DeviceForward dev, int[] prompt, int steps, List<Integer> forced) {
        try (DeviceKvCache cache = dev.newCache(prompt.length + steps + 1)) {
            return run(dev.newRunner(), dev.config().vocabSize(), cache, prompt, steps, forced);
        }
    }

    private static Greedy run(io.expertmesh.core.model.ForwardBackend.Runner r, int vocab, KvCache cache,
                              int[] prompt, int steps) {
        return run(r, vocab, cache, prompt, steps, null);
    }

    private static Greedy run(io.expertmesh.core.model.ForwardBackend.Runner r, int vocab, KvCache cache,
                              int[] prompt, int steps, List<Integer> forced) {
        List<Integer> out = new ArrayList<>();
        List<float[]> logits = new ArrayList<>();
        float[] lg = new float[vocab];
        r.forward(ForwardBatch.ofSequence(prompt, 0, cache, prompt.length - 1), lg);
        for (int s = 0; s < steps; s++) {
            logits.add(lg.clone());
            int next = argmax(lg);
            out.add(next);
            int fed = forced == null ? next : forced.get(s);
            r.forward(ForwardBatch.ofSequence(new int[]{fed}, prompt.length + s, cache, 0), lg);
        }
        return new Greedy(out, logits);
    }

    /**
     * Loads {@code modelDir} with {@code cpu} kernels and compares the device pass on {@code ops} with it; KV
     * blocks of {@code blockSize} positions (small ones make the sequence cross blocks).
     */
    public static CheckResult compare(Path modelDir, DeviceOps ops, Kernels cpu, int[] prompt, int steps,
                                      int blockSize) throws IOException {
        return compare(modelDir, ops, cpu, prompt, steps, blockSize, true);
    }

    /**
     * As above; the device is fed the CPU's tokens (teacher forcing), so each step's logits compare with the
     * CPU's. With {@code sameTokens} its own choices must also be the CPU's; without, only the logits count (a
     * random-weight model whose top two logits nearly tie, on a path that rounds the query to bf16).
     */
    public static CheckResult compare(Path modelDir, DeviceOps ops, Kernels cpu, int[] prompt, int steps,
                                      int blockSize, boolean sameTokens) throws IOException {
        try (LoadedModel model = LoadedModel.open(modelDir, cpu, (a, b) -> { });
             DeviceForward dev = new DeviceForward(model.transformer(), ops,
                     (prompt.length + steps + blockSize) / blockSize + 1, blockSize, null)) {
            Greedy want = onCpu(model.transformer(), prompt, steps);
            return compare(label(modelDir), want, onDevice(dev, prompt, steps, want.tokens), sameTokens);
        }
    }

    static CheckResult compare(String name, Greedy want, Greedy got) {
        return compare(name, want, got, true);
    }

    static CheckResult compare(String name, Greedy want, Greedy got, boolean sameTokens) {
        double worst = 0;
        for (int i = 0; i < Math.min(want.logits.size(), got.logits.size()); i++) {
            worst = Math.max(worst, Errors.relativeL2(got.logits.get(i), want.logits.get(i)));
        }
        boolean same = want.tokens.equals(got.tokens);
        String detail = same ? "tokens " + got.tokens : "tokens differ: device " + got.tokens + " cpu " + want.tokens;
        return new CheckResult("device forward " + name, same || !sameTokens ? worst : Double.NaN, LOGIT_TOL, detail);
    }

    private static String label(Path dir) {
        return (dir.getParent() == null ? "" : dir.getParent().getFileName() + "/") + dir.getFileName();
    }

    public static int argmax(float[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) {
            if (x[i] > x[best]) {
                best = i;
            }
        }
        return best;
    }
}
