package io.expertmesh.bench.load;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.Status;
import java.util.Objects;

/**
 * Reads the server-sent events of one streamed OpenAI completion ({@code /v1/completions} or
 * {@code /v1/chat/completions}) and tells a {@link StreamListener} what they carried.
 *
 * <ul>
 *   <li>A chunk whose choice has text ({@code text}, or {@code delta.content}) is one token; one with logprobs
 *       carries exactly as many tokens as its logprob entries. Chunks without either (the finish chunk, a chat
 *       role chunk) carry none.</li>
 *   <li>{@code usage} (sent with {@code stream_options.include_usage}) gives the prompt, cached and output token
 *       counts; the output count then replaces the chunks' (see {@link ChunkTokens}).</li>
 *   <li>The stream has finished once a {@code finish_reason} or {@code data: [DONE]} came; ending before either,
 *       or an {@code error} event, is a failure.</li>
 * </ul>
 */
public final class OpenAiStreamReader {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final StreamListener listener;
    private final int sentPromptTokens;
    private final StringBuilder data = new StringBuilder();
    private boolean hasData;
    private boolean finishReason;
    private boolean done;
    private boolean ended;
    private JsonNode usage;

    /**
     * @param sentPromptTokens the prompt's length, reported when the server gives no usage
     */
    public OpenAiStreamReader(StreamListener listener, int sentPromptTokens) {
        this.listener = Objects.requireNonNull(listener, "listener");
        this.sentPromptTokens = sentPromptTokens;
    }

    /**
     * One line of the stream, without its line break.
     *
     * @return whether the stream is over ({@code [DONE]} or an error): the caller stops reading
     */
    public boolean line(String line) {
        if (ended) {
            return true;
        }
        if (line.isEmpty()) {
            dispatch();
        } else if (line.startsWith("data:")) {
            if (hasData) {
                data.append('\n');
            }
            data.append(field(line, 5));
            hasData = true;
        } else if (line.startsWith("error:")) {
            // some servers send a failure as its own field rather than as a data event
            fail(Status.Code.INTERNAL, "the server sent an error: " + field(line, 6));
        }
        // other fields (event:, id:, retry:) and comments (:) carry nothing here
        return ended || done;
    }

    /** The stream's bytes ended: the listener hears that it finished, or why it did not. */
    public void end() {
        dispatch();
        if (ended) {
            return;
        }
        if (!done && !finishReason) {
            fail(Status.Code.UNAVAILABLE, "the stream ended before a finish_reason or [DONE]");
            return;
        }
        ended = true;
        if (usage != null) {
            JsonNode details = usage.path("prompt_tokens_details");
            listener.onFinished(usage.path("prompt_tokens").asInt(sentPromptTokens),
                    details.path("cached_tokens").asInt(0), usage.path("completion_tokens").asInt(-1));
        } else {
            listener.onFinished(sentPromptTokens, 0, -1);
        }
    }

    private static String field(String line, int nameLength) {
        String v = line.substring(nameLength);
        return v.startsWith(" ") ? v.substring(1) : v;
    }

    private void dispatch() {
        if (!hasData) {
            return;
        }
        String event = data.toString();
        data.setLength(0);
        hasData = false;
        if (ended || done) {
            return;
        }
        if (event.strip().equals("[DONE]")) {
            done = true;
            return;
        }
        JsonNode chunk;
        try {
            chunk = JSON.readTree(event);
        } catch (JsonProcessingException e) {
            fail(Status.Code.INTERNAL, "the server sent an event that is not JSON: " + abbreviate(event));
            return;
        }
        JsonNode error = chunk.path("error");
        if (!error.isMissingNode() && !error.isNull()) {
            JsonNode code = error.path("code");
            fail(code.canConvertToInt() ? HttpStatusCodes.toGrpc(code.asInt()) : Status.Code.INTERNAL,
                    "the server sent an error: " + (error.isObject() ? error.path("message").asText(error.toString())
                            : error.asText()));
            return;
        }
        JsonNode choice = chunk.path("choices").path(0);
        if (choice.isObject()) {
            int tokens = tokens(choice);
            if (tokens > 0) {
                listener.onTokens(tokens);
            }
            JsonNode reason = choice.path("finish_reason");
            if (!reason.isMissingNode() && !reason.isNull()) {
                finishReason = true;
            }
        }
        JsonNode u = chunk.path("usage");
        if (u.isObject()) {
            usage = u;
        }
    }

    /** Tokens a choice carries: its logprob entries when it has them, else one for text, else none. */
    private static int tokens(JsonNode choice) {
        JsonNode logprobs = choice.path("logprobs");
        JsonNode entries = logprobs.has("tokens") ? logprobs.get("tokens") : logprobs.path("content");
        if (entries.isArray()) {
            return entries.size();
        }
        JsonNode text = choice.has("text") ? choice.get("text") : choice.path("delta").path("content");
        return text.isTextual() && !text.asText().isEmpty() ? 1 : 0;
    }

    private void fail(Status.Code code, String message) {
        if (!ended) {
            ended = true;
            listener.onError(code, message);
        }
    }

    static String abbreviate(String s) {
        String one = s.replaceAll("\\s+", " ").strip();
        return one.length() <= 200 ? one : one.substring(0, 200) + "...";
    }
}
