package io.expertmesh.core.sample;

/**
 * The tokens a sequence has seen, as the penalties need them: the set of prompt tokens (repetition penalty looks at
 * prompt and output) and the count of each output token (presence and frequency penalties look at output only).
 */
public final class TokenHistory {
    private final TokenCounts prompt = new TokenCounts();
    private final TokenCounts output = new TokenCounts();
    private int outputLength;

    /** Records prompt tokens; may be called more than once (chunked prefill). */
    public void observePrompt(int[] ids) {
        for (int id : ids) {
            prompt.add(id);
        }
    }

    /** Records one generated token. */
    public void accept(int token) {
        output.add(token);
        outputLength++;
    }

    /** How many times {@code token} was generated. */
    public int outputCount(int token) {
        return output.count(token);
    }

    public boolean inPrompt(int token) {
        return prompt.contains(token);
    }

    /** Number of generated tokens recorded. */
    public int outputLength() {
        return outputLength;
    }

    TokenCounts prompt() {
        return prompt;
    }

    TokenCounts output() {
        return output;
    }
}
