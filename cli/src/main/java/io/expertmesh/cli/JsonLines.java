package io.expertmesh.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.core.generate.GenerationResult;
import io.expertmesh.core.generate.TokenEvent;
import io.expertmesh.core.sample.TokenLogprob;
import java.io.PrintWriter;

/**
 * The {@code --json} output of {@code run} (and {@code generate}): one JSON object per generated token, one per
 * line, then one summary line with the finish reason, counts and timings.
 */
final class JsonLines {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final PrintWriter out;

    JsonLines(PrintWriter out) {
        this.out = out;
    }

    void token(TokenEvent e) {
        ObjectNode n = JSON.createObjectNode();
        n.put("index", e.index()).put("token_id", e.tokenId()).put("text", e.text()).put("logprob", e.logprob());
        ArrayNode top = n.putArray("top_logprobs");
        for (TokenLogprob t : e.topLogprobs()) {
            top.addObject().put("token_id", t.tokenId()).put("logprob", t.logprob());
        }
        out.println(n);
        out.flush();
    }

    void summary(GenerationResult r) {
        ObjectNode n = JSON.createObjectNode();
        n.put("finish_reason", r.finishReason().wireName()).put("prompt_tokens", r.promptTokens())
                .put("completion_tokens", r.completionTokens()).put("cached_prompt_tokens", 0)
                .put("time_to_first_token_ms", r.ttftNanos() / 1e6).put("decode_ms", r.decodeNanos() / 1e6)
                .put("prefill_tokens_per_second", r.prefillTokensPerSecond())
                .put("decode_tokens_per_second", r.decodeTokensPerSecond());
        out.println(n);
        out.flush();
    }
}
