package io.expertmesh.router.http;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import io.expertmesh.router.engine.EngineRejection;
import io.expertmesh.router.http.OpenAiRequest.Endpoint;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The gRPC path's refusals in OpenAI's terms: the mapper's INVALID_ARGUMENT (whose {@code google.rpc.BadRequest}
 * names proto fields) becomes a 400 naming the request's own fields, and engine rejections become 429/503/400.
 */
final class OpenAiErrors {
    /** The mapper's advice in gRPC field names, and what it means on this API. */
    private static final Map<String, String> GRPC_ADVICE = Map.of(
            "send text or token_ids", "use /v1/completions with a prompt",
            "send token_ids", "send the prompt as a list of token ids");

    private OpenAiErrors() {
    }

    /** A status thrown by the gRPC path's validation. */
    static OpenAiError fromStatus(StatusRuntimeException e, OpenAiRequest request) {
        return switch (e.getStatus().getCode()) {
            case INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE -> invalid(e, request);
            case RESOURCE_EXHAUSTED -> new OpenAiError(429, "rate_limit_error", e.getStatus().getDescription(), null,
                    "rate_limit_exceeded");
            case UNAVAILABLE -> OpenAiError.unavailable(e.getStatus().getDescription(), "unavailable");
            default -> new OpenAiError(500, "server_error", "internal error: " + e.getStatus(), null, null);
        };
    }

    /** The engine would not take the request. */
    static OpenAiError fromRejection(EngineRejection e, OpenAiRequest request) {
        return switch (e.reason()) {
            case QUEUE_FULL -> new OpenAiError(429, "rate_limit_error", e.getMessage(), null, "queue_full");
            case DRAINING -> OpenAiError.unavailable(e.getMessage(), "draining");
            case TOO_LARGE -> OpenAiError.invalid(request.maxTokensField(), e.getMessage());
        };
    }

    private static OpenAiError invalid(StatusRuntimeException e, OpenAiRequest request) {
        List<BadRequest.FieldViolation> violations = violations(e);
        if (violations.isEmpty()) {
            return OpenAiError.invalid(null, e.getStatus().getDescription());
        }
        StringBuilder message = new StringBuilder();
        for (BadRequest.FieldViolation v : violations) {
            message.append(message.isEmpty() ? "" : "; ").append(sentence(v, request));
        }
        return OpenAiError.invalid(param(violations.getFirst().getField(), request), message.toString());
    }

    private static List<BadRequest.FieldViolation> violations(StatusRuntimeException e) {
        List<BadRequest.FieldViolation> out = new ArrayList<>();
        com.google.rpc.Status status = StatusProto.fromThrowable(e);
        if (status == null) {
            return out;
        }
        for (Any any : status.getDetailsList()) {
            if (any.is(BadRequest.class)) {
                try {
                    out.addAll(any.unpack(BadRequest.class).getFieldViolationsList());
                } catch (InvalidProtocolBufferException ignored) {
                    // a detail we cannot read: the status message still says what was wrong
                }
            }
        }
        return out;
    }

    /**
     * One violation as a sentence about the request's own field: "temperature must be ..." rather than
     * "sampling.temperature: temperature must be ...", "max_completion_tokens: must be >= 1" for "max_tokens".
     */
    private static String sentence(BadRequest.FieldViolation v, OpenAiRequest request) {
        String field = v.getField();
        String param = param(field, request);
        String leaf = field.startsWith("sampling.") ? field.substring("sampling.".length()) : field;
        String description = v.getDescription();
        for (var advice : GRPC_ADVICE.entrySet()) {
            description = description.replace(advice.getKey(), advice.getValue());
        }
        if (description.startsWith(leaf + " ")) {
            return param + description.substring(leaf.length());
        }
        return param + ": " + description;
    }

    /** A GenerateRequest field path as the OpenAI request spelled it. */
    static String param(String field, OpenAiRequest request) {
        boolean chat = request.endpoint() == Endpoint.CHAT;
        if (field.startsWith("sampling.")) {
            return field.substring("sampling.".length());
        }
        if (field.equals("text") || field.equals("prompt")) {
            return chat ? "messages" : "prompt";
        }
        if (field.startsWith("token_ids.ids")) {
            return "prompt" + field.substring("token_ids.ids".length());
        }
        if (field.startsWith("chat.messages")) {
            return "messages" + field.substring("chat.messages".length());
        }
        if (field.equals("chat")) {
            return "messages";
        }
        if (field.startsWith("max_tokens")) {
            return request.maxTokensField();
        }
        if (field.startsWith("top_logprobs")) {
            return chat ? "top_logprobs" : "logprobs";
        }
        return field;
    }
}
