package io.expertmesh.bench.load;

import java.util.List;

/**
 * Reconciles the tokens counted from a stream's messages with the count the server reports at its end.
 *
 * <p>Over the OpenAI API a message carries text, not tokens: one message is taken as one token (as vLLM's
 * benchmark does), unless it carries logprobs, whose entries are exact. A server may put several tokens in one
 * message (a client reading slower than it writes, a character split over tokens held back until complete), so
 * when it reports {@code usage.completion_tokens} that count is taken: tokens it reports beyond the messages are
 * counted as arriving with the last message (which keeps TPOT right and shows them as zero inter-token gaps, as for
 * any message carrying several tokens); messages beyond its count lose tokens from the end. A stream that reported
 * tokens but showed none (all text empty) gets them as one message at its end.
 */
public final class ChunkTokens {
    private ChunkTokens() {
    }

    /**
     * Makes the token counts of {@code chunks} ({@code {arrivalNanos, tokens}} each, in arrival order) sum to
     * {@code reported}; a negative {@code reported} (not reported) leaves them as they are.
     */
    public static void fit(List<long[]> chunks, int reported, long endNanos) {
        if (reported < 0) {
            return;
        }
        long sum = 0;
        for (long[] c : chunks) {
            sum += c[1];
        }
        if (sum < reported) {
            if (chunks.isEmpty()) {
                chunks.add(new long[] {endNanos, reported});
            } else {
                chunks.getLast()[1] += reported - sum;
            }
            return;
        }
        long extra = sum - reported;
        while (extra > 0) {
            long[] last = chunks.getLast();
            long cut = Math.min(extra, last[1]);
            last[1] -= cut;
            extra -= cut;
            if (last[1] == 0) {
                chunks.removeLast();
            }
        }
    }
}
