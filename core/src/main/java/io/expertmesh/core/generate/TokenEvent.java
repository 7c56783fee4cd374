package io.expertmesh.core.generate;

import io.expertmesh.core.sample.TokenLogprob;
import java.util.List;

/**
 * One generated token as streamed to the caller.
 *
 * @param index       0-based position in the completion
 * @param tokenId     the token
 * @param text        text that became safe to show with this token (may be empty: held back for a possible stop
 *                    string or an incomplete UTF-8 character; empty when the model has no tokenizer)
 * @param logprob     natural log-probability of the token under the raw logits (before temperature/penalties)
 * @param topLogprobs the most likely alternatives, best first (empty when not asked for)
 */
public record TokenEvent(int index, int tokenId, String text, float logprob, List<TokenLogprob> topLogprobs) {
}
