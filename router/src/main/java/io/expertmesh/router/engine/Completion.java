package io.expertmesh.router.engine;

import io.expertmesh.core.sample.FinishReason;

/**
 * How a request ended, with counts and timings (nanoseconds from admission).
 *
 * @param reason             why it ended
 * @param stopString         the stop string that matched, or null
 * @param stopTokenId        the stop token, or null
 * @param promptTokens       prompt length
 * @param completionTokens   tokens generated
 * @param cachedPromptTokens prompt tokens served by the prefix cache
 * @param queueNanos         admission to first scheduling (0 if never scheduled)
 * @param ttftNanos          admission to first token (0 if none)
 * @param totalNanos         admission to the end
 * @param error              what failed, for {@link FinishReason#ERROR}; else null
 * @param unavailable        the error is that no expert worker could serve (the call ends UNAVAILABLE)
 */
public record Completion(FinishReason reason, String stopString, Integer stopTokenId, int promptTokens,
                         int completionTokens, int cachedPromptTokens, long queueNanos, long ttftNanos,
                         long totalNanos, String error, boolean unavailable) {
}
