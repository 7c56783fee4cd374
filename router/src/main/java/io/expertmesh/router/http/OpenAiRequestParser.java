package io.expertmesh.router.http;

import com.fasterxml.jackson.databind.JsonNode;
import io.expertmesh.proto.inference.v1.ChatMessage;
import io.expertmesh.proto.inference.v1.ChatPrompt;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.SamplingParams;
import io.expertmesh.proto.inference.v1.TokenIds;
import io.expertmesh.router.http.OpenAiRequest.Endpoint;
import java.util.Map;

/**
 * Reads an OpenAI (and vLLM) request body into a {@link GenerateRequest}. Only the JSON shape is checked here:
 * types, and the features this server does not have ({@code n > 1}, tools, response formats), which must fail
 * loudly rather than be ignored. Values (ranges, vocabulary, context, stop limits) are left to the gRPC path's
 * mapper so that both APIs accept exactly the same requests. Fields neither OpenAI nor vLLM define are ignored,
 * as vLLM does, so clients that send extras keep working.
 */
final class OpenAiRequestParser {
    /** OpenAI's newer name for the system role. */
    private static final Map<String, String> ROLE_ALIASES = Map.of("developer", "system");

    private OpenAiRequestParser() {
    }

    /**
     * @param servedModel the model id this router serves; a request naming another model is a 404
     * @param requestId   the id the response carries (and the engine logs)
     */
    static OpenAiRequest parse(Endpoint endpoint, JsonNode body, String servedModel, String requestId) {
        if (body == null || !body.isObject()) {
            throw OpenAiError.invalid(null, "the request body must be a JSON object");
        }
        String model = string(body, "model");
        if (model != null && !model.equals(servedModel)) {
            throw new OpenAiError(404, OpenAiError.INVALID_REQUEST, "the model '" + model
                    + "' does not exist; this server serves '" + servedModel + "'", "model", "model_not_found");
        }
        unsupportedFeatures(endpoint, body);

        GenerateRequest.Builder g = GenerateRequest.newBuilder().setRequestId(requestId);
        if (endpoint == Endpoint.CHAT) {
            g.setChat(chat(body));
        } else {
            prompt(body, g);
        }
        String maxTokensField = "max_tokens";
        Integer maxTokens = integer(body, "max_tokens");
        if (endpoint == Endpoint.CHAT && present(body, "max_completion_tokens")) {
            // OpenAI deprecated max_tokens for chat in favour of max_completion_tokens; the newer one wins.
            maxTokensField = "max_completion_tokens";
            maxTokens = integer(body, "max_completion_tokens");
        }
        if (maxTokens != null) {
            g.setMaxTokens(maxTokens);
        }
        g.setSampling(sampling(body));
        stop(body, g);
        for (int id : intArray(body, "stop_token_ids")) {
            g.addStopTokenIds(id);
        }
        Boolean ignoreEos = bool(body, "ignore_eos");
        g.setIgnoreEos(ignoreEos != null && ignoreEos);

        boolean logprobs;
        int top;
        if (endpoint == Endpoint.CHAT) {
            Boolean lp = bool(body, "logprobs");
            Integer t = integer(body, "top_logprobs");
            logprobs = lp != null && lp;
            top = t == null ? 0 : t;
            if (t != null && !logprobs) {
                throw OpenAiError.invalid("top_logprobs", "top_logprobs needs logprobs: true");
            }
        } else {
            // completions: logprobs is a count of alternatives (0 = only the chosen token's)
            Integer n = integer(body, "logprobs");
            logprobs = n != null;
            top = n == null ? 0 : n;
        }
        g.setLogprobs(logprobs).setTopLogprobs(top);

        Boolean stream = bool(body, "stream");
        boolean streaming = stream != null && stream;
        boolean includeUsage = false;
        JsonNode options = body.get("stream_options");
        if (options != null && !options.isNull()) {
            if (!streaming) {
                throw OpenAiError.invalid("stream_options", "stream_options is only allowed with stream: true");
            }
            if (!options.isObject()) {
                throw OpenAiError.invalid("stream_options", "stream_options must be an object");
            }
            Boolean usage = bool(options, "include_usage", "stream_options.include_usage");
            includeUsage = usage != null && usage;
        }
        Boolean asIds = bool(body, "return_tokens_as_token_ids");
        return new OpenAiRequest(endpoint, g.build(), streaming, includeUsage, logprobs, top,
                asIds != null && asIds, maxTokensField);
    }

    /** What this server cannot do: a 400 naming the field, never a silently different answer. */
    private static void unsupportedFeatures(Endpoint endpoint, JsonNode body) {
        Integer n = integer(body, "n");
        if (n != null && n != 1) {
            throw OpenAiError.unsupported("n", "n must be 1: this server returns one choice per request; send "
                    + n + " requests (with different seeds) instead");
        }
        Integer bestOf = integer(body, "best_of");
        if (bestOf != null && bestOf != 1) {
            throw OpenAiError.unsupported("best_of", "best_of must be 1: this server returns one choice per request");
        }
        JsonNode bias = body.get("logit_bias");
        if (bias != null && !bias.isNull() && !bias.isEmpty()) {
            throw OpenAiError.unsupported("logit_bias", "logit_bias is not supported by this server");
        }
        if (endpoint == Endpoint.COMPLETIONS) {
            Boolean echo = bool(body, "echo");
            if (echo != null && echo) {
                throw OpenAiError.unsupported("echo", "echo is not supported by this server");
            }
            if (string(body, "suffix") != null) {
                throw OpenAiError.unsupported("suffix", "suffix (insertion) is not supported by this server");
            }
            return;
        }
        JsonNode tools = body.get("tools");
        if (tools != null && !tools.isNull() && !tools.isEmpty()) {
            throw OpenAiError.unsupported("tools", "tools (function calling) are not supported by this server");
        }
        for (String legacy : new String[] {"functions", "function_call"}) {
            JsonNode f = body.get(legacy);
            if (f != null && !f.isNull()) {
                throw OpenAiError.unsupported(legacy, legacy + " (function calling) is not supported by this server");
            }
        }
        JsonNode choice = body.get("tool_choice");
        if (choice != null && !choice.isNull() && !(choice.isTextual() && choice.asText().equals("none"))) {
            throw OpenAiError.unsupported("tool_choice", "tool_choice is not supported by this server (tools are "
                    + "not); leave it out or send \"none\"");
        }
        JsonNode format = body.get("response_format");
        if (format != null && !format.isNull()) {
            // {"type": "text"} is the default answer, so it is the one format that needs nothing from us
            JsonNode type = format.get("type");
            if (!format.isObject() || type == null || !type.isTextual() || !type.asText().equals("text")) {
                throw OpenAiError.unsupported("response_format", "response_format "
                        + (type != null && type.isTextual() ? "'" + type.asText() + "' " : "")
                        + "is not supported: this server has no constrained decoding (JSON mode, JSON schema); "
                        + "ask for the format in the prompt instead");
            }
        }
    }

    /** Completions: a string, a list of token ids, or a list holding one of those. */
    private static void prompt(JsonNode body, GenerateRequest.Builder g) {
        JsonNode p = body.get("prompt");
        if (p == null || p.isNull()) {
            throw OpenAiError.invalid("prompt", "prompt is required: a string or a list of token ids");
        }
        if (p.isTextual()) {
            g.setText(p.asText());
            return;
        }
        if (!p.isArray()) {
            throw OpenAiError.invalid("prompt", "prompt must be a string or a list of token ids, got " + kind(p));
        }
        if (p.isEmpty()) {
            throw OpenAiError.invalid("prompt", "prompt is an empty list");
        }
        if (p.get(0).isTextual() || p.get(0).isArray()) {
            if (p.size() > 1) {
                throw OpenAiError.unsupported("prompt", "prompt holds " + p.size() + " prompts: this server takes "
                        + "one prompt per request; send one request per prompt");
            }
            JsonNode only = p.get(0);
            if (only.isTextual()) {
                g.setText(only.asText());
            } else {
                g.setTokenIds(tokenIds(only, "prompt[0]"));
            }
            return;
        }
        g.setTokenIds(tokenIds(p, "prompt"));
    }

    private static TokenIds tokenIds(JsonNode array, String param) {
        TokenIds.Builder ids = TokenIds.newBuilder();
        for (int i = 0; i < array.size(); i++) {
            JsonNode v = array.get(i);
            if (!isInt(v)) {
                throw OpenAiError.invalid(param + "[" + i + "]", param + "[" + i + "] must be a token id (an "
                        + "integer), got " + kind(v));
            }
            ids.addIds(v.intValue());
        }
        return ids.build();
    }

    /** Chat: messages with text content (a string, or text parts). */
    private static ChatPrompt chat(JsonNode body) {
        JsonNode messages = body.get("messages");
        if (messages == null || messages.isNull()) {
            throw OpenAiError.invalid("messages", "messages is required");
        }
        if (!messages.isArray()) {
            throw OpenAiError.invalid("messages", "messages must be a list of messages, got " + kind(messages));
        }
        ChatPrompt.Builder chat = ChatPrompt.newBuilder();
        for (int i = 0; i < messages.size(); i++) {
            JsonNode m = messages.get(i);
            String at = "messages[" + i + "]";
            if (!m.isObject()) {
                throw OpenAiError.invalid(at, at + " must be an object with role and content, got " + kind(m));
            }
            String role = string(m, "role", at + ".role");
            if (role == null) {
                throw OpenAiError.invalid(at + ".role", at + ".role is required");
            }
            JsonNode calls = m.get("tool_calls");
            if (calls != null && !calls.isNull() && !calls.isEmpty()) {
                throw OpenAiError.unsupported(at + ".tool_calls", "tool calls are not supported by this server");
            }
            chat.addMessages(ChatMessage.newBuilder().setRole(ROLE_ALIASES.getOrDefault(role, role))
                    .setContent(content(m.get("content"), at + ".content")));
        }
        Boolean addGenerationPrompt = bool(body, "add_generation_prompt");
        chat.setOmitGenerationPrompt(addGenerationPrompt != null && !addGenerationPrompt);
        return chat.build();
    }

    private static String content(JsonNode c, String param) {
        if (c == null || c.isNull()) {
            throw OpenAiError.invalid(param, param + " is required");
        }
        if (c.isTextual()) {
            return c.asText();
        }
        if (!c.isArray()) {
            throw OpenAiError.invalid(param, param + " must be a string or a list of text parts, got " + kind(c));
        }
        StringBuilder text = new StringBuilder();
        for (int j = 0; j < c.size(); j++) {
            JsonNode part = c.get(j);
            String at = param + "[" + j + "]";
            JsonNode type = part.get("type");
            if (!part.isObject() || type == null || !type.isTextual()) {
                throw OpenAiError.invalid(at, at + " must be an object with a type");
            }
            if (!type.asText().equals("text")) {
                throw OpenAiError.unsupported(at + ".type", "content parts of type '" + type.asText()
                        + "' are not supported: this server serves a text-only model");
            }
            String t = string(part, "text", at + ".text");
            if (t == null) {
                throw OpenAiError.invalid(at + ".text", at + ".text is required");
            }
            // vLLM joins text parts with newlines; so do we, so the same request renders the same prompt
            if (j > 0) {
                text.append('\n');
            }
            text.append(t);
        }
        return text.toString();
    }

    private static SamplingParams sampling(JsonNode body) {
        SamplingParams.Builder s = SamplingParams.newBuilder();
        Float v;
        if ((v = number(body, "temperature")) != null) {
            s.setTemperature(v);
        }
        if ((v = number(body, "top_p")) != null) {
            s.setTopP(v);
        }
        if ((v = number(body, "min_p")) != null) {
            s.setMinP(v);
        }
        if ((v = number(body, "presence_penalty")) != null) {
            s.setPresencePenalty(v);
        }
        if ((v = number(body, "frequency_penalty")) != null) {
            s.setFrequencyPenalty(v);
        }
        if ((v = number(body, "repetition_penalty")) != null) {
            s.setRepetitionPenalty(v);
        }
        Integer topK = integer(body, "top_k");
        if (topK != null) {
            s.setTopK(topK);
        }
        JsonNode seed = body.get("seed");
        if (seed != null && !seed.isNull()) {
            if (!seed.isIntegralNumber() || !seed.canConvertToLong()) {
                throw OpenAiError.invalid("seed", "seed must be an integer, got " + kind(seed));
            }
            s.setSeed(seed.longValue());
        }
        return s.build();
    }

    private static void stop(JsonNode body, GenerateRequest.Builder g) {
        JsonNode stop = body.get("stop");
        if (stop == null || stop.isNull()) {
            return;
        }
        if (stop.isTextual()) {
            g.addStop(stop.asText());
            return;
        }
        if (!stop.isArray()) {
            throw OpenAiError.invalid("stop", "stop must be a string or a list of strings, got " + kind(stop));
        }
        for (int i = 0; i < stop.size(); i++) {
            if (!stop.get(i).isTextual()) {
                throw OpenAiError.invalid("stop[" + i + "]", "stop[" + i + "] must be a string, got "
                        + kind(stop.get(i)));
            }
            g.addStop(stop.get(i).asText());
        }
    }

    private static boolean present(JsonNode body, String field) {
        JsonNode v = body.get(field);
        return v != null && !v.isNull();
    }

    private static String string(JsonNode body, String field) {
        return string(body, field, field);
    }

    private static String string(JsonNode body, String field, String param) {
        JsonNode v = body.get(field);
        if (v == null || v.isNull()) {
            return null;
        }
        if (!v.isTextual()) {
            throw OpenAiError.invalid(param, param + " must be a string, got " + kind(v));
        }
        return v.asText();
    }

    private static Boolean bool(JsonNode body, String field) {
        return bool(body, field, field);
    }

    private static Boolean bool(JsonNode body, String field, String param) {
        JsonNode v = body.get(field);
        if (v == null || v.isNull()) {
            return null;
        }
        if (!v.isBoolean()) {
            throw OpenAiError.invalid(param, param + " must be true or false, got " + kind(v));
        }
        return v.booleanValue();
    }

    private static Float number(JsonNode body, String field) {
        JsonNode v = body.get(field);
        if (v == null || v.isNull()) {
            return null;
        }
        if (!v.isNumber()) {
            throw OpenAiError.invalid(field, field + " must be a number, got " + kind(v));
        }
        return v.floatValue();
    }

    private static Integer integer(JsonNode body, String field) {
        JsonNode v = body.get(field);
        if (v == null || v.isNull()) {
            return null;
        }
        if (!isInt(v)) {
            throw OpenAiError.invalid(field, field + " must be an integer, got " + kind(v));
        }
        return v.intValue();
    }

    private static int[] intArray(JsonNode body, String field) {
        JsonNode v = body.get(field);
        if (v == null || v.isNull()) {
            return new int[0];
        }
        if (!v.isArray()) {
            throw OpenAiError.invalid(field, field + " must be a list of integers, got " + kind(v));
        }
        int[] out = new int[v.size()];
        for (int i = 0; i < out.length; i++) {
            if (!isInt(v.get(i))) {
                throw OpenAiError.invalid(field + "[" + i + "]", field + "[" + i + "] must be an integer, got "
                        + kind(v.get(i)));
            }
            out[i] = v.get(i).intValue();
        }
        return out;
    }

    /** An integer that fits an int; 3.0 counts (some clients write every number as a float). */
    private static boolean isInt(JsonNode v) {
        if (v.isIntegralNumber()) {
            return v.canConvertToInt();
        }
        return v.isFloatingPointNumber() && v.doubleValue() == Math.rint(v.doubleValue())
                && Math.abs(v.doubleValue()) <= Integer.MAX_VALUE;
    }

    /** How a wrong value is described: its JSON type and, when short, itself. */
    static String kind(JsonNode v) {
        String type = switch (v.getNodeType()) {
            case STRING -> "a string";
            case NUMBER -> "a number";
            case BOOLEAN -> "a boolean";
            case ARRAY -> "a list";
            case OBJECT -> "an object";
            case NULL -> "null";
            default -> v.getNodeType().name().toLowerCase(java.util.Locale.ROOT);
        };
        String text = v.toString();
        return text.length() <= 40 && !v.isContainerNode() ? type + " (" + text + ")" : type;
    }
}
