package io.expertmesh.core.sample;

import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * Decides, token by token, whether a sequence is finished and which part of its text may already be streamed.
 *
 * <p>It is fed the text delta of each token by the incremental detokenizer and keeps the generated text. Rules
 * (OpenAI / vLLM semantics):
 * <ul>
 *   <li>a token in {@code stop_token_ids}, or one of the model's end-of-sequence ids unless {@code ignore_eos},
 *       ends the sequence with {@link FinishReason#STOP}; its own text is not part of the output;</li>
 *   <li>a stop string ends it with {@link FinishReason#STOP} as soon as it appears in the text, possibly spread
 *       over several deltas; the output is cut just before the earliest match, which is never streamed;</li>
 *   <li>otherwise the {@code max_tokens}-th token ends it with {@link FinishReason#LENGTH}. STOP wins over LENGTH
 *       when one token does both, since the model did finish.</li>
 * </ul>
 * While running, the longest tail of the text that is a proper prefix of some stop string is held back: streaming
 * it could show the client the start of a stop string that must later vanish. It is released as soon as the
 * following text rules the stop string out, or when the sequence ends another way.
 *
 * <p>Cost per token: the search only looks at the text not yet streamed, which is shorter than the longest stop
 * string plus the new delta.
 */
public final class StopChecker {
    private final Set<Integer> stopTokenIds;
    private final Set<Integer> eosTokenIds;
    private final List<String> stopStrings;
    private final int maxStopLength;
    private final int maxTokens;
    private final StringBuilder text = new StringBuilder();
    private int emitted;
    private int tokens;
    private StopDecision finish;

    /**
     * @param eosTokenIds the model's end-of-sequence ids (generation_config may list several); ignored when
     *                    {@code params.ignoreEos()}
     */
    public StopChecker(SamplingParams params, Set<Integer> eosTokenIds) {
        this.stopTokenIds = params.stopTokenIds();
        this.eosTokenIds = params.ignoreEos() ? Set.of() : Set.copyOf(eosTokenIds);
        this.stopStrings = params.stopStrings();
        this.maxStopLength = stopStrings.stream().mapToInt(String::length).max().orElse(0);
        this.maxTokens = params.maxTokens();
    }

    /**
     * Takes the next generated token and its text delta, and says whether the sequence is finished and what text
     * may now be streamed.
     *
     * @throws IllegalStateException when the sequence has already finished
     */
    public StopDecision onToken(int tokenId, String delta) {
        Objects.requireNonNull(delta, "delta");
        if (finish != null) {
            throw new IllegalStateException("sequence already finished (" + finish.finishReason().wireName() + ")");
        }
        tokens++;
        if (isStopToken(tokenId)) {
            return finish(new StopDecision(FinishReason.STOP, release(text.length()), null, tokenId));
        }
        text.append(delta);
        if (!stopStrings.isEmpty()) {
            int at = -1;
            String matched = null;
            for (String stop : stopStrings) {
                // nothing already streamed can start a match: it was released only because it could not
                int i = text.indexOf(stop, emitted);
                if (i >= 0 && (at < 0 || i < at)) {
                    at = i;
                    matched = stop;
                }
            }
            if (at >= 0) {
                text.setLength(at);
                return finish(new StopDecision(FinishReason.STOP, release(at), matched, null));
            }
        }
        if (tokens >= maxTokens) {
            return finish(new StopDecision(FinishReason.LENGTH, release(text.length()), null, null));
        }
        return StopDecision.running(release(text.length() - heldBack()));
    }

    /** True when {@code tokenId} ends the sequence by itself (a stop token, or EOS unless ignored). */
    public boolean isStopToken(int tokenId) {
        return stopTokenIds.contains(tokenId) || eosTokenIds.contains(tokenId);
    }

    /**
     * Ends the sequence from outside (cancellation, error) and returns the text held back so far, which is then
     * emitted as ordinary output; empty when already finished.
     */
    public String finish(FinishReason reason) {
        Objects.requireNonNull(reason, "reason");
        if (finish != null) {
            return "";
        }
        String rest = release(text.length());
        finish = new StopDecision(reason, rest, null, null);
        return rest;
    }

    /** The output text so far; after a stop-string match, cut before it. */
    public String text() {
        return text.toString();
    }

    /** How many characters of {@link #text()} have been released for streaming. */
    public int emittedLength() {
        return emitted;
    }

    /** Number of tokens seen. */
    public int tokenCount() {
        return tokens;
    }

    /** The decision that ended the sequence, or null while it runs. */
    public StopDecision finishDecision() {
        return finish;
    }

    private StopDecision finish(StopDecision decision) {
        finish = decision;
        return decision;
    }

    /** Marks text up to {@code end} as streamed and returns the newly streamed part. */
    private String release(int end) {
        if (end <= emitted) {
            return "";
        }
        String out = text.substring(emitted, end);
        emitted = end;
        return out;
    }

    /** Length of the longest tail of the unstreamed text that is a proper prefix of a stop string. */
    private int heldBack() {
        int len = text.length();
        int longest = Math.min(maxStopLength - 1, len - emitted);
        for (int n = longest; n > 0; n--) {
            for (String stop : stopStrings) {
                if (stop.length() > n && endsWithPrefix(stop, n, len)) {
                    return n;
                }
            }
        }
        return 0;
    }

    /** True when the text ends with the first {@code n} characters of {@code stop}. */
    private boolean endsWithPrefix(String stop, int n, int len) {
        int start = len - n;
        for (int i = n - 1; i >= 0; i--) { // from the end: the last character rules most candidates out
            if (text.charAt(start + i) != stop.charAt(i)) {
                return false;
            }
        }
        return true;
    }
}
