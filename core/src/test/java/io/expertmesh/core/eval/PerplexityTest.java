package io.expertmesh.core.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.model.ForwardBackend;
import io.expertmesh.core.model.ForwardBatch;
import io.expertmesh.core.model.KvCache;
import io.expertmesh.core.model.Transformer;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The scorer against a direct computation: every window run in one forward pass with logits at every position,
 * log-softmax in double. The context (200) is longer than a piece (128), so a window takes two steps and the
 * scored half starts inside the first.
 */
class PerplexityTest {
    static final Path FIXTURE = Path.of("src/test/resources/fixtures/deepseek-v3-tiny/f32");

    @TempDir
    Path tmp;

    @Test
    void meanNll_matchesDirectComputation_andBaseRunAgreesWithItself() throws Exception {
        try (LoadedModel m = LoadedModel.open(FIXTURE, new VectorKernels(ComputePool.create(2)), (a, b) -> { })) {
            Transformer t = m.transformer();
            int vocab = m.config().vocabSize();
            int[] text = new SplittableRandom(3).ints(700, 2, vocab).toArray();
            PerplexityWindows w = PerplexityWindows.of(text.length, 200, 0);
            ForwardBackend backend = ForwardBackend.CPU.create(t, 0, 16, null);
            // every token decodes to two bytes here: the byte count must be 2 per scored token
            Perplexity p = new Perplexity(backend, vocab, 0, ids -> "é".repeat(ids.length));

            Path base = tmp.resolve("base.kl");
            PerplexityResult r;
            try (LogitSummaries.Writer save = new LogitSummaries.Writer(base, p.header(text, w))) {
                r = p.run(text, w, save, null, done -> { });
            }
            assertEquals(w.scoredTokens(), r.tokens());
            assertEquals(2 * r.tokens(), r.bytes());
            assertEquals(direct(t, text, w), r.meanNll(), 1e-9);
            assertEquals(r.meanNll() / Math.log(2) / 2, r.bitsPerByte(), 1e-12);

            try (LogitSummaries.Reader read = new LogitSummaries.Reader(base)) {
                PerplexityResult again = p.run(text, w, null, read, done -> { });
                assertEquals(r.meanNll(), again.meanNll());
                assertEquals(0.0, again.kl().mean(), 1e-6);
                assertEquals(1.0, again.kl().top1Agreement());
                assertEquals(r.meanNll(), again.kl().baseMeanNll(), 1e-12, "the base file holds each target's logit");
            }
            // another text (or windows) against this base is refused, not compared
            int[] other = text.clone();
            other[5] ^= 1;
            try (LogitSummaries.Reader read = new LogitSummaries.Reader(base)) {
                assertTrue(assertThrows(IllegalArgumentException.class, () -> p.run(other, w, null, read, d -> { }))
                        .getMessage().contains("another text"));
            }
        }
    }

    private static double direct(Transformer t, int[] text, PerplexityWindows w) {
        int vocab = t.config().vocabSize();
        double nll = 0;
        for (int i = 0; i < w.count(); i++) {
            int[] tokens = new int[w.context()];
            System.arraycopy(text, w.start(i), tokens, 1, w.context() - 1);
            KvCache cache = t.newCache(w.context());
            float[] logits = new float[w.context() * vocab];
            t.forward(ForwardBatch.ofSequenceAllLogits(tokens, 0, cache), logits);
            for (int pos = w.context() - w.scored() - 1; pos < w.context() - 1; pos++) {
                double max = Double.NEGATIVE_INFINITY;
                for (int v = 0; v < vocab; v++) {
                    max = Math.max(max, logits[pos * vocab + v]);
                }
                double sum = 0;
                for (int v = 0; v < vocab; v++) {
                    sum += Math.exp(logits[pos * vocab + v] - max);
                }
                nll += max + Math.log(sum) - logits[pos * vocab + tokens[pos + 1]];
            }
        }
        return nll / w.scoredTokens();
    }
}
