package io.expertmesh.router.http;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * A request the HTTP API answers with an error: the HTTP status and OpenAI's error object,
 * {@code {"error": {"message", "type", "param", "code"}}}. OpenAI's client libraries pick their exception class
 * by the status (400 BadRequestError, 401 AuthenticationError, 429 RateLimitError, ...) and show the message, so
 * the message says what was wrong and with which field.
 */
final class OpenAiError extends RuntimeException {
    static final String INVALID_REQUEST = "invalid_request_error";

    private final int status;
    private final String type;
    private final String param;
    private final String code;

    OpenAiError(int status, String type, String message, String param, String code) {
        super(message);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
    }

    /** 400: {@code param} has a bad value. */
    static OpenAiError invalid(String param, String message) {
        return new OpenAiError(400, INVALID_REQUEST, message, param, "invalid_value");
    }

    /** 400: a field this server does not implement ({@code n > 1}, tools, ...). */
    static OpenAiError unsupported(String param, String message) {
        return new OpenAiError(400, INVALID_REQUEST, message, param, "unsupported_parameter");
    }

    /** 503: retry later or elsewhere (loading, draining, no expert worker). */
    static OpenAiError unavailable(String message, String code) {
        return new OpenAiError(503, "service_unavailable", message, null, code);
    }

    int status() {
        return status;
    }

    String type() {
        return type;
    }

    String param() {
        return param;
    }

    String code() {
        return code;
    }

    /** The error object as OpenAI sends it. */
    ObjectNode toJson() {
        ObjectNode root = JsonNodeFactory.instance.objectNode();
        ObjectNode e = root.putObject("error");
        e.put("message", getMessage());
        e.put("type", type);
        e.put("param", param);
        e.put("code", code);
        return root;
    }
}
