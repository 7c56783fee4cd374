package io.expertmesh.router.http;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.core.generate.TokenEvent;
import io.expertmesh.core.sample.TokenLogprob;
import io.expertmesh.core.tokenizer.ModelTokenizer;
import io.expertmesh.router.engine.Completion;
import io.expertmesh.router.http.OpenAiRequest.Endpoint;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * The JSON bodies of one request's answer, in OpenAI's shapes: {@code text_completion} and
 * {@code chat.completion} objects, their streamed {@code .chunk}s, logprobs in the completions form
 * ({@code tokens}/{@code token_logprobs}/{@code top_logprobs}/{@code text_offset}) and the chat form
 * ({@code content: [{token, logprob, bytes, top_logprobs}]}), and {@code usage} with
 * {@code prompt_tokens_details.cached_tokens}. Not thread-safe: one answer's writer uses it.
 */
final class OpenAiResponses {
    /** vLLM's stand-in for a log-probability of minus infinity, which JSON cannot carry. */
    static final float MIN_LOGPROB = -9999f;

    private static final JsonNodeFactory JSON = JsonNodeFactory.instance;

    private final OpenAiRequest request;
    private final String id;
    private final long created;
    private final String model;
    private final ModelTokenizer tokenizer;
    /** Completions form: characters of text before the next token (its {@code text_offset}). */
    private int textOffset;

    /** @param tokenizer decodes logprob tokens; null (a model without one) gives {@code token_id:N} */
    OpenAiResponses(OpenAiRequest request, String requestId, long createdEpochSeconds, String model,
                    ModelTokenizer tokenizer) {
        this.request = request;
        this.id = request.endpoint().idPrefix + requestId;
        this.created = createdEpochSeconds;
        this.model = model;
        this.tokenizer = tokenizer;
    }

    private boolean chat() {
        return request.endpoint() == Endpoint.CHAT;
    }

    /** The whole answer of a request that did not stream. */
    ObjectNode complete(List<TokenEvent> tokens, Completion c) {
        ObjectNode root = header(chat() ? "chat.completion" : "text_completion");
        ObjectNode choice = root.putArray("choices").addObject();
        choice.put("index", 0);
        String text = text(tokens);
        if (chat()) {
            choice.putObject("message").put("role", "assistant").put("content", text);
        } else {
            choice.put("text", text);
        }
        choice.set("logprobs", logprobs(tokens));
        finish(choice, c);
        root.set("usage", usage(c));
        return root;
    }

    /** The first chunk of a chat stream: the assistant's role, before any token. */
    ObjectNode roleChunk() {
        ObjectNode root = header("chat.completion.chunk");
        ObjectNode choice = root.putArray("choices").addObject();
        choice.put("index", 0);
        choice.putObject("delta").put("role", "assistant").put("content", "");
        choice.putNull("logprobs");
        choice.putNull("finish_reason");
        usageNull(root);
        return root;
    }

    /** A chunk with the tokens generated since the last one; null when there is nothing to tell the client. */
    ObjectNode tokenChunk(List<TokenEvent> tokens) {
        String text = text(tokens);
        if (text.isEmpty() && !request.logprobs()) {
            return null; // only held-back text (a possible stop string, a partial character): nothing to show yet
        }
        ObjectNode root = header(chat() ? "chat.completion.chunk" : "text_completion");
        ObjectNode choice = root.putArray("choices").addObject();
        choice.put("index", 0);
        if (chat()) {
            choice.putObject("delta").put("content", text);
        } else {
            choice.put("text", text);
        }
        choice.set("logprobs", logprobs(tokens));
        choice.putNull("finish_reason");
        usageNull(root);
        return root;
    }

    /** The chunk that carries the finish reason. */
    ObjectNode finishChunk(Completion c) {
        ObjectNode root = header(chat() ? "chat.completion.chunk" : "text_completion");
        ObjectNode choice = root.putArray("choices").addObject();
        choice.put("index", 0);
        if (chat()) {
            choice.putObject("delta");
        } else {
            choice.put("text", "");
        }
        choice.putNull("logprobs");
        finish(choice, c);
        usageNull(root);
        return root;
    }

    /** {@code stream_options.include_usage}: the last chunk, no choices, the usage. */
    ObjectNode usageChunk(Completion c) {
        ObjectNode root = header(chat() ? "chat.completion.chunk" : "text_completion");
        root.putArray("choices");
        root.set("usage", usage(c));
        return root;
    }

    private ObjectNode header(String object) {
        ObjectNode root = JSON.objectNode();
        root.put("id", id);
        root.put("object", object);
        root.put("created", created);
        root.put("model", model);
        return root;
    }

    /** OpenAI streams {@code "usage": null} on every chunk but the last when usage is asked for. */
    private void usageNull(ObjectNode root) {
        if (request.includeUsage()) {
            root.putNull("usage");
        }
    }

    private static void finish(ObjectNode choice, Completion c) {
        choice.put("finish_reason", finishReason(c));
        // vLLM's extra: what stopped it (the stop string or stop token), null at EOS or length
        if (c.stopString() != null) {
            choice.put("stop_reason", c.stopString());
        } else if (c.stopTokenId() != null) {
            choice.put("stop_reason", c.stopTokenId());
        } else {
            choice.putNull("stop_reason");
        }
    }

    /** OpenAI's reasons are stop and length; a sequence cut short by the server is vLLM's "abort". */
    static String finishReason(Completion c) {
        return switch (c.reason()) {
            case STOP -> "stop";
            case LENGTH -> "length";
            case CANCELLED, ERROR -> "abort";
        };
    }

    static ObjectNode usage(Completion c) {
        ObjectNode u = JSON.objectNode();
        u.put("prompt_tokens", c.promptTokens());
        u.put("completion_tokens", c.completionTokens());
        u.put("total_tokens", c.promptTokens() + c.completionTokens());
        u.putObject("prompt_tokens_details").put("cached_tokens", c.cachedPromptTokens());
        return u;
    }

    private static String text(List<TokenEvent> tokens) {
        StringBuilder sb = new StringBuilder();
        for (TokenEvent t : tokens) {
            sb.append(t.text());
        }
        return sb.toString();
    }

    private com.fasterxml.jackson.databind.JsonNode logprobs(List<TokenEvent> tokens) {
        if (!request.logprobs()) {
            return JSON.nullNode();
        }
        return chat() ? chatLogprobs(tokens) : completionLogprobs(tokens);
    }

    private ObjectNode chatLogprobs(List<TokenEvent> tokens) {
        ObjectNode root = JSON.objectNode();
        ArrayNode content = root.putArray("content");
        for (TokenEvent t : tokens) {
            ObjectNode entry = tokenEntry(t.tokenId(), t.logprob());
            ArrayNode top = entry.putArray("top_logprobs");
            for (TokenLogprob alt : t.topLogprobs()) {
                top.add(tokenEntry(alt.tokenId(), alt.logprob()));
            }
            content.add(entry);
        }
        return root;
    }

    private ObjectNode tokenEntry(int tokenId, float logprob) {
        String token = token(tokenId);
        ObjectNode e = JSON.objectNode();
        e.put("token", token);
        e.put("logprob", finite(logprob));
        ArrayNode bytes = e.putArray("bytes");
        for (byte b : token.getBytes(StandardCharsets.UTF_8)) {
            bytes.add(b & 0xff);
        }
        return e;
    }

    private ObjectNode completionLogprobs(List<TokenEvent> tokens) {
        ObjectNode root = JSON.objectNode();
        ArrayNode names = root.putArray("tokens");
        ArrayNode values = root.putArray("token_logprobs");
        ArrayNode tops = root.putArray("top_logprobs");
        ArrayNode offsets = root.putArray("text_offset");
        for (TokenEvent t : tokens) {
            names.add(token(t.tokenId()));
            values.add(finite(t.logprob()));
            if (request.topLogprobs() > 0) {
                ObjectNode top = tops.addObject();
                for (TokenLogprob alt : t.topLogprobs()) {
                    top.put(token(alt.tokenId()), finite(alt.logprob()));
                }
            } else {
                tops.addNull(); // logprobs: 0 asks for the chosen token's only (vLLM sends null here too)
            }
            offsets.add(textOffset);
            textOffset += t.text().length();
        }
        return root;
    }

    /** A token as logprobs show it: its text, or {@code token_id:N} when asked or without a tokenizer. */
    String token(int tokenId) {
        if (request.tokensAsIds() || tokenizer == null) {
            return "token_id:" + tokenId;
        }
        return tokenizer.decode(new int[] {tokenId});
    }

    private static float finite(float logprob) {
        return Float.isFinite(logprob) ? logprob : MIN_LOGPROB;
    }
}
