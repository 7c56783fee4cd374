package io.expertmesh.client;

import io.expertmesh.proto.inference.v1.FinishReason;
import io.expertmesh.proto.inference.v1.Finished;
import io.expertmesh.proto.inference.v1.GeneratedToken;
import io.expertmesh.proto.inference.v1.Usage;
import java.util.List;

/**
 * A whole generation, collected from the stream.
 *
 * @param requestId the request id the router echoed (its own when the request had none)
 * @param tokens    every generated token, in order
 * @param text      the completion text: the tokens' texts joined
 * @param finished  why it ended, with counts and timings
 */
public record GenerateResult(String requestId, List<GeneratedToken> tokens, String text, Finished finished) {
    public GenerateResult {
        tokens = List.copyOf(tokens);
    }

    /** The generated token ids, in order. */
    public int[] tokenIds() {
        return tokens.stream().mapToInt(GeneratedToken::getTokenId).toArray();
    }

    /** Why the generation ended. */
    public FinishReason finishReason() {
        return finished.getReason();
    }

    /** Token counts and timings. */
    public Usage usage() {
        return finished.getUsage();
    }
}
