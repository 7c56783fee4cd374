package io.expertmesh.core.generate;

import io.expertmesh.core.sample.FinishReason;
import io.expertmesh.core.sample.LogProbs;
import io.expertmesh.core.sample.Sampler;
import io.expertmesh.core.sample.SamplerScratch;
import io.expertmesh.core.sample.SamplingParams;
import io.expertmesh.core.sample.StopChecker;
import io.expertmesh.core.sample.StopDecision;
import io.expertmesh.core.tokenizer.IncrementalDetokenizer;
import io.expertmesh.core.tokenizer.ModelTokenizer;
import java.util.List;
import java.util.Set;

/**
 * Turns one sequence's logits into its next token, step after step: sampling, log-probabilities, incremental
 * detokenisation and the stop rules (stop tokens, EOS, stop strings, max tokens, a full context). Shared by the
 * single-process {@link Generator} and the router's engine, so both produce the same tokens and text.
 *
 * <p>The text rule: the events' texts concatenated equal {@link ModelTokenizer#decode} (skipping special tokens)
 * of the generated ids, less a final stop token (whose own text is never output), or cut before a matched stop
 * string. In particular bytes of an incomplete UTF-8 character that the detokeniser holds back are not lost when
 * the sequence ends: they come out with the last token as U+FFFD, as decode shows them.
 */
public final class TokenStepper {
    private final SamplingParams params;
    private final Sampler sampler;
    private final StopChecker stop;
    private final IncrementalDetokenizer detok;
    private final int contextLimit;
    private final boolean wantLogprobs;
    private int generated;
    private StopDecision decision;
    /** Text released after the stop checker finished: the bytes a stop token ended, decoded. */
    private String tail = "";

    /**
     * @param prompt        the prompt's token ids (seed the repetition penalty and the detokeniser's context)
     * @param tokenizer     may be null: events then carry no text
     * @param eosIds        the model's end-of-sequence ids (ignored when params.ignoreEos())
     * @param contextLimit  most tokens (prompt + completion) the sequence may reach
     * @param wantLogprobs  compute the chosen token's log-probability even when no alternatives are asked for
     * @param scratch       sampler working memory, shared by the sequences of one thread; null for a private one
     */
    public TokenStepper(int[] prompt, SamplingParams params, ModelTokenizer tokenizer, Set<Integer> eosIds,
                        int contextLimit, boolean wantLogprobs, SamplerScratch scratch) {
        this.params = params;
        this.sampler = scratch == null ? new Sampler(params) : new Sampler(params, scratch);
        this.sampler.observePrompt(prompt);
        this.stop = new StopChecker(params, eosIds);
        this.detok = tokenizer == null ? null : new IncrementalDetokenizer(tokenizer, prompt, true);
        this.contextLimit = contextLimit;
        this.wantLogprobs = wantLogprobs || params.topLogprobs() > 0;
        this.generated = 0;
        this.decision = null;
    }

    /**
     * Chooses the next token from {@code logits[off, off + vocab)}, the logits after a sequence of
     * {@code sequenceLength} tokens, and returns its event; {@link #finished()} tells whether it was the last.
     */
    public TokenEvent next(float[] logits, int off, int vocab, int sequenceLength) {
        if (finished()) {
            throw new IllegalStateException("sequence already finished");
        }
        int token = sampler.sample(logits, off, vocab);
        float logprob = Float.NaN;
        List<io.expertmesh.core.sample.TokenLogprob> top = List.of();
        if (wantLogprobs) {
            LogProbs lp = LogProbs.of(logits, off, vocab, token, params.topLogprobs());
            logprob = lp.chosen().logprob();
            top = params.topLogprobs() > 0 ? lp.top() : List.of();
        }
        sampler.accept(token);
        boolean contextFull = sequenceLength + 1 >= contextLimit;
        String delta = "";
        String flushed = "";
        if (detok != null && stop.isStopToken(token)) {
            // Its own text is not output, but the bytes it ends (held back as an incomplete character) are.
            flushed = detok.flush();
        } else if (detok != null) {
            delta = detok.add(token);
            if (generated + 1 >= params.maxTokens() || contextFull) {
                // The last token: nothing will complete a held-back character now.
                delta = delta + detok.flush();
            }
        }
        decision = stop.onToken(token, delta);
        tail = tail + flushed;
        String text = decision.emit() + flushed;
        if (!decision.finished() && contextFull) {
            // The context is full: end as "length", releasing any held-back text with this token.
            text = text + stop.finish(FinishReason.LENGTH);
            decision = stop.finishDecision();
        }
        return new TokenEvent(generated++, token, text, logprob, top);
    }

    /** Ends the sequence from outside (cancel, error); returns held-back text, empty if already finished. */
    public String abort(FinishReason reason) {
        if (finished()) {
            return "";
        }
        String rest = stop.finish(reason);
        decision = stop.finishDecision();
        return rest;
    }

    public boolean finished() {
        return decision != null && decision.finished();
    }

    /** The decision that ended the sequence, or null while it runs. */
    public StopDecision decision() {
        return finished() ? decision : null;
    }

    public int generated() {
        return generated;
    }

    /** The completion text so far (cut before a matched stop string). */
    public String text() {
        return stop.text() + tail;
    }

    public long seed() {
        return sampler.seed();
    }
}
