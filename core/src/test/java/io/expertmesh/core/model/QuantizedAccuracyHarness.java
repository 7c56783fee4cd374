package io.expertmesh.core.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.safetensors.Checkpoint;
import io.expertmesh.core.tensor.Quantization;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Stream;

/**
 * The teacher-forced harness the quantization accuracy tests share ({@link Int8AccuracyTest},
 * {@link Int4AccuracyTest}): a fixture's reference sequence, the logits at each of its positions, the mean KL
 * divergence and top-1 agreement of two models over it, greedy decoding until two models differ, and the
 * batch-against-steps check.
 */
final class QuantizedAccuracyHarness {
    private QuantizedAccuracyHarness() {
    }

    /** The fixtures the accuracy tests run on. */
    static Stream<String> fixtures() {
        return Stream.of("deepseek-v3-tiny/f32", "deepseek-v3-tiny/bf16", "deepseek-v3-qlora0",
                "deepseek-v3-groups4", "deepseek-v3-noyarn", "deepseek-v3-long-yarn", "mixtral-tiny",
                "qwen2-moe-tiny", "qwen3-moe-tiny");
    }

    /**
     * A fixture and its reference: {@code seq} is the prompt then the reference's greedy tokens but the last (the
     * sequence a teacher-forced pass reads, one next-token distribution per position).
     */
    record Fixture(Path dir, ModelConfig config, int vocab, int[] prompt, int[] greedy, int[] seq) {
        static Fixture load(String name) throws IOException {
            Path dir = ReferenceLogitsTest.FIXTURES.resolve(name);
            ModelConfig config = ModelConfig.load(dir);
            JsonNode ref = new ObjectMapper().readTree(dir.resolve("reference.json").toFile());
            int[] prompt = ReferenceLogitsTest.ids(ref.get("prompt_ids"));
            int[] greedy = ReferenceLogitsTest.ids(ref.get("greedy_tokens"));
            int[] seq = new int[prompt.length + greedy.length - 1];
            System.arraycopy(prompt, 0, seq, 0, prompt.length);
            System.arraycopy(greedy, 0, seq, prompt.length, greedy.length - 1);
            return new Fixture(dir, config, config.vocabSize(), prompt, greedy, seq);
        }
    }

    /** Mean KL(p ‖ q) over the positions, and at how many of them the top-1 tokens agree. */
    record Agreement(double meanKl, int top1, int positions) {
        double top1Share() {
            return (double) top1 / positions;
        }
    }

    /** {@link Agreement} of logits {@code q} with {@code p}, both {@code positions × vocab}. */
    static Agreement agreement(float[] p, float[] q, int positions, int vocab) {
        double kl = 0;
        int agree = 0;
        for (int i = 0; i < positions; i++) {
            kl += kl(p, q, i * vocab, vocab);
            if (ReferenceLogitsTest.argmax(p, i * vocab, vocab) == ReferenceLogitsTest.argmax(q, i * vocab, vocab)) {
                agree++;
            }
        }
        return new Agreement(kl / positions, agree, positions);
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

    /**
     * The fixture's prompt as one batch gives, at every position, bit for bit the logits of that position run as a
     * single step, with weights quantized as {@code quantization}.
     */
    static void assertPromptAsOneBatchEqualsTokenByToken(String fixture, Quantization quantization,
                                                         ComputePool pool) throws IOException {
        Fixture f = Fixture.load(fixture);
        int vocab = f.vocab();
        int[] prompt = f.prompt();
        try (Checkpoint weights = TestWeights.open(f.dir());
             Transformer model = new ModelBuilder(f.config(), weights, new VectorKernels(pool))
                     .quantize(quantization).build()) {
            float[] batched = logits(model, prompt, vocab);
            KvCache cache = model.newCache(prompt.length);
            float[] step = new float[vocab];
            for (int i = 0; i < prompt.length; i++) {
                model.forward(ForwardBatch.ofSequence(new int[]{prompt[i]}, i, cache, 0), step);
                assertArrayEquals(step, Arrays.copyOfRange(batched, i * vocab, (i + 1) * vocab),
                        fixture + " " + quantization.label() + ": position " + i
                                + " in a batch must equal its single step");
            }
        }
    }
}
