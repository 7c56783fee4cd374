package io.expertmesh.core.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.safetensors.Checkpoint;
import io.expertmesh.core.tensor.Quantization;
import java.nio.file.Path;
import java.util.Locale;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code --quantize int8} against the unquantized model on every fixture, the llama.cpp way: teacher-forced over
 * the fixture's reference sequence (prompt, then the reference's greedy tokens), the mean KL divergence
 * KL(p_none ‖ p_int8) of the next-token distributions and the share of positions whose top-1 token agrees; and
 * free-running greedy decoding from the prompt, the tokens generated before the first difference.
 *
 * <p>The fixtures are tiny (hidden 32 or 64) with small, random weights, so their logits are flat and their top-2
 * margins small (down to 0.08): a harder case than a trained model for top-1 agreement. Their matrices whose K is
 * not a multiple of 32 (e.g. MLA's 16-wide LoRA ranks, 8- or 16-wide expert intermediates) stay unquantized, as
 * the loader does for any such matrix; the printed byte ratio shows how much of each model is int8.
 */
class Int8AccuracyTest {
    /**
     * Bounds for a fixture: mean KL, top-1 agreement, greedy tokens that must agree. Measured (README table) with
     * margin. Most fixtures: KL ≤ 2.8e-3, top-1 ≥ 15/16, greedy identical.
     */
    private record Bounds(double maxMeanKl, double minTop1, int minGreedySame) {
    }

    private static final Bounds DEFAULT = new Bounds(5e-3, 0.9, Integer.MAX_VALUE);

    /**
     * Fixtures that amplify any perturbation, with bounds from their measurement: deepseek-v3-tiny measured KL
     * 0.128, top-1 10/16, greedy equal for 2 of 9 tokens — nearly all of it from the per-head W_UV pieces alone
     * (KL 0.124 when only they are int8; every other matrix class alone stays under 5e-4), and its
     * reference.json records that computing in bf16 instead of f32, with the same weights, already moves its
     * last logits by 0.79 and its greedy tokens after 2; deepseek-v3-long-yarn measured KL 0.036 (kv_a and the
     * dense layer-0 MLP), top-1 45/46, greedy identical.
     */
    private static final java.util.Map<String, Bounds> SENSITIVE = java.util.Map.of(
            "deepseek-v3-tiny/f32", new Bounds(0.2, 0.55, 2),
            "deepseek-v3-tiny/bf16", new Bounds(0.2, 0.55, 2),
            "deepseek-v3-long-yarn", new Bounds(0.06, 0.9, Integer.MAX_VALUE));

    static Stream<String> fixtures() {
        return Stream.of("deepseek-v3-tiny/f32", "deepseek-v3-tiny/bf16", "deepseek-v3-qlora0",
                "deepseek-v3-groups4", "deepseek-v3-noyarn", "deepseek-v3-long-yarn", "mixtral-tiny",
                "qwen2-moe-tiny", "qwen3-moe-tiny");
    }

    /** Its own pool: ReferenceLogitsTest closes its pool after its tests, and may run before or after these. */
    private static final ComputePool POOL = ComputePool.create(2);

    @AfterAll
    static void closePool() {
        POOL.close();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("fixtures")
    void int8_fixture_closeToUnquantized(String fixture) throws Exception {
        Path dir = ReferenceLogitsTest.FIXTURES.resolve(fixture);
        ModelConfig config = ModelConfig.load(dir);
        JsonNode ref = new ObjectMapper().readTree(dir.resolve("reference.json").toFile());
        int vocab = config.vocabSize();
        int[] prompt = ReferenceLogitsTest.ids(ref.get("prompt_ids"));
        int[] greedy = ReferenceLogitsTest.ids(ref.get("greedy_tokens"));
        int[] seq = new int[prompt.length + greedy.length - 1];
        System.arraycopy(prompt, 0, seq, 0, prompt.length);
        System.arraycopy(greedy, 0, seq, prompt.length, greedy.length - 1);
        VectorKernels kernels = new VectorKernels(POOL);
        try (Checkpoint weights = TestWeights.open(dir)) {
            ModelBuilder noneBuilder = new ModelBuilder(config, weights, kernels);
            ModelBuilder int8Builder = new ModelBuilder(config, weights, kernels).quantize(Quantization.INT8);
            try (Transformer none = noneBuilder.build(); Transformer int8 = int8Builder.build()) {
                float[] a = logits(none, seq, vocab);
                float[] b = logits(int8, seq, vocab);
                double kl = 0;
                int agree = 0;
                for (int i = 0; i < seq.length; i++) {
                    kl += kl(a, b, i * vocab, vocab);
                    int ta = ReferenceLogitsTest.argmax(a, i * vocab, vocab);
                    if (ta == ReferenceLogitsTest.argmax(b, i * vocab, vocab)) {
                        agree++;
                    }
                }
                double meanKl = kl / seq.length;
                double top1 = (double) agree / seq.length;
                int steps = greedy.length;
                int same = sameGreedyPrefix(none, int8, prompt, steps, vocab);
                System.out.printf(Locale.ROOT, "int8 accuracy %-22s mean KL %.2e  top-1 %d/%d  greedy %d/%d same  "
                                + "weights read per token %.2f of unquantized%n", fixture, meanKl, agree, seq.length,
                        same, steps, (double) int8Builder.activeWeightBytes() / noneBuilder.activeWeightBytes());
                assertTrue(int8Builder.activeWeightBytes() < noneBuilder.activeWeightBytes(),
                        fixture + ": nothing was quantized");
                Bounds bounds = SENSITIVE.getOrDefault(fixture, DEFAULT);
                assertTrue(meanKl < bounds.maxMeanKl(), fixture + ": mean KL " + meanKl);
                assertTrue(top1 >= bounds.minTop1(), fixture + ": top-1 agreement " + top1);
                assertTrue(same >= Math.min(steps, bounds.minGreedySame()),
                        fixture + ": greedy tokens differ after " + same + " of " + steps);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("fixtures")
    void int8_promptAsOneBatch_equalsTokenByTokenBitForBit(String fixture) throws Exception {
        Path dir = ReferenceLogitsTest.FIXTURES.resolve(fixture);
        ModelConfig config = ModelConfig.load(dir);
        JsonNode ref = new ObjectMapper().readTree(dir.resolve("reference.json").toFile());
        int vocab = config.vocabSize();
        int[] prompt = ReferenceLogitsTest.ids(ref.get("prompt_ids"));
        try (Checkpoint weights = TestWeights.open(dir);
             Transformer model = new ModelBuilder(config, weights, new VectorKernels(POOL))
                     .quantize(Quantization.INT8).build()) {
            float[] batched = logits(model, prompt, vocab);
            KvCache cache = model.newCache(prompt.length);
            float[] step = new float[vocab];
            for (int i = 0; i < prompt.length; i++) {
                model.forward(ForwardBatch.ofSequence(new int[]{prompt[i]}, i, cache, 0), step);
                org.junit.jupiter.api.Assertions.assertArrayEquals(step,
                        java.util.Arrays.copyOfRange(batched, i * vocab, (i + 1) * vocab),
                        fixture + " int8: position " + i + " in a batch must equal its single step");
            }
        }
    }

    /** Logits at every position of {@code seq}, one prefill pass. */
    static float[] logits(Transformer t, int[] seq, int vocab) {
        float[] out = new float[seq.length * vocab];
        t.forward(ForwardBatch.ofSequenceAllLogits(seq, 0, t.newCache(seq.length)), out);
        return out;
    }

    /** KL(softmax(p) ‖ softmax(q)) in nats over {@code n} logits at {@code off}. */
    static double kl(float[] p, float[] q, int off, int n) {
        double mp = Double.NEGATIVE_INFINITY;
        double mq = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            mp = Math.max(mp, p[off + i]);
            mq = Math.max(mq, q[off + i]);
        }
        double zp = 0;
        double zq = 0;
        for (int i = 0; i < n; i++) {
            zp += Math.exp(p[off + i] - mp);
            zq += Math.exp(q[off + i] - mq);
        }
        double lzp = Math.log(zp) + mp;
        double lzq = Math.log(zq) + mq;
        double kl = 0;
        for (int i = 0; i < n; i++) {
            double lp = p[off + i] - lzp;
            double lq = q[off + i] - lzq;
            kl += Math.exp(lp) * (lp - lq);
        }
        return kl;
    }

    /** Greedy tokens generated from {@code prompt} by both models before the first difference (at most steps). */
    static int sameGreedyPrefix(Transformer a, Transformer b, int[] prompt, int steps, int vocab) {
        KvCache ca = a.newCache(prompt.length + steps);
        KvCache cb = b.newCache(prompt.length + steps);
        float[] la = new float[vocab];
        float[] lb = new float[vocab];
        a.forward(ForwardBatch.ofSequence(prompt, 0, ca, prompt.length - 1), la);
        b.forward(ForwardBatch.ofSequence(prompt, 0, cb, prompt.length - 1), lb);
        for (int i = 0; i < steps; i++) {
            int ta = ReferenceLogitsTest.argmax(la, 0, vocab);
            int tb = ReferenceLogitsTest.argmax(lb, 0, vocab);
            if (ta != tb) {
                return i;
            }
            a.forward(ForwardBatch.ofSequence(new int[]{ta}, prompt.length + i, ca, 0), la);
            b.forward(ForwardBatch.ofSequence(new int[]{tb}, prompt.length + i, cb, 0), lb);
        }
        return steps;
    }
}
