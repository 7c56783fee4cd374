package io.expertmesh.core.sample;

/**
 * The three logit penalties of the OpenAI / vLLM API, applied in vLLM's order: repetition first, then frequency and
 * presence. They touch only the tokens in the {@link TokenHistory}, so they cost O(distinct tokens seen), not
 * O(vocab).
 *
 * @param repetition HF/vLLM: over prompt ∪ output tokens, {@code l > 0 ? l / r : l * r}; 1 is off
 * @param presence   OpenAI: over output tokens, {@code l -= presence}
 * @param frequency  OpenAI: over output tokens, {@code l -= frequency * count}
 */
public record Penalties(float repetition, float presence, float frequency) {

    public static Penalties of(SamplingParams p) {
        return new Penalties(p.repetitionPenalty(), p.presencePenalty(), p.frequencyPenalty());
    }

    /** False when applying would change nothing, so the caller can skip it. */
    public boolean active() {
        return repetition != 1f || presence != 0f || frequency != 0f;
    }

    /**
     * Applies the penalties in place to {@code logits[off, off+vocab)}. Token ids outside the vocabulary (a prompt
     * that used special ids the LM head does not produce) are ignored.
     */
    public void apply(float[] logits, int off, int vocab, TokenHistory history) {
        TokenCounts prompt = history.prompt();
        TokenCounts output = history.output();
        if (repetition != 1f) {
            for (int i = 0; i < prompt.distinct(); i++) {
                repeat(logits, off, vocab, prompt.token(i));
            }
            for (int i = 0; i < output.distinct(); i++) {
                int t = output.token(i);
                if (!prompt.contains(t)) { // once per token, even when it is in both
                    repeat(logits, off, vocab, t);
                }
            }
        }
        if (presence != 0f || frequency != 0f) {
            for (int i = 0; i < output.distinct(); i++) {
                int t = output.token(i);
                if (t >= 0 && t < vocab) {
                    logits[off + t] = logits[off + t] - frequency * output.countAt(i) - presence;
                }
            }
        }
    }

    private void repeat(float[] logits, int off, int vocab, int t) {
        if (t >= 0 && t < vocab) {
            float l = logits[off + t];
            logits[off + t] = l > 0 ? l / repetition : l * repetition;
        }
    }
}
