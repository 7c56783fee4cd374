package io.expertmesh.core.generate;

import io.expertmesh.core.sample.FinishReason;

/**
 * How a generation ended, with its counts and timings.
 *
 * @param finishReason     why it stopped
 * @param promptTokens     prompt length
 * @param completionTokens tokens generated
 * @param text             the whole completion text (after stop-string truncation)
 * @param ttftNanos        time from the start of prefill to the first token
 * @param decodeNanos      time spent after the first token
 */
public record GenerationResult(FinishReason finishReason, int promptTokens, int completionTokens, String text,
                               long ttftNanos, long decodeNanos) {

    /** Prompt tokens per second of the prefill (which ends with the first token). */
    public double prefillTokensPerSecond() {
        return ttftNanos == 0 ? 0 : promptTokens * 1e9 / ttftNanos;
    }

    /** Tokens per second after the first one. */
    public double decodeTokensPerSecond() {
        return completionTokens <= 1 || decodeNanos == 0 ? 0 : (completionTokens - 1) * 1e9 / decodeNanos;
    }
}
