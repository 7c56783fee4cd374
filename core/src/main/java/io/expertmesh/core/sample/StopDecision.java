package io.expertmesh.core.sample;

/**
 * What {@link StopChecker#onToken} decided about one token.
 *
 * @param finishReason null while the sequence goes on; otherwise why it ended
 * @param emit         text that became safe to stream with this token (may be empty); once finished, the rest of
 *                     the output, cut before a matched stop string
 * @param stopString   the stop string that matched, or null
 * @param stopTokenId  the stop or end-of-sequence token id that ended the sequence, or null
 */
public record StopDecision(FinishReason finishReason, String emit, String stopString, Integer stopTokenId) {

    static StopDecision running(String emit) {
        return new StopDecision(null, emit, null, null);
    }

    /** True when the sequence must not produce another token. */
    public boolean finished() {
        return finishReason != null;
    }
}
