package io.expertmesh.core.eval;

import io.expertmesh.core.model.ForwardBackend;
import io.expertmesh.core.model.ForwardBatch;
import io.expertmesh.core.model.KvCache;
import io.expertmesh.core.sample.LogProbs;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.function.Function;
import java.util.function.IntConsumer;

/**
 * Scores a tokenized text with a model: the mean negative log-likelihood of the scored tokens of each
 * {@link PerplexityWindows window}, their bytes, and optionally the KL divergence against a saved base run. Pure
 * compute over a {@link ForwardBackend}: the same on the CPU kernels, the GPU, or with the routed experts on expert
 * workers, so the three can be compared token for token.
 */
public final class Perplexity {
    /** Tokens per forward step: bounds the logits buffer (rows × vocabulary) for large vocabularies. */
    static final int PIECE = 128;

    private final ForwardBackend backend;
    private final int vocab;
    private final int bos;
    private final Function<int[], String> decode;

    /**
     * @param backend the forward pass (its caches are made and released here)
     * @param vocab   the model's vocabulary size
     * @param bos     the token each window starts with
     * @param decode  token ids to text, for counting the scored bytes
     */
    public Perplexity(ForwardBackend backend, int vocab, int bos, Function<int[], String> decode) {
        this.backend = backend;
        this.vocab = vocab;
        this.bos = bos;
        this.decode = decode;
    }

    /** The header a base file of this run has: its windows and a hash of every token they hold. */
    public LogitSummaries.Header header(int[] text, PerplexityWindows w) {
        long h = 0xcbf29ce484222325L; // FNV-1a over the windows' token ids
        for (int i = 0; i < w.count(); i++) {
            for (int t : window(text, w, i)) {
                h = (h ^ t) * 0x100000001b3L;
            }
        }
        return new LogitSummaries.Header(w.context(), w.advance(), w.scored(), w.count(), h);
    }

    /**
     * Scores {@code text} (token ids without BOS).
     *
     * @param save     receives every scored token's summary (a base run), or null
     * @param base     a base run to compare with (its header must be this run's), or null
     * @param progress called with the number of windows done after each
     * @throws IllegalArgumentException when {@code base} was made from other tokens or windows
     */
    public PerplexityResult run(int[] text, PerplexityWindows w, LogitSummaries.Writer save,
                                LogitSummaries.Reader base, IntConsumer progress) {
        if (base != null && !base.header().equals(header(text, w))) {
            throw new IllegalArgumentException("the --kl-divergence-base file was made from another text, tokenizer, "
                    + "--context or --stride: " + base.header() + ", this run " + header(text, w));
        }
        ForwardBackend.Runner runner = backend.newRunner();
        int context = w.context();
        int firstScored = context - w.scored() - 1; // the position whose logits predict the first scored token
        float[] logits = new float[PIECE * vocab];
        double nll = 0;
        long bytes = 0;
        float[] kls = base == null ? null : new float[Math.toIntExact(w.scoredTokens())];
        int klCount = 0;
        long agree = 0;
        double baseNll = 0;
        for (int i = 0; i < w.count(); i++) {
            int[] tokens = window(text, w, i);
            KvCache cache = backend.newCache(context);
            try {
                // The last token predicts nothing inside the window: positions 0..context-2 are enough.
                for (int a = 0; a < context - 1; a += PIECE) {
                    int b = Math.min(context - 1, a + PIECE);
                    int from = Math.max(a, firstScored);
                    int[] rows = new int[Math.max(0, b - from)];
                    for (int r = 0; r < rows.length; r++) {
                        rows[r] = from - a + r;
                    }
                    runner.forward(ForwardBatch.ofSequence(Arrays.copyOfRange(tokens, a, b), a, cache, rows), logits);
                    for (int r = 0; r < rows.length; r++) {
                        int off = r * vocab;
                        int target = tokens[from + r + 1];
                        double lse = LogProbs.logSumExp(logits, off, vocab);
                        nll += lse - logits[off + target];
                        if (save != null) {
                            save.add(logits, off, vocab, lse, target);
                        }
                        if (base != null) {
                            base.next();
                            baseNll += base.lse - base.targetLogit;
                            kls[klCount++] = (float) klDivergence(base, logits, off, lse);
                            agree += argmax(logits, off, vocab) == base.ids[0] ? 1 : 0;
                        }
                    }
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            } finally {
                backend.release(cache);
            }
            bytes += decode.apply(Arrays.copyOfRange(tokens, context - w.scored(), context))
                    .getBytes(StandardCharsets.UTF_8).length;
            progress.accept(i + 1);
        }
        long n = w.scoredTokens();
        PerplexityResult.KlDivergence kl = null;
        if (base != null) {
            double sum = 0;
            for (float k : kls) {
                sum += k;
            }
            Arrays.sort(kls);
            kl = new PerplexityResult.KlDivergence(sum / n, kls[(int) Math.min(n - 1, Math.ceil(0.99 * n) - 1)],
                    (double) agree / n, baseNll / n);
        }
        return new PerplexityResult(n, bytes, nll / n, w.count(), kl);
    }

    private int[] window(int[] text, PerplexityWindows w, int i) {
        int[] tokens = new int[w.context()];
        tokens[0] = bos;
        System.arraycopy(text, w.start(i), tokens, 1, w.context() - 1);
        return tokens;
    }

    /**
     * KL(base || this) over the base's top tokens plus one bucket for the rest of the mass; never negative (the
     * bucketing can only underestimate).
     */
    static double klDivergence(LogitSummaries.Reader base, float[] logits, int off, double lse) {
        double kl = 0;
        double pTop = 0;
        double qTop = 0;
        for (int k = 0; k < LogitSummaries.TOP_K; k++) {
            double lp = base.logits[k] - base.lse;
            double lq = logits[off + base.ids[k]] - lse;
            double p = Math.exp(lp);
            kl += p * (lp - lq);
            pTop += p;
            qTop += Math.exp(lq);
        }
        double pRest = 1 - pTop;
        double qRest = Math.max(1 - qTop, 1e-30);
        if (pRest > 1e-12) {
            kl += pRest * (Math.log(pRest) - Math.log(qRest));
        }
        return Math.max(0, kl);
    }

    private static int argmax(float[] x, int off, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (x[off + i] > x[off + best]) {
                best = i;
            }
        }
        return best;
    }
}
