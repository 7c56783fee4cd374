package io.expertmesh.core.eval;

/**
 * How a text is cut into the windows a perplexity run scores, following llama.cpp's {@code llama-perplexity}.
 * Each window is BOS followed by {@code context - 1} text tokens. Without a stride the windows do not overlap and
 * the second half of each is scored (its first half only gives the scored tokens some context). With a stride
 * {@code S}, windows start every {@code S} text tokens and their last {@code S} tokens are scored, so every token
 * after the first window is scored once with at least {@code context - S} tokens before it.
 *
 * @param context tokens per window, BOS included
 * @param advance text tokens from one window's start to the next
 * @param scored  tokens scored at the end of each window
 * @param count   windows that fit in the text
 */
public record PerplexityWindows(int context, int advance, int scored, int count) {

    /**
     * The windows over {@code textTokens} tokens; {@code stride <= 0} means none (llama.cpp's default chunks).
     *
     * @throws IllegalArgumentException for a context below 2, a stride outside [1, context), or a text shorter
     *                                  than one window (the message says how long it is and what is needed)
     */
    public static PerplexityWindows of(int textTokens, int context, int stride) {
        if (context < 4) {
            throw new IllegalArgumentException("--context must be at least 4, got " + context);
        }
        int advance;
        int scored;
        if (stride <= 0) {
            advance = context - 1;
            scored = context / 2;
        } else {
            if (stride >= context) {
                throw new IllegalArgumentException("--stride must be below --context (" + context + "), got " + stride);
            }
            advance = stride;
            scored = stride;
        }
        int count = textTokens < context - 1 ? 0 : (textTokens - (context - 1)) / advance + 1;
        if (count == 0) {
            throw new IllegalArgumentException("the text is " + textTokens + " tokens, shorter than one chunk: --context "
                    + context + " needs at least " + (context - 1) + " (give a longer text or a smaller --context)");
        }
        return new PerplexityWindows(context, advance, scored, count);
    }

    /** The first text token of window {@code w}. */
    public int start(int w) {
        return w * advance;
    }

    /** Tokens scored over all windows. */
    public long scoredTokens() {
        return (long) count * scored;
    }
}
