package io.expertmesh.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.util.List;

/**
 * The {@code --json} output of {@code run} and {@code generate}: one JSON object per generated token, one per
 * line, then one summary line with the finish reason, counts and timings. Takes plain values, so the in-process
 * generator and the gRPC client print the same lines.
 */
final class JsonLines {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final PrintWriter out;

    /** One alternative token and its log-probability. */
    record Alternative(int tokenId, float logprob) {
    }

    /**
     * The summary line.
     *
     * @param finishReason           wire name: stop, length, cancelled, error
     * @param ttftMs                 time to the first token, in milliseconds
     * @param decodeMs               time after the first token, in milliseconds
     * @param prefillTokensPerSecond prompt tokens per second up to the first token
     * @param decodeTokensPerSecond  tokens per second after the first one
     */
    record Summary(String finishReason, int promptTokens, int completionTokens, int cachedPromptTokens,
                   double ttftMs, double decodeMs, double prefillTokensPerSecond, double decodeTokensPerSecond) {
    }

    JsonLines(PrintWriter out) {
        this.out = out;
    }

    /** One token line; {@code logprob} null when the source did not report one (written as JSON null). */
    void token(int index, int tokenId, String text, Float logprob, List<Alternative> topLogprobs) {
        ObjectNode n = JSON.createObjectNode();
        n.put("index", index).put("token_id", tokenId).put("text", text).put("logprob", logprob);
        ArrayNode top = n.putArray("top_logprobs");
        for (Alternative t : topLogprobs) {
            top.addObject().put("token_id", t.tokenId()).put("logprob", t.logprob());
        }
        out.println(n);
        out.flush();
    }

    void summary(Summary s) {
        ObjectNode n = JSON.createObjectNode();
        n.put("finish_reason", s.finishReason()).put("prompt_tokens", s.promptTokens())
                .put("completion_tokens", s.completionTokens()).put("cached_prompt_tokens", s.cachedPromptTokens())
                .put("time_to_first_token_ms", s.ttftMs()).put("decode_ms", s.decodeMs())
                .put("prefill_tokens_per_second", s.prefillTokensPerSecond())
                .put("decode_tokens_per_second", s.decodeTokensPerSecond());
        out.println(n);
        out.flush();
    }
}
